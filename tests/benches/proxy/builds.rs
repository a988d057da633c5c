//! Earlier popgate builds run beside the current one (`BENCH_POPGATE_BEFORE`).

/// `BENCH_POPGATE_BEFORE`: `path`, or `label=path,label=path` (oldest first), as target
/// names and binaries.
pub(crate) fn other_builds() -> Vec<(&'static str, std::path::PathBuf)> {
    let Ok(value) = std::env::var("BENCH_POPGATE_BEFORE") else {
        return Vec::new();
    };
    value
        .split(',')
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (label, path) = entry.split_once('=').unwrap_or(("before", entry));
            let name: &'static str = Box::leak(format!("popgate-{label}").into_boxed_str());
            (name, path.into())
        })
        .collect()
}

pub(crate) fn is_other_build(name: &str) -> bool {
    name.starts_with("popgate-") && name != "popgate-norules" && name != "popgate-cold"
}
