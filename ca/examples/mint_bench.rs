//! Times certificate minting and cache lookups. Run in release:
//!
//! ```text
//! cargo run --release -p popgate-ca --example mint_bench
//! ```
//!
//! Prints, for an ECDSA P-256 and an RSA-2048 authority: first mints through the cache
//! (distinct upstream certificates), cached lookups, and cached lookups from 8 threads.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use popgate_ca::{generate_leaf_key, Authority, CertCache, KeyType, Minter};
use rcgen::{CertificateParams, DnType, KeyPair};
use time::OffsetDateTime;

const UPSTREAMS: usize = 500;
const LOOKUPS: usize = 200_000;
const THREADS: usize = 8;

fn main() {
    let now = OffsetDateTime::now_utc();
    let upstreams = upstream_certs(UPSTREAMS);
    for key_type in [KeyType::EcdsaP256, KeyType::Rsa2048] {
        let started = Instant::now();
        let generated = Authority::generate(key_type, "CN=Bench CA", 365, now).expect("generate");
        let generate_time = started.elapsed();
        let authority = Authority::from_pem(
            generated.cert_pem.as_bytes(),
            generated.key_pem.as_bytes(),
            now,
        )
        .expect("load");
        let minter = Minter::new(Arc::new(authority), generate_leaf_key().expect("leaf key"));
        println!("{key_type} authority (generated in {generate_time:.1?})");

        let cache = CertCache::new(NonZeroUsize::new(UPSTREAMS).expect("non-zero"));
        let started = Instant::now();
        for der in &upstreams {
            cache.get_or_mint(&minter, der, now).expect("mint");
        }
        report("first mint via cache", started.elapsed(), UPSTREAMS);

        let started = Instant::now();
        for i in 0..LOOKUPS {
            cache
                .get_or_mint(&minter, &upstreams[i % UPSTREAMS], now)
                .expect("hit");
        }
        report("cached lookup, 1 thread", started.elapsed(), LOOKUPS);

        let started = Instant::now();
        thread::scope(|scope| {
            for t in 0..THREADS {
                let (cache, minter, upstreams) = (&cache, &minter, &upstreams);
                scope.spawn(move || {
                    for i in 0..LOOKUPS / THREADS {
                        let der = &upstreams[(i * 7 + t) % UPSTREAMS];
                        cache.get_or_mint(minter, der, now).expect("hit");
                    }
                });
            }
        });
        let elapsed = started.elapsed();
        report(
            &format!("cached lookup, {THREADS} threads (wall / lookup)"),
            elapsed,
            LOOKUPS,
        );
        println!(
            "  minted {} hits {} (upstream DER ~{} bytes)\n",
            cache.minted(),
            cache.hits(),
            upstreams[0].len()
        );
    }
    for key_type in [KeyType::Rsa2048, KeyType::Rsa3072] {
        let started = Instant::now();
        key_type.generate().expect("keygen");
        println!("{key_type} key generation: {:.1?}", started.elapsed());
    }
}

fn report(label: &str, elapsed: Duration, count: usize) {
    let per = elapsed / u32::try_from(count).expect("count fits u32");
    println!("  {label:<45} {per:>10.1?} each ({count} in {elapsed:.1?})");
}

/// Distinct self-signed "server" certificates, like a real server's: CN and two SANs.
fn upstream_certs(count: usize) -> Vec<Vec<u8>> {
    let key = KeyPair::generate().expect("key");
    (0..count)
        .map(|i| {
            let host = format!("pop{i}.example.net");
            let mut params =
                CertificateParams::new(vec![host.clone(), format!("mail{i}.example.net")])
                    .expect("params");
            params.distinguished_name.push(DnType::CommonName, host);
            params.not_before = OffsetDateTime::now_utc() - time::Duration::days(10);
            params.not_after = OffsetDateTime::now_utc() + time::Duration::days(80);
            params.self_signed(&key).expect("sign").der().to_vec()
        })
        .collect()
}
