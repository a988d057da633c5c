#!/usr/bin/env bash
# Runs popgate's whole test suite with its real peers: installs the peers that are missing
# (Debian/apt, non-interactive), builds the workspace, runs `cargo test --workspace`.
# Exit code = the suite's. Needs root for apt-get and for the tests (Dovecot runs as root and
# chowns the maildir, popgate's RSS peak is reset through /proc/PID/clear_refs).
set -euo pipefail
cd "$(dirname "$0")/.."

# ripmime, mpack (munpack) and maildrop (reformime) are the real MIME readers that judge the
# evasion corpus after popgate (inspect/tests/evasion.rs, tests/tests/evasion_relay.rs).
PEERS=(dovecot-core dovecot-pop3d fetchmail curl python3 python3-cryptography openssl
       clamav-daemon nftables iptables iproute2
       systemd dpkg-dev util-linux
       ripmime mpack maildrop)

missing=()
for pkg in "${PEERS[@]}"; do
    if ! dpkg -s "$pkg" >/dev/null 2>&1; then
        missing+=("$pkg")
    fi
done
if ((${#missing[@]})); then
    echo "run.sh: installing missing peers: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 900 apt-get update -q
    timeout 1800 apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "run.sh: cargo not found in PATH" >&2
    exit 1
fi

# tests/tests/packaging.rs builds the .deb with cargo-deb.
if ! cargo deb --version >/dev/null 2>&1; then
    echo "run.sh: installing cargo-deb"
    timeout 1200 cargo install cargo-deb --version 3.8.0 --locked
fi

# Missing peers fail tests instead of skipping them.
export CI="${CI:-true}"
timeout 1800 cargo build --workspace --all-targets

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
export POPGATE_BIN="${POPGATE_BIN:-$target_dir/debug/popgate}"
log="$target_dir/test-run.log"
status=0
# `timeout` signals the whole process group, so test binaries and their daemons go too.
timeout 3600 cargo test --workspace --no-fail-fast 2>&1 | tee "$log" || status=$?
# With `tee` the pipeline's status is cargo's (pipefail); summarise the per-binary results.
echo
echo "== test summary =="
grep -E '^(test result:|     Running|error: test failed)' "$log" || true
# One closing line over every test binary, so the whole run reads as one result.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1);
       if ($i ~ /^failed;?$/) f += $(i-1); if ($i ~ /^ignored;?$/) s += $(i-1) } }
     END { printf "total: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
