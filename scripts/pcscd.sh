#!/usr/bin/env bash
# pcscd with vsmartcard's vpcd driver, for simlab's pcscd lane (facts: docs/vpcd.md).
#
# Sourced by scripts/test.sh for its functions; also runnable by hand:
#   scripts/pcscd.sh install   install what is missing (Debian/Ubuntu, as root)
#   scripts/pcscd.sh start     start pcscd in the background unless one already serves vpcd
#   scripts/pcscd.sh stop      stop the pcscd that `start` started (pid file under $TMPDIR)
#   scripts/pcscd.sh status    say whether pcscd and vpcd's port are up
#
# No systemd: pcscd runs as `pcscd --foreground` in the background. vpcd's slot 0 listens
# on TCP 35963 ("Virtual PCD 00 00"); we know pcscd is usable once that port listens.

# The vpcd slot whose port shows that pcscd is usable: the port of SIMLAB_VPCD (host:port,
# the slot the pcscd lane uses) when set, else SIMLAB_VPCD_PORT, else slot 0 (35963).
if [ -n "${SIMLAB_VPCD:-}" ]; then
    SIMLAB_VPCD_PORT=${SIMLAB_VPCD##*:}
fi
SIMLAB_VPCD_PORT=${SIMLAB_VPCD_PORT:-35963}
SIMLAB_VPCD_DRIVER=${SIMLAB_VPCD_DRIVER:-/usr/lib/pcsc/drivers/serial/libifdvpcd.so}
SIMLAB_PCSCD_SOCKET=/run/pcscd/pcscd.comm
SIMLAB_PCSCD_LOG=${SIMLAB_PCSCD_LOG:-${TMPDIR:-/tmp}/simlab-pcscd.log}
SIMLAB_APT_LOG=${SIMLAB_APT_LOG:-${TMPDIR:-/tmp}/simlab-apt.log}
SIMLAB_PCSCD_PIDFILE=${TMPDIR:-/tmp}/simlab-pcscd.pid
# Set by pcscd_start when it started pcscd itself (empty when one was reused).
SIMLAB_PCSCD_STARTED_PID=""

pcscd_log() { printf 'pcscd.sh: %s\n' "$*" >&2; }

# What of the pcscd lane's system dependencies is missing, as Debian package names.
pcscd_missing_packages() {
    local missing=()
    command -v pcscd >/dev/null 2>&1 || [ -x /usr/sbin/pcscd ] || missing+=(pcscd)
    [ -e "$SIMLAB_VPCD_DRIVER" ] || missing+=(vsmartcard-vpcd)
    command -v scriptor >/dev/null 2>&1 || missing+=(pcsc-tools)
    command -v opensc-tool >/dev/null 2>&1 || missing+=(opensc)
    # The pcsc crate's build script finds libpcsclite through pkg-config.
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkgconf)
    if ! pkg-config --exists libpcsclite 2>/dev/null; then missing+=(libpcsclite-dev); fi
    # scripts/interop drives the cards with pyscard, an independent PC/SC stack.
    [ -n "$(pcscd_pyscard_python)" ] || missing+=(python3-pyscard)
    printf '%s\n' "${missing[@]}"
}

# The Python 3.11+ interpreter that imports pyscard (the one on PATH, else Debian's
# /usr/bin/python3 with python3-pyscard); prints nothing when there is none.
pcscd_pyscard_python() {
    local py
    for py in python3 /usr/bin/python3; do
        if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import smartcard, tomllib' >/dev/null 2>&1; then
            command -v "$py"
            return 0
        fi
    done
}

# Installs the missing packages with apt-get, quietly; the log is shown only on failure.
pcscd_install() {
    local missing
    mapfile -t missing < <(pcscd_missing_packages | sed '/^$/d')
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    pcscd_log "missing: ${missing[*]}; installing pcscd vsmartcard-vpcd pcsc-tools opensc libpcsclite-dev pkgconf python3-pyscard (log: $SIMLAB_APT_LOG)"
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            pcscd_log "not root and no sudo: install them by hand"
            return 1
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        pcscd_log "no apt-get here: install pcscd, the vsmartcard vpcd driver, pcsc-tools, opensc and libpcsclite by hand"
        return 1
    fi
    if ! { "${sudo[@]}" apt-get update -q &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            pcscd vsmartcard-vpcd pcsc-tools opensc libpcsclite-dev pkgconf python3-pyscard; } >"$SIMLAB_APT_LOG" 2>&1; then
        pcscd_log "apt-get failed; its log:"
        cat "$SIMLAB_APT_LOG" >&2
        return 1
    fi
    mapfile -t missing < <(pcscd_missing_packages | sed '/^$/d')
    if [ "${#missing[@]}" -ne 0 ]; then
        pcscd_log "still missing after apt-get: ${missing[*]}"
        return 1
    fi
}

# True when something listens on TCP $SIMLAB_VPCD_PORT. Reads /proc/net/tcp{,6} (state 0A =
# LISTEN) rather than connecting: a connection to vpcd's port would count as a card.
pcscd_vpcd_listening() {
    local hex
    hex=$(printf '%04X' "$SIMLAB_VPCD_PORT")
    awk -v p=":$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { found = 1 }
        END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

pcscd_running() { pgrep -x pcscd >/dev/null 2>&1; }

# Waits up to $1 tenths of a second for vpcd's port to listen.
pcscd_wait_vpcd() {
    local tenths=$1 i
    for ((i = 0; i < tenths; i++)); do
        pcscd_vpcd_listening && return 0
        # Our pcscd died: no point in waiting.
        if [ -n "$SIMLAB_PCSCD_STARTED_PID" ] && ! kill -0 "$SIMLAB_PCSCD_STARTED_PID" 2>/dev/null; then
            return 1
        fi
        sleep 0.1
    done
    pcscd_vpcd_listening
}

# Starts pcscd in the background unless a running one already serves vpcd (then reuses it).
# Sets SIMLAB_PCSCD_STARTED_PID when it started one.
pcscd_start() {
    if pcscd_running; then
        if pcscd_wait_vpcd 20; then
            pcscd_log "reusing the running pcscd (pid $(pgrep -x pcscd | tr '\n' ' ')), vpcd listens on $SIMLAB_VPCD_PORT"
            return 0
        fi
        pcscd_log "a pcscd is running (pid $(pgrep -x pcscd | tr '\n' ' ')) but nothing listens on $SIMLAB_VPCD_PORT:" \
            "is vsmartcard-vpcd installed and configured (/etc/reader.conf.d/vpcd)? Stop that pcscd and retry."
        return 1
    fi
    if pcscd_vpcd_listening; then
        pcscd_log "port $SIMLAB_VPCD_PORT is taken by something that is not pcscd; free it and retry"
        return 1
    fi
    # No pcscd runs, so a socket or pid file left there is stale (pcscd refuses to start
    # next to a socket it cannot prove dead).
    rm -f "$SIMLAB_PCSCD_SOCKET" /run/pcscd/pcscd.pid 2>/dev/null || true
    local pcscd_bin
    pcscd_bin=$(command -v pcscd || echo /usr/sbin/pcscd)
    "$pcscd_bin" --foreground >"$SIMLAB_PCSCD_LOG" 2>&1 &
    SIMLAB_PCSCD_STARTED_PID=$!
    echo "$SIMLAB_PCSCD_STARTED_PID" >"$SIMLAB_PCSCD_PIDFILE"
    # docs/vpcd.md: vpcd listens about 0.2 s after start; allow 10 s on a loaded machine.
    if ! pcscd_wait_vpcd 100; then
        pcscd_log "pcscd (pid $SIMLAB_PCSCD_STARTED_PID) did not open vpcd's port $SIMLAB_VPCD_PORT within 10 s; its log:"
        cat "$SIMLAB_PCSCD_LOG" >&2
        pcscd_stop
        return 1
    fi
    pcscd_log "started pcscd (pid $SIMLAB_PCSCD_STARTED_PID, log $SIMLAB_PCSCD_LOG); vpcd listens on $SIMLAB_VPCD_PORT"
}

# Stops the pcscd this shell started (a reused one is left alone).
pcscd_stop() {
    local pid=${SIMLAB_PCSCD_STARTED_PID:-}
    [ -n "$pid" ] || return 0
    pcscd_kill "$pid"
    rm -f "$SIMLAB_PCSCD_PIDFILE"
    SIMLAB_PCSCD_STARTED_PID=""
}

# Stops pcscd `$1` (only if that pid still is a pcscd: pids get reused).
pcscd_kill() {
    local pid=$1 i
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = pcscd ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        pcscd_log "pcscd (pid $pid) ignored SIGTERM for 5 s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

pcscd_status() {
    if pcscd_running; then
        echo "pcscd running (pid $(pgrep -x pcscd | tr '\n' ' '))"
    else
        echo "pcscd not running"
    fi
    if pcscd_vpcd_listening; then
        echo "vpcd listens on $SIMLAB_VPCD_PORT"
    else
        echo "nothing listens on $SIMLAB_VPCD_PORT"
    fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    case "${1:-}" in
    install) pcscd_install ;;
    start)
        pcscd_install
        pcscd_start
        # Run by hand, the pcscd must outlive this script.
        if [ -n "$SIMLAB_PCSCD_STARTED_PID" ]; then disown "$SIMLAB_PCSCD_STARTED_PID"; fi
        ;;
    stop)
        # The pcscd that `start` started, from its pid file.
        if [ -f "$SIMLAB_PCSCD_PIDFILE" ]; then
            pcscd_kill "$(cat "$SIMLAB_PCSCD_PIDFILE")"
            rm -f "$SIMLAB_PCSCD_PIDFILE"
        fi
        ;;
    status) pcscd_status ;;
    *)
        echo "usage: $0 install|start|stop|status" >&2
        exit 2
        ;;
    esac
fi
