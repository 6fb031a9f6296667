#!/usr/bin/env bash
# Stop the daemons tests/slurm/start_slurm.sh started (and only those: it records them in
# $KDPROBE_SLURM_DIR/started/*.pid). Jobs still queued or running on the test cluster are cancelled first.
# Config and state stay, so the next start_slurm.sh is quick. Safe to run when nothing is running.
set -uo pipefail

BASE=${KDPROBE_SLURM_DIR:-/var/lib/kdprobe-slurm}
log() { echo "stop_slurm.sh: $*"; }

[ "$(id -u)" -eq 0 ] || { echo "stop_slurm.sh: ERROR: must run as root" >&2; exit 1; }
[ -d "$BASE/started" ] || { log "nothing recorded in $BASE/started; nothing to stop"; exit 0; }

pid_is() { [ -n "${1:-}" ] && [ -r "/proc/$1/comm" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]; }

if [ -f "$BASE/started/slurmctld.pid" ] && command -v squeue >/dev/null; then
    jobs=$(timeout 10 squeue -h -t PENDING,RUNNING,SUSPENDED,CONFIGURING -o '%i' 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
        log "cancelling jobs: $jobs"
        # shellcheck disable=SC2086
        timeout 10 scancel $jobs 2>/dev/null || true
        sleep 1
    fi
fi

rc=0
for d in slurmd slurmctld munged; do   # reverse start order
    f="$BASE/started/$d.pid"
    [ -f "$f" ] || continue
    pid=$(tr -dc '0-9' <"$f")
    if ! pid_is "$pid" "$d"; then
        log "$d ($pid) is not running any more"
        rm -f "$f"
        continue
    fi
    log "stopping $d ($pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 75); do pid_is "$pid" "$d" || break; sleep 0.2; done
    if pid_is "$pid" "$d"; then
        log "$d ($pid) ignored SIGTERM for 15 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    if pid_is "$pid" "$d"; then
        echo "stop_slurm.sh: ERROR: $d ($pid) still running" >&2
        rc=1
    else
        rm -f "$f"
    fi
done
exit $rc
