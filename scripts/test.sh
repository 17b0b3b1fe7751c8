#!/usr/bin/env bash
# simlab's test command: every test of the workspace, then the pcscd lane (the emulated card
# served through vsmartcard's vpcd to a real pcscd, read back with PC/SC clients).
#
#   scripts/test.sh [extra cargo test arguments]     e.g. scripts/test.sh -- --nocapture
#
# 1. `cargo test --workspace --locked`: the pcscd-lane tests are #[ignore]d there, so they
#    show as "ignored", never as passed without having run.
# 2. Unless SIMLAB_SKIP_PCSCD=1: installs what the lane needs when it is missing
#    (Debian/Ubuntu, as root or with sudo), starts pcscd unless one already serves vpcd, runs
#    the lane (`cargo test -p simlab-tests --test pcscd_lane --test pcscd_flows -- --ignored`),
#    then scripts/interop/pyscard_clients.py (pySim-shell's and lpac's sequences through pyscard),
#    and stops the pcscd it started.
#
# SIMLAB_VPCD=host:port picks the vpcd slot the lane uses (default 127.0.0.1:35963, reader
# "Virtual PCD 00 00"; 127.0.0.1:35964 is "Virtual PCD 00 01"), SIMLAB_VPCD_READER its
# reader name if it is not the default one; see docs/vpcd.md.
# 3. Unless SIMLAB_SKIP_FUZZ=1: scripts/fuzz.sh runs every cargo-fuzz target of fuzz/ for
#    SIMLAB_FUZZ_SECONDS (default 20) each (docs/conformance.md); a crash fails the run.
# Exit code: non-zero when either cargo test or the fuzzing failed.

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

say "cargo test --workspace --locked $*   [pcscd lane: after this, separately]"
cargo test --workspace --locked "$@"
rc=$?

# The lane's arguments: the caller's, with --ignored among the test binary's arguments.
lane_args=("$@")
case " $* " in
*" -- "*) lane_args+=(--ignored) ;;
*) lane_args+=(-- --ignored) ;;
esac

lane="skipped (SIMLAB_SKIP_PCSCD=1): its tests are reported as ignored above"
lane_rc=0
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
    lane="ran (pcscd + vpcd slot ${SIMLAB_VPCD:-127.0.0.1:$SIMLAB_VPCD_PORT})"
    say "cargo test -p simlab-tests --test pcscd_lane --test pcscd_flows --locked ${lane_args[*]}"
    cargo test -p simlab-tests --test pcscd_lane --test pcscd_flows --locked "${lane_args[@]}"
    lane_rc=$?
    # Independent judges: pyscard replaying pySim-shell's and lpac's sequences, with a full
    # ES9+ download (scripts/interop/README.md), against the simlab just built.
    simlab_bin="${CARGO_TARGET_DIR:-$ROOT/target}/debug/simlab"
    say "scripts/interop/pyscard_clients.py --simlab $simlab_bin"
    if ! cargo build -q -p simlab-harness --bin simlab --locked; then
        lane_rc=1
    elif ! "$(pcscd_pyscard_python)" scripts/interop/pyscard_clients.py --simlab "$simlab_bin"; then
        say "FAIL: an independent PC/SC client's sequence failed (above)"
        lane_rc=1
    fi
    pcscd_stop
fi

fuzz="skipped (SIMLAB_SKIP_FUZZ=1)"
fuzz_rc=0
if [ "${SIMLAB_SKIP_FUZZ:-}" != 1 ]; then
    fuzz_start=$(date +%s)
    say "scripts/fuzz.sh   [${SIMLAB_FUZZ_SECONDS:-20}s per target]"
    "$ROOT/scripts/fuzz.sh"
    fuzz_rc=$?
    fuzz="ran in $(($(date +%s) - fuzz_start))s"
fi

elapsed=$(($(date +%s) - start))
if [ "$rc" -eq 0 ] && [ "$lane_rc" -eq 0 ] && [ "$fuzz_rc" -eq 0 ]; then
    say "PASS in ${elapsed}s (pcscd lane: $lane; fuzzing: $fuzz)"
    exit 0
fi
say "FAIL after ${elapsed}s: workspace tests exited $rc, pcscd lane $lane_rc, fuzzing $fuzz_rc (pcscd lane: $lane; fuzzing: $fuzz)"
if [ "$rc" -ne 0 ]; then exit "$rc"; fi
if [ "$lane_rc" -ne 0 ]; then exit "$lane_rc"; fi
exit "$fuzz_rc"
