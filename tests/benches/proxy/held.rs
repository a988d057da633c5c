//! Part 5 of the side-by-side bench: thousands of TLS sessions held per target, then a
//! burst: every session sends `RETR 1` at once; set-up rate and burst latency percentiles,
//! each as a ratio to direct.

use std::fmt::Write as _;
use std::os::fd::AsRawFd;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use popgate_tests::Popgate;

use super::{
    env_or, median, ms, paired_ratio, processes_named, Results, Session, Target, HELD_OPENERS,
    IO_TIMEOUT,
};

/// One target of the held-sessions case; `popgate` is the process whose RSS is reported.
pub(crate) struct HeldTarget<'a> {
    pub(crate) target: &'a Target,
    pub(crate) popgate: Option<&'a Popgate>,
}

/// What one target did in one round of the held-sessions case.
struct HeldRound {
    held: usize,
    setup_rate: f64,
    /// Burst latencies (from the common start to each complete answer), sorted, ms.
    latencies: Vec<f64>,
    /// Answers that were complete and byte-identical to the message.
    answered: usize,
    failure: Option<String>,
}

/// Opens `n` logged-in sessions to each target in turn (direct first), then sends `RETR 1`
/// on every session of that target at once and times each complete answer from the common
/// start. The same client code, threads and message for every target; rounds interleave
/// the targets so that machine load spreads over all of them.
pub(crate) fn bench_held(
    targets: &[HeldTarget<'_>],
    account: &(String, String),
    message: &[u8],
    n: usize,
    results: &mut Results,
    dovecot_log: &dyn Fn() -> String,
) -> Result<()> {
    let rounds: usize = env_or("BENCH_HELD_ROUNDS", 1);
    let mut per_target: Vec<Vec<HeldRound>> = targets.iter().map(|_| Vec::new()).collect();
    let baseline = processes_named("pop3").0;
    for round in 0..rounds {
        for (i, held) in targets.iter().enumerate() {
            wait_for_pop3_processes(baseline)?;
            let r = held_round(held, account, message, n, results)?;
            println!(
                "  round {round} {:15} held {} set-up {:.0}/s burst p50 {:.1} ms p99 {:.1} ms max {:.1} ms answered {}",
                held.target.name,
                r.held,
                r.setup_rate,
                percentile(&r.latencies, 50.0),
                percentile(&r.latencies, 99.0),
                r.latencies.last().copied().unwrap_or(f64::NAN),
                r.answered
            );
            if r.answered < r.held {
                // Bursts lost sessions on Dovecot's side in some runs: show why.
                print_dovecot_problems(&dovecot_log());
            }
            per_target[i].push(r);
        }
    }
    results.line(format!(
        "\n[5] {n} TLS sessions per target, each logged in, then RETR 1 (~4 KiB) on all at once; \
         {HELD_OPENERS} client threads; median of {rounds} round(s); ratio = median of per-round \
         ratios to direct"
    ));
    let figure = |r: &HeldRound, k: usize| match k {
        0 => r.setup_rate,
        1 => percentile(&r.latencies, 50.0),
        2 => percentile(&r.latencies, 99.0),
        _ => r.latencies.last().copied().unwrap_or(f64::NAN),
    };
    for (i, held) in targets.iter().enumerate() {
        let rounds_of = &per_target[i];
        let mut line = format!("  {:15}", held.target.name);
        for (k, label) in ["set-up/s", "p50 ms", "p99 ms", "max ms"]
            .iter()
            .enumerate()
        {
            let values: Vec<Vec<f64>> = [i, 0]
                .iter()
                .map(|&t| per_target[t].iter().map(|r| figure(r, k)).collect())
                .collect();
            let _ = write!(
                line,
                " {label} {:7.1} ({:.2}x)",
                median(values[0].clone()),
                paired_ratio(&values, 0, 1)
            );
        }
        let answered: usize = rounds_of.iter().map(|r| r.answered).sum();
        let opened: usize = rounds_of.iter().map(|r| r.held).sum();
        let _ = write!(line, "  answered {answered}/{opened}");
        results.line(line);
        for r in rounds_of {
            if let Some(f) = &r.failure {
                results.line(format!("    (stopped opening at {}: {f})", r.held));
            }
        }
    }
    Ok(())
}

/// The last error lines of Dovecot's log, counted by kind.
fn print_dovecot_problems(log: &str) {
    let problems: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Error") || l.contains("Fatal") || l.contains("Panic"))
        .collect();
    println!(
        "    Dovecot log: {} error lines; the last ones:",
        problems.len()
    );
    for line in problems.iter().rev().take(5).rev() {
        println!("    | {line}");
    }
}

fn held_round(
    held: &HeldTarget<'_>,
    account: &(String, String),
    message: &[u8],
    n: usize,
    results: &mut Results,
) -> Result<HeldRound> {
    let target = held.target;
    let rss_before = held.popgate.map(Popgate::rss_kib).transpose()?;
    let per = n.div_ceil(HELD_OPENERS);
    // Opened -> (main measures) -> burst starts -> answers collected.
    let opened = std::sync::Barrier::new(HELD_OPENERS + 1);
    let go = std::sync::Barrier::new(HELD_OPENERS + 1);
    let start = std::sync::OnceLock::new();
    let t0 = Instant::now();
    let mut open_time = Duration::ZERO;
    let mut rss_held = None;
    let mut pop3 = (0, 0);
    let mut outcome = Vec::new();
    thread::scope(|scope| -> Result<()> {
        let workers: Vec<_> = (0..HELD_OPENERS)
            .map(|k| {
                let count = per.min(n.saturating_sub(k * per));
                let (opened, go, start) = (&opened, &go, &start);
                scope.spawn(move || held_worker(target, account, message, count, opened, go, start))
            })
            .collect();
        opened.wait();
        open_time = t0.elapsed();
        rss_held = held.popgate.map(Popgate::rss_kib).transpose()?;
        pop3 = processes_named("pop3");
        let _ = start.set(Instant::now());
        go.wait();
        for w in workers {
            outcome.push(w.join().expect("held worker panicked"));
        }
        Ok(())
    })?;
    let mut round = HeldRound {
        held: 0,
        setup_rate: 0.0,
        latencies: Vec::new(),
        answered: 0,
        failure: None,
    };
    for o in outcome {
        round.held += o.held;
        round.answered += o.latencies.len();
        round.latencies.extend(o.latencies);
        if round.failure.is_none() {
            round.failure = o.failure;
        }
    }
    round.latencies.sort_by(f64::total_cmp);
    round.setup_rate = round.held as f64 / open_time.as_secs_f64();
    if let (Some(before), Some(after)) = (rss_before, rss_held) {
        let (pop3_procs, pop3_pss) = pop3;
        results.line(format!(
            "  {}: RSS {before} KiB before, {after} KiB with {} held: {:.1} KiB/session; \
             Dovecot pop3 processes {pop3_procs} ({} MiB PSS together)",
            target.name,
            round.held,
            after.saturating_sub(before) as f64 / round.held.max(1) as f64,
            pop3_pss / 1024
        ));
    }
    Ok(round)
}

/// What one client thread of the held case saw.
struct HeldOutcome {
    held: usize,
    latencies: Vec<f64>,
    failure: Option<String>,
}

/// Opens `count` sessions, waits for the burst, sends `RETR 1` on all of them, then reads
/// the answers as they arrive (poll(2) over the sessions' sockets, so an answer that comes
/// early is timed early whatever the order of the sessions).
fn held_worker(
    target: &Target,
    account: &(String, String),
    message: &[u8],
    count: usize,
    opened: &std::sync::Barrier,
    go: &std::sync::Barrier,
    start: &std::sync::OnceLock<Instant>,
) -> HeldOutcome {
    let mut sessions = Vec::with_capacity(count);
    let mut failure = None;
    for _ in 0..count {
        let session = Session::open(target).and_then(|(mut s, _)| {
            s.login(account)?;
            Ok(s)
        });
        match session {
            Ok(s) => sessions.push(s),
            Err(e) => {
                failure = Some(format!("{e:#}"));
                break;
            }
        }
    }
    let held = sessions.len();
    opened.wait();
    go.wait();
    let Some(&t0) = start.get() else {
        return HeldOutcome {
            held,
            latencies: Vec::new(),
            failure,
        };
    };
    let mut waiting: Vec<usize> = (0..held)
        .filter(|&i| sessions[i].send("RETR 1").is_ok())
        .collect();
    for &i in &waiting {
        if let Err(e) = sessions[i].tls.sock.set_nonblocking(true) {
            failure.get_or_insert(format!("set_nonblocking: {e}"));
        }
    }
    let mut latencies = Vec::with_capacity(held);
    let deadline = t0 + IO_TIMEOUT;
    while !waiting.is_empty() && Instant::now() < deadline {
        let mut fds: Vec<libc::pollfd> = waiting
            .iter()
            .map(|&i| libc::pollfd {
                fd: sessions[i].tls.sock.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs for the call.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 1000) };
        if ready < 0 {
            failure.get_or_insert(format!("poll: {}", std::io::Error::last_os_error()));
            break;
        }
        let mut still = Vec::with_capacity(waiting.len());
        for (&i, fd) in waiting.iter().zip(&fds) {
            if fd.revents == 0 {
                still.push(i);
                continue;
            }
            match sessions[i].try_multiline() {
                Ok(None) => still.push(i),
                Ok(Some(body)) if body == message => latencies.push(ms(t0.elapsed())),
                Ok(Some(_)) => {
                    failure.get_or_insert("RETR 1 answer differs from the message".into());
                }
                Err(e) => {
                    failure.get_or_insert(format!("{e:#}"));
                }
            }
        }
        waiting = still;
    }
    // Closing here, in parallel, rather than all from one thread.
    drop(sessions);
    HeldOutcome {
        held,
        latencies,
        failure,
    }
}

/// The `p`-th percentile (nearest rank) of sorted `v`.
fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// Waits (bounded) until the Dovecot pop3 processes of the previous target's sessions are
/// gone, so every target starts from the same server state.
fn wait_for_pop3_processes(baseline: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = processes_named("pop3").0;
        if now <= baseline + 2 {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{now} Dovecot pop3 processes still running (baseline {baseline})"
        );
        thread::sleep(Duration::from_millis(100));
    }
}
