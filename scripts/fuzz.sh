#!/usr/bin/env bash
# simlab's fuzzing step: builds the cargo-fuzz (libFuzzer) targets of fuzz/, seeds their
# corpora from the conformance suite's transcripts and the repository's vectors, runs each
# target for a bounded time and prints the executions per target. Exit 1 on any crash (its
# input is left in fuzz/artifacts/TARGET/; keep it as a regression test).
#
#   scripts/fuzz.sh [TARGET…]        SIMLAB_FUZZ_SECONDS=N (default 20) per target
#
# The machine has one stable toolchain; libFuzzer's coverage instrumentation needs flags
# only nightly accepts, which stable accepts with RUSTC_BOOTSTRAP=1. No sanitizer (-s none):
# the code is safe Rust; a panic or an assertion is what we look for.
# Needs cargo-fuzz (installed with `cargo install cargo-fuzz --locked` when missing) and
# python3 (to turn transcripts into seeds).

set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
say() { printf 'fuzz.sh: %s\n' "$*" >&2; }

SECONDS_PER_TARGET=${SIMLAB_FUZZ_SECONDS:-20}
ALL=(apdu tlv_fcp es10 bpp saip vpcd_frame text_formats card_uicc card_euicc)
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL[@]}")
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked --version 0.13.2 >&2 || { say "FAIL: cannot install cargo-fuzz"; exit 1; }
fi

say "building the fuzz targets"
(cd fuzz && cargo fuzz build -s none -O) || { say "FAIL: fuzz targets do not build"; exit 1; }

CORPUS="$ROOT/target/fuzz-corpus"
SEEDS="$ROOT/target/fuzz-seeds"
rm -rf "$SEEDS" && mkdir -p "$SEEDS"
# Transcripts of a whole conformance run against both cards feed the APDU and ES10 seeds.
SIMLAB="${CARGO_TARGET_DIR:-$ROOT/target}/debug/simlab"
[ -x "$SIMLAB" ] || cargo build -p simlab-harness --bin simlab >&2
for card in uicc euicc-test-profile; do
    "$SIMLAB" suite run vectors/conformance --card "vectors/cards/$card.toml" \
        --deviations "vectors/conformance/deviations/simlab-$card.toml" \
        --transcripts "$SEEDS/transcripts/$card" >/dev/null 2>&1 || true
done
python3 - "$SEEDS" "$CORPUS" <<'PY' || { say "FAIL: seeding"; exit 1; }
import os, sys, glob, hashlib
seeds, corpus = sys.argv[1], sys.argv[2]
def put(target, data):
    d = os.path.join(corpus, target); os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)
def hexbytes(s):
    try: return bytes.fromhex("".join(s.split()))
    except ValueError: return None
for path in glob.glob(os.path.join(seeds, "transcripts", "*", "*.txt")):
    euicc = "/euicc-test-profile/" in path
    uicc_seq, euicc_seq = bytearray(), bytearray()
    for line in open(path, encoding="utf-8"):
        if line.startswith("RESET"):
            uicc_seq += b"\x00"; euicc_seq += b"\x02\x00"
        elif line.startswith("> "):
            apdu = hexbytes(line[2:])
            if not apdu or len(apdu) > 255: continue
            put("apdu", apdu)
            uicc_seq += bytes([len(apdu)]) + apdu
            if len(apdu) > 5 and apdu[1] == 0xE2:
                payload = apdu[5:]
                put("es10", payload)
                euicc_seq += bytes([0, len(payload)]) + payload
            else:
                euicc_seq += bytes([1, len(apdu)]) + apdu
        elif line.startswith("< "):
            answer = hexbytes(line[2:])
            if answer and len(answer) > 2:
                data = answer[:-2]
                put("tlv_fcp", data)
                if data[:1] == b"\xbf": put("es10", data)
    put("card_euicc" if euicc else "card_uicc", bytes(euicc_seq if euicc else uicc_seq))
for f in glob.glob("vectors/profiles/*-UNIQUE.der"):
    put("saip", open(f, "rb").read())
for i, pattern in enumerate(["vectors/conformance/*.cases", "vectors/conformance/deviations/*.toml", "vectors/cards/*.toml"]):
    for f in glob.glob(pattern):
        put("text_formats", bytes([i]) + open(f, "rb").read()[:4000])
for ac in ["LPA:1$smdp.example.com$MATCHING-ID", "LPA:1$127.0.0.1:8443$TS48V1-A-UNIQUE$$1", "LPA:1$h$$1.2.3$1"]:
    put("text_formats", b"\x03" + ac.encode())
put("text_formats", b'\x04{"header":{"functionExecutionStatus":{"status":"Executed-Success"}},"transactionId":"00"}')
for frame in [b"\x00", b"\x01", b"\x02", b"\x04", bytes.fromhex("00A4000C023F00")]:
    put("vpcd_frame", frame)
PY

declare -A EXECS
failed=0
for t in "${TARGETS[@]}"; do
    mkdir -p "$CORPUS/$t"
    max_len=4096
    [ "$t" = saip ] && max_len=65536
    log="$ROOT/target/fuzz-$t.log"
    (cd fuzz && cargo fuzz run -s none -O "$t" "$CORPUS/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -max_len="$max_len" -print_final_stats=1) >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    EXECS[$t]=${execs:-0}
    if [ "$rc" -ne 0 ]; then
        failed=1
        say "CRASH in $t (log: $log; input in fuzz/artifacts/$t/)"
        grep -m5 -E 'panicked|SUMMARY' "$log" >&2
    fi
done
printf '%-14s %14s\n' target executions
for t in "${TARGETS[@]}"; do printf '%-14s %14s\n' "$t" "${EXECS[$t]}"; done
if [ "$failed" -ne 0 ]; then
    say "FAIL: a fuzz target crashed"
    exit 1
fi
say "PASS: ${#TARGETS[@]} targets, ${SECONDS_PER_TARGET}s each, no crash"
