//! Benchmark of `Config::select`: nanoseconds per call for configurations of 10, 1,000 and
//! 10,000 policies, built through `Config::from_sources` like a real directory.
//!
//! Run it optimised (the figures in `BENCHMARKS.md` come from this command):
//!
//! ```text
//! cargo run --release -p popgate-policy --example select_bench
//! ```
//!
//! Two shapes per size, the matching policy always last in `order`:
//! - `spread`: the policies are spread over 50 pop3 and 50 pop3s ports (plus 110/995), so
//!   the per-listener index leaves about 1/51 of them as candidates on port 110;
//! - `one-port`: every policy listens on 110/995 (the worst case: every policy is a
//!   candidate and all but the last are tried and fail).
//!
//! The non-matching policies mix CIDR, DMail wildcard and domain entries in `from` and `to`.
//! Each figure is the median of 15 runs of enough calls to last a few milliseconds.

use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use popgate_policy::{Config, ConnectionFacts, PortKind, Source, Sources};

/// Runs per measurement; the median is reported.
const RUNS: usize = 15;
/// Minimum duration of one run.
const RUN_TIME: Duration = Duration::from_millis(20);
/// Distinct pop3 (and pop3s) ports of the `spread` shape, besides 110/995.
const SPREAD_PORTS: u16 = 50;

fn main() {
    println!("| policies | shape | candidates on 110 | build (ms) | select, match (ns) | select, no match (ns) |");
    println!("|---:|---|---:|---:|---:|---:|");
    for size in [10, 1_000, 10_000] {
        for shape in [Shape::Spread, Shape::OnePort] {
            bench(size, shape);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Spread,
    OnePort,
}

fn bench(size: usize, shape: Shape) {
    let sources = sources(size, shape);
    let started = Instant::now();
    let config = match Config::from_sources(&sources) {
        Ok(config) => config,
        Err(errors) => panic!("bench configuration invalid: {errors:#?}"),
    };
    let build = started.elapsed();
    let names: &[String] = &[];
    let facts = |client: &str| ConnectionFacts {
        client: parse(client),
        server: parse("203.0.113.9"),
        port: 110,
        port_kind: PortKind::Pop3,
        server_names: names,
    };
    let hit = facts("172.31.9.7");
    let miss = facts("198.18.0.1");
    assert_eq!(
        config.select(&hit).map(|p| p.name().to_owned()),
        Some("target".to_owned())
    );
    assert!(config.select(&miss).is_none());
    let candidates = config
        .enabled_policies()
        .filter(|p| p.ports().pop3() == 110)
        .count();
    let label = match shape {
        Shape::Spread => "spread",
        Shape::OnePort => "one-port",
    };
    println!(
        "| {size} | {label} | {candidates} | {:.1} | {:.0} | {:.0} |",
        build.as_secs_f64() * 1e3,
        median_ns(&config, &hit),
        median_ns(&config, &miss),
    );
}

/// Median over [`RUNS`] of the mean time of one `select` call.
fn median_ns(config: &Config, facts: &ConnectionFacts<'_>) -> f64 {
    // Calibrate: enough calls for one run to last RUN_TIME.
    let mut calls = 1u64;
    loop {
        let started = Instant::now();
        for _ in 0..calls {
            black_box(config.select(black_box(facts)));
        }
        if started.elapsed() >= RUN_TIME {
            break;
        }
        calls *= 2;
    }
    let mut runs: Vec<f64> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..calls {
                black_box(config.select(black_box(facts)));
            }
            started.elapsed().as_nanos() as f64 / calls as f64
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[RUNS / 2]
}

/// `size` policies: `size - 1` that do not match the benchmarked connection, then `target`
/// (highest order) that does.
fn sources(size: usize, shape: Shape) -> Sources {
    let mut policies: Vec<Source> = (0..size - 1)
        .map(|i| {
            let (pop3, pop3s) = match shape {
                // Every 51st policy lands on 110/995, the others on 2000+/3000+.
                Shape::Spread => match (i % (usize::from(SPREAD_PORTS) + 1)) as u16 {
                    0 => (110, 995),
                    k => (2000 + k, 3000 + k),
                },
                Shape::OnePort => (110, 995),
            };
            let (a, b) = ((i / 250) % 250, i % 250);
            let (from, to) = match i % 3 {
                0 => (format!(r#""10.{a}.{b}.0/24""#), r#""any""#.to_owned()),
                1 => (
                    format!(r#""192.168.{b}.*", "fd00:{a:x}:{b:x}::/48""#),
                    format!(r#""198.51.{b}.0/24""#),
                ),
                _ => (
                    r#""any""#.to_owned(),
                    format!(r#""*.example{i}.com", "mail{i}.example.net""#),
                ),
            };
            policy(&format!("p{i}"), i + 1, &from, &to, pop3, pop3s)
        })
        .collect();
    policies.push(policy(
        "target",
        size + 1,
        r#""172.31.0.0/16""#,
        r#""any""#,
        110,
        995,
    ));
    Sources {
        global: Some(Source::new("popgate.json", r#"{"interception": "tproxy"}"#)),
        policies,
        actions: vec![Source::new("actions/a.json", r#"{"name": "A"}"#)],
        tls_profiles: Vec::new(),
    }
}

fn policy(name: &str, order: usize, from: &str, to: &str, pop3: u16, pop3s: u16) -> Source {
    Source::new(
        format!("policies/{name}.json"),
        format!(
            r#"{{"name": "{name}", "order": {order}, "from": [{from}], "to": [{to}],
                "ports": {{"pop3": {pop3}, "pop3s": {pop3s}}}, "proxy_action": "A"}}"#
        ),
    )
}

fn parse(ip: &str) -> IpAddr {
    ip.parse().unwrap_or_else(|_| panic!("bad address {ip}"))
}
