//! CPU time per message or MiB, for each target: the proxy process's own (a figure the
//! machine's other load moves much less than throughput does), and what the client, Dovecot
//! and the proxy spent together.
//!
//! The sum says whether a part is bound by this machine's CPU: when the client, Dovecot and
//! the proxy keep every vCPU busy, a target's rate can be at most direct's all-CPU cost
//! divided by its own, whatever the proxy's latency. With the proxy on a CPU of its own
//! (`placement.rs`), the client's and Dovecot's CPU alone set that bound.

use std::time::Duration;

use anyhow::Result;

use crate::placement::{family_cpu, thread_cpu};
use crate::{Results, Target};

/// CPU spent on one target's share of a part, and on how many units (messages, MiB).
#[derive(Clone, Copy, Default)]
struct Spent {
    proxy: Duration,
    client: Duration,
    server: Duration,
    units: f64,
    /// Wall-clock time of the measured work.
    wall: Duration,
}

/// CPU time each target spent on a part.
pub(crate) struct CpuUse {
    spent: Vec<Spent>,
    /// The Dovecot master: its children serve the sessions.
    server: u32,
}

impl CpuUse {
    pub(crate) fn new(targets: &[Target], server: u32) -> CpuUse {
        CpuUse {
            spent: vec![Spent::default(); targets.len()],
            server,
        }
    }

    /// Runs `f` for target `i`, which serves `units` units, and adds the CPU it cost. The
    /// client is this thread: `f` must do its talking here.
    pub(crate) fn measure<T>(
        &mut self,
        targets: &[Target],
        i: usize,
        units: f64,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        // Scans first and last, so that the client's figure leaves out their cost.
        let server = family_cpu(self.server);
        let proxy = targets[i].cpu();
        let client = thread_cpu();
        let started = std::time::Instant::now();
        let result = f()?;
        let wall = started.elapsed();
        let client = thread_cpu().zip(client).map(|(a, b)| a.saturating_sub(b));
        let proxy = targets[i]
            .cpu()
            .zip(proxy)
            .map(|(a, b)| a.saturating_sub(b));
        let server = family_cpu(self.server)
            .zip(server)
            .map(|(a, b)| a.saturating_sub(b));
        let spent = &mut self.spent[i];
        spent.proxy += proxy.unwrap_or_default();
        spent.client += client.unwrap_or_default();
        spent.server += server.unwrap_or_default();
        spent.units += units;
        spent.wall += wall;
        Ok(result)
    }

    pub(crate) fn report(&self, results: &mut Results, targets: &[Target], unit: &str) {
        let per = |d: Duration, s: &Spent| d.as_secs_f64() * 1e6 / s.units;
        for (t, s) in targets.iter().zip(&self.spent) {
            if s.units > 0.0 && t.proxy.is_some() {
                results.line(format!(
                    "  {:15} process CPU {:8.1} µs per {unit}",
                    t.name,
                    per(s.proxy, s)
                ));
            }
        }
        let Some(direct) = self.spent.first().filter(|s| s.units > 0.0) else {
            return;
        };
        // Sharing every CPU, the three compete for them; with the proxy on a CPU of its own,
        // the client and Dovecot share the others, and their CPU alone bounds the rate.
        let gateway = crate::placement::gateway_cpu();
        let bounding = |s: &Spent| {
            let endpoints = per(s.client + s.server, s);
            if gateway {
                endpoints
            } else {
                endpoints + per(s.proxy, s)
            }
        };
        results.line(format!(
            "  CPU per {unit}: client + Dovecot + proxy = all; busy = all CPU / wall time; \
             bound = direct's {what} / this target's (the most a CPU-bound part allows)",
            what = if gateway {
                "client + Dovecot (the proxy has a CPU of its own)"
            } else {
                "all"
            }
        ));
        for (t, s) in targets.iter().zip(&self.spent) {
            // A target whose proxy's CPU cannot be read gets no total.
            if s.units == 0.0 || (t.proxy.is_none() && t.name != "direct") {
                continue;
            }
            let proxy = t.proxy.as_ref().map(|_| per(s.proxy, s));
            let busy = (s.client + s.server + s.proxy).as_secs_f64() / s.wall.as_secs_f64();
            results.line(format!(
                "  {:15} {:7.1} + {:7.1} + {:>7} = {:7.1} µs  busy {:4.2} CPUs  bound {:.2}×",
                t.name,
                per(s.client, s),
                per(s.server, s),
                proxy.map_or("-".to_owned(), |p| format!("{p:.1}")),
                per(s.client + s.server, s) + proxy.unwrap_or(0.0),
                busy,
                bounding(direct) / bounding(s),
            ));
        }
    }
}
