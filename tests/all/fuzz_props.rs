//! The fuzz targets' properties (`props.rs`) under proptest, so they run in the ordinary
//! test suite whether or not a nightly toolchain is there for cargo-fuzz.

use proptest::prelude::*;

use crate::props;

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn deploy_arbitrary_bytes(code in proptest::collection::vec(any::<u8>(), 0..400)) {
        props::deploy_bytes(&code);
    }

    #[test]
    fn smith_modules_are_deterministic(data in proptest::collection::vec(any::<u8>(), 64..2048)) {
        let _ = props::smith_module(&data);
    }

    #[test]
    fn storage_matches_a_model(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        props::storage_ops(&data);
    }
}

/// Most generated modules must get past deploy, or the property above tests only refusals.
#[test]
fn most_smith_modules_deploy() {
    let mut seed = 0x5EED_u64;
    let mut bytes = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                seed.to_le_bytes()[7]
            })
            .collect()
    };
    let deployed = (0..40)
        .filter(|_| props::smith_module(&bytes(1024)))
        .count();
    assert!(
        deployed >= 20,
        "only {deployed} of 40 generated modules deployed"
    );
}
