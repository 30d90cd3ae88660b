//! The signing test vector of docs/ABI.md ("Signed transactions") is what the host
//! computes: every value in the doc's table is read from the doc and compared.

use semel::{HostId, SigningKey, Transaction};

use crate::util::repo;

/// The doc's vector table: `| name | \`value\` |` rows after "### Signing test vector".
fn doc_vector() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(repo().join("docs/ABI.md")).unwrap();
    let section = doc
        .split("### Signing test vector")
        .nth(1)
        .expect("docs/ABI.md has a signing test vector");
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let value = cells.get(2)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((cells[1].to_owned(), value.to_owned()))
        })
        .collect()
}

/// The vector's values as the host computes them, from the seed, host id and JSON.
pub fn computed(seed: &[u8; 32], host: &HostId, json: &str) -> Vec<(String, String)> {
    let key = SigningKey::from_bytes(seed);
    let tx = Transaction::from_json(json.as_bytes()).unwrap();
    let signed = tx.clone().signed(&key, host).unwrap();
    assert_eq!(
        signed.sender, tx.sender,
        "the vector's sender is its key's account"
    );
    let content_hash = tx.content_hash();
    let sig = signed.signature.unwrap();
    [
        ("secret key seed", hex(seed)),
        ("public key", hex(&sig.public_key)),
        ("host id", hex(host.as_bytes())),
        ("transaction", json.to_owned()),
        ("content encoding", hex(&tx.content())),
        ("content hash", hex(&content_hash)),
        (
            "signing bytes",
            hex(&semel::signing_bytes(host, &tx.id, &content_hash)),
        ),
        (
            "signing hash",
            hex(&semel::signing_hash(host, &tx.id, &content_hash)),
        ),
        ("signature", hex(&sig.signature)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

#[test]
fn the_docs_signing_vector_is_what_the_host_computes() {
    let doc = doc_vector();
    let get = |name: &str| {
        doc.iter()
            .find(|(k, _)| k == name)
            .unwrap_or_else(|| panic!("the vector has no {name:?}: {doc:?}"))
            .1
            .clone()
    };
    let seed: [u8; 32] = unhex(&get("secret key seed"));
    let host = HostId::from_bytes(unhex(&get("host id")));
    let want = computed(&seed, &host, &get("transaction"));
    assert_eq!(doc, want, "docs/ABI.md's vector differs from the host's");
}
