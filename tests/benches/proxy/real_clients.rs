//! The small-RETR batches as a real mail client makes them: Python's poplib, one command at
//! a time, reading each answer line by line before it sends the next.
//!
//! The bench's own client (parts 2 and 2c) spends a few µs per message, so a relay's round
//! trip is most of what it measures. A real client spends more on each message, so this part
//! shows what the same relay costs the client an administrator runs. The script
//! (`tests/clients/poplib_retr_timed.py`) times only the RETRs, after the login, and checks
//! every byte it got.

use std::fs;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use popgate_tests::process::run_ok;

use crate::{env_or, report_rates, Batch, Results, Target, SMALL_ROUNDS};

/// Deadline for one poplib session.
const POPLIB_TIMEOUT: Duration = Duration::from_secs(120);

/// Part 2e/2f: `batch` RETRed by poplib, one session per target and round, rounds interleaved.
pub(crate) fn bench_poplib(
    targets: &[Target],
    account: &(String, String),
    batch: &Batch<'_>,
    label: &str,
    results: &mut Results,
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let expected = dir.path().join("expected");
    fs::write(
        &expected,
        batch.messages.iter().fold(Vec::new(), |mut all, m| {
            all.extend_from_slice(&m.bytes);
            all
        }),
    )?;
    let cafiles = targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let path = dir.path().join(format!("ca{i}.pem"));
            fs::write(&path, &t.ca_pem)?;
            Ok(path)
        })
        .collect::<Result<Vec<_>>>()?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/poplib_retr_timed.py");
    let count = batch.messages.len();
    let rounds = env_or("BENCH_SMALL_ROUNDS", SMALL_ROUNDS);
    let mut per_s = vec![Vec::new(); targets.len()];
    for _ in 0..rounds {
        for (i, t) in targets.iter().enumerate() {
            let output = run_ok(
                Command::new("python3")
                    .arg(script)
                    .arg(t.addr.ip().to_string())
                    .arg(t.addr.port().to_string())
                    .args([&account.0, &account.1])
                    .arg(&cafiles[i])
                    .args([batch.first.to_string(), count.to_string()])
                    .arg(&expected),
                POPLIB_TIMEOUT,
            )
            .with_context(|| format!("{}: poplib", t.name))?;
            let seconds: f64 = String::from_utf8_lossy(&output.stdout)
                .trim()
                .parse()
                .with_context(|| format!("{}: poplib printed no time", t.name))?;
            per_s[i].push(count as f64 / seconds);
        }
    }
    results.line(format!(
        "\n[{label}] the same {count} RETRs of {} by Python's poplib (sequential, as mail \
         clients send them), median of {rounds}",
        batch.what
    ));
    report_rates(results, targets, &per_s, "msg/s");
    Ok(())
}
