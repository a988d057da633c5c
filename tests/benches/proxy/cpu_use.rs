//! Each proxy process's CPU time per message or MiB: a figure the machine's other load
//! moves much less than throughput does.

use std::time::Duration;

use anyhow::Result;

use crate::{Results, Target};

/// CPU time each target's process spent on a part, and on how many units (messages, MiB).
pub(crate) struct CpuUse(Vec<(Duration, f64)>);

impl CpuUse {
    pub(crate) fn new(targets: &[Target]) -> CpuUse {
        CpuUse(vec![(Duration::ZERO, 0.0); targets.len()])
    }

    /// Runs `f` for target `i`, which serves `units` units, and adds the CPU it cost.
    pub(crate) fn measure<T>(
        &mut self,
        targets: &[Target],
        i: usize,
        units: f64,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let before = targets[i].cpu();
        let result = f()?;
        if let (Some(before), Some(after)) = (before, targets[i].cpu()) {
            self.0[i].0 += after.saturating_sub(before);
            self.0[i].1 += units;
        }
        Ok(result)
    }

    pub(crate) fn report(&self, results: &mut Results, targets: &[Target], unit: &str) {
        for (t, (cpu, units)) in targets.iter().zip(&self.0) {
            if *units > 0.0 {
                results.line(format!(
                    "  {:15} process CPU {:8.1} µs per {unit}",
                    t.name,
                    cpu.as_secs_f64() * 1e6 / units
                ));
            }
        }
    }
}
