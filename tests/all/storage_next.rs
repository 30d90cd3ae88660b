//! `storage_next` walks keys in byte order over committed state merged with the
//! transaction's own uncommitted writes and removals.

use semel::{Status, Transaction};

use crate::props::decode;
use crate::util::{calls, deploy};

fn put(key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut v = vec![u8::try_from(key.len()).unwrap()];
    v.extend_from_slice(key);
    v.extend_from_slice(value);
    v
}

#[test]
fn iteration_merges_committed_and_uncommitted_writes_and_removals() {
    let host = semel::Host::in_memory().unwrap();
    deploy(&host, "kv", "kv");
    for k in [&b"b"[..], b"d", b"a\0", b"c"] {
        let r = host
            .submit(&Transaction::call("kv", "put", put(k, b"v")))
            .unwrap();
        assert_eq!(r.status, Status::Committed);
    }
    let committed = host.query("kv", "list", b"", None).unwrap().output;
    assert_eq!(
        decode(&committed),
        vec![b"a\0".to_vec(), b"b".to_vec(), b"c".to_vec(), b"d".to_vec()]
    );

    // One transaction: add "a", "ca", remove "c" and "d", then list — the list sees them.
    let put_a = put(b"a", b"1");
    let put_ca = put(b"ca", b"2");
    let r = host
        .submit(&calls(&[
            ("kv", "put", &put_a),
            ("kv", "put", &put_ca),
            ("kv", "del", b"c"),
            ("kv", "del", b"d"),
            ("kv", "list", b""),
            ("kv", "list", b"c"),
        ]))
        .unwrap();
    assert_eq!(r.status, Status::Committed, "{:?}", r.error);
    assert_eq!(
        decode(&r.results[4].output),
        vec![
            b"a".to_vec(),
            b"a\0".to_vec(),
            b"b".to_vec(),
            b"ca".to_vec()
        ]
    );
    assert_eq!(decode(&r.results[5].output), vec![b"ca".to_vec()]);
    // After commit the same view is the committed state; the old version still lists
    // what it had.
    let now = host.query("kv", "list", b"", None).unwrap().output;
    assert_eq!(decode(&now), decode(&r.results[4].output));
    let before = host
        .query("kv", "list", b"", Some(r.version - 1))
        .unwrap()
        .output;
    assert_eq!(decode(&before), decode(&committed));
    let listed: Vec<_> = host
        .state("kv", None, b"")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(listed, decode(&now));
}
