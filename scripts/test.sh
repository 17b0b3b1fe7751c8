#!/usr/bin/env bash
# simlab's test command: every test of the workspace, including the pcscd lane (the
# emulated card served through vsmartcard's vpcd to a real pcscd, read back with PC/SC
# clients).
#
#   scripts/test.sh [extra cargo test arguments]     e.g. scripts/test.sh -- --nocapture
#
# Installs what the pcscd lane needs when it is missing (Debian/Ubuntu, as root or with
# sudo), starts pcscd unless one already serves vpcd, sets SIMLAB_PCSCD=1 so the pcscd-lane
# tests run (without it they skip themselves), runs `cargo test --workspace --locked`, and
# stops the pcscd it started. Exit code: cargo's.
#
# SIMLAB_SKIP_PCSCD=1 skips installing and starting pcscd (pcscd-lane tests then skip),
# for machines where you are not root.
#
# After the tests, scripts/fuzz.sh runs every cargo-fuzz target of fuzz/ for
# SIMLAB_FUZZ_SECONDS (default 20) each; SIMLAB_SKIP_FUZZ=1 skips it. A crash fails the run.

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=scripts/pcscd.sh
. "$ROOT/scripts/pcscd.sh"

start=$(date +%s)
say() { printf 'test.sh: %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null 2>&1; then
    say "cargo not found: install a Rust toolchain (rust-version in Cargo.toml) first"
    exit 1
fi

lane="skipped (SIMLAB_SKIP_PCSCD=1)"
if [ "${SIMLAB_SKIP_PCSCD:-}" != 1 ]; then
    trap pcscd_stop EXIT
    # A signal still goes through the EXIT trap.
    trap 'exit 130' INT
    trap 'exit 143' TERM
    if ! pcscd_install; then
        say "FAIL: the pcscd lane's packages are missing (set SIMLAB_SKIP_PCSCD=1 to run without it)"
        exit 1
    fi
    if ! pcscd_start; then
        say "FAIL: pcscd with vpcd could not be started (set SIMLAB_SKIP_PCSCD=1 to run without it)"
        exit 1
    fi
    export SIMLAB_PCSCD=1
    lane="on (pcscd + vpcd at 127.0.0.1:$SIMLAB_VPCD_PORT)"
fi

say "cargo test --workspace --locked $*   [pcscd lane: $lane]"
cargo test --workspace --locked "$@"
rc=$?

pcscd_stop
fuzz="skipped (SIMLAB_SKIP_FUZZ=1)"
if [ "$rc" -eq 0 ] && [ "${SIMLAB_SKIP_FUZZ:-}" != 1 ]; then
    fuzz_start=$(date +%s)
    say "scripts/fuzz.sh   [${SIMLAB_FUZZ_SECONDS:-20}s per target]"
    "$ROOT/scripts/fuzz.sh"
    rc=$?
    fuzz="$(( $(date +%s) - fuzz_start ))s"
fi
elapsed=$(($(date +%s) - start))
if [ "$rc" -eq 0 ]; then
    say "PASS: cargo test and fuzzing passed in ${elapsed}s (pcscd lane: $lane; fuzzing: $fuzz)"
else
    say "FAIL: exit $rc after ${elapsed}s (pcscd lane: $lane; fuzzing: $fuzz)"
fi
exit "$rc"
