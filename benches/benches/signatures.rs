//! Signature verification on this machine (issue 17's target): the body of
//! ed25519-dalek's own benchmark ("Ed25519 strict signature verification", its
//! `benches/ed25519_benchmarks.rs`: `verify_strict` of an empty message), and what the
//! host does per signed transaction (`TxSignature::verify`: the BLAKE3 signing hash,
//! the key's decompression and `verify_strict`). Run with
//! `cargo bench -p semel-benches --bench signatures`.

use criterion::{Criterion, criterion_group, criterion_main};
use semel::{HostId, SigningKey, TxSignature};

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn dalek_strict(c: &mut Criterion) {
    use ed25519_dalek::Signer;
    let key = key();
    let msg: &[u8] = b"";
    let sig = key.sign(msg);
    c.bench_function("Ed25519 strict signature verification (dalek's own)", |b| {
        b.iter(|| key.verify_strict(std::hint::black_box(msg), &sig))
    });
}

fn semel_verify(c: &mut Criterion) {
    let host = HostId::from_bytes([3; 16]);
    let id = semel::Uuid::from_u128(42);
    let content_hash = [9; 32];
    let signed = TxSignature::sign(&key(), &host, &id, &content_hash);
    c.bench_function("TxSignature::verify (a signed transaction's check)", |b| {
        b.iter(|| signed.verify(&host, std::hint::black_box(&id), &content_hash))
    });
}

criterion_group!(benches, dalek_strict, semel_verify);
criterion_main!(benches);
