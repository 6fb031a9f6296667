#!/usr/bin/env bash
# Start a single-node SLURM 22.05 cluster for kdprobe's SLURM tests (Debian 12, as root, no systemd).
#
#   sudo tests/slurm/start_slurm.sh        # idempotent: a second call finds the cluster up and returns
#   sudo tests/slurm/stop_slurm.sh         # stops only the daemons this script started
#
# Installs `slurmctld slurmd slurm-client munge` from Debian when missing, writes /etc/slurm/slurm.conf and
# /etc/slurm/gres.conf (marked as ours; a foreign slurm.conf is never overwritten), starts munged (as user
# munge), slurmctld and slurmd directly, and waits until the node is idle. Daemons it started are recorded in
# $KDPROBE_SLURM_DIR/started/*.pid; stop_slurm.sh reads those and nothing else.
#
# Settings (environment):
#   KDPROBE_SLURM_DIR     state, spool, logs, fake GPU devices, pid files   [/var/lib/kdprobe-slurm]
#   KDPROBE_SLURM_CPUS    CPUs the node advertises (may exceed the real count) [8]
#   KDPROBE_SLURM_MEM_MB  RealMemory the node advertises [80% of physical memory, at most 64000]
#   KDPROBE_SLURM_GPUS    fake GPUs (gres gpu, type "fake") [2]
#   KDPROBE_SLURM_MIN_JOB_AGE  seconds a finished job stays visible to squeue [600]; must stay above
#                         3 x slurm-init-seconds-before-status-checks AND above the executor's longest poll
#                         interval (180 s), or `slurm-status-command: squeue` loses finished jobs and hangs.
#   KDPROBE_SLURM_NO_INSTALL=1  fail instead of running apt-get
set -euo pipefail

PARTITION=debug
CLUSTER=kdprobe
MARKER="# kdprobe test cluster: written by tests/slurm/start_slurm.sh"
BASE=${KDPROBE_SLURM_DIR:-/var/lib/kdprobe-slurm}
CPUS=${KDPROBE_SLURM_CPUS:-8}
GPUS=${KDPROBE_SLURM_GPUS:-2}
MIN_JOB_AGE=${KDPROBE_SLURM_MIN_JOB_AGE:-600}
CONF_DIR=/etc/slurm

die() { echo "start_slurm.sh: ERROR: $*" >&2; exit 1; }
log() { echo "start_slurm.sh: $*"; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and starts munged/slurmctld/slurmd)"

# ---------------------------------------------------------------------------------------------- install
need_install=0
for bin in /usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/sbatch /usr/bin/squeue /usr/bin/sinfo \
           /usr/bin/scontrol /usr/sbin/munged /usr/bin/munge; do
    [ -x "$bin" ] || need_install=1
done
if [ "$need_install" -eq 1 ]; then
    [ "${KDPROBE_SLURM_NO_INSTALL:-0}" = 1 ] && die "SLURM/munge missing and KDPROBE_SLURM_NO_INSTALL=1"
    command -v apt-get >/dev/null || die "SLURM/munge missing and no apt-get to install them"
    log "installing slurmctld slurmd slurm-client munge (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null \
        || die "apt-get install slurmctld slurmd slurm-client munge failed"
fi

mkdir -p "$BASE"/{state,spool,log,run,dev,started}
chmod 755 "$BASE"

# process helpers: alive and really the daemon we think it is (pid files can go stale and pids get reused)
pid_is() {  # pid_is PID COMM
    [ -n "${1:-}" ] && [ -r "/proc/$1/comm" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]
}
pidfile_is() {  # pidfile_is FILE COMM -> prints pid
    local pid
    [ -r "$1" ] || return 1
    pid=$(tr -dc '0-9' <"$1")
    pid_is "$pid" "$2" && echo "$pid"
}
record() {  # record NAME PID: this script started it, stop_slurm.sh may stop it
    echo "$2" >"$BASE/started/$1.pid"
}

# ---------------------------------------------------------------------------------------------- config
NODE=$(hostname -s 2>/dev/null || hostname)
[ -n "$NODE" ] || die "cannot determine the host name (hostname -s)"
if [ -n "${KDPROBE_SLURM_MEM_MB:-}" ]; then
    MEM=$KDPROBE_SLURM_MEM_MB
else
    total_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
    # shellcheck disable=SC2017  # 80% of MemTotal in MB, floored to 1000
    MEM=$(( total_kb * 8 / 10 / 1024 / 1000 * 1000 ))
    [ "$MEM" -gt 64000 ] && MEM=64000
    [ "$MEM" -lt 1000 ] && MEM=1000
fi

# fake GPUs: gres/gpu drops GPUs without File=, and File= must be a character device (major 1 minor 3 is
# /dev/null's, so opening one is harmless). slurmd only stats them.
gpu_files=""
if [ "$GPUS" -gt 0 ]; then
    for ((i = 0; i < GPUS; i++)); do
        dev="$BASE/dev/nvidia$i"
        [ -c "$dev" ] || { rm -f "$dev"; mknod -m 666 "$dev" c 1 3 || die "mknod $dev failed"; }
    done
    gpu_files="$BASE/dev/nvidia[0-$((GPUS - 1))]"
    [ "$GPUS" -eq 1 ] && gpu_files="$BASE/dev/nvidia0"
fi

new_conf=$(mktemp) new_gres=$(mktemp)
trap 'rm -f "$new_conf" "$new_gres"' EXIT
node_gres=""
[ "$GPUS" -gt 0 ] && node_gres="Gres=gpu:fake:$GPUS"
cat >"$new_conf" <<CONF
$MARKER
# Single node, no accounting storage (sacct cannot report jobs: use slurm-status-command squeue).
ClusterName=$CLUSTER
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$BASE/state
SlurmdSpoolDir=$BASE/spool
SlurmctldPidFile=$BASE/run/slurmctld.pid
SlurmdPidFile=$BASE/run/slurmd.pid
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
GresTypes=gpu
# Let the node advertise more CPUs (and the GPUs) than the machine has.
SlurmdParameters=config_overrides
ReturnToService=2
# Finished jobs stay in squeue this long; must exceed 3 x slurm-init-seconds-before-status-checks and the
# executor's longest status poll interval (180 s).
MinJobAge=$MIN_JOB_AGE
InactiveLimit=0
KillWait=5
Waittime=0
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS Sockets=1 CoresPerSocket=$CPUS ThreadsPerCore=1 RealMemory=$MEM $node_gres State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
{
    echo "$MARKER"
    echo "AutoDetect=off"
    [ "$GPUS" -gt 0 ] && echo "NodeName=$NODE Name=gpu Type=fake File=$gpu_files"
} >"$new_gres"

mkdir -p "$CONF_DIR"
if [ -e "$CONF_DIR/slurm.conf" ] && ! head -n1 "$CONF_DIR/slurm.conf" | grep -qxF "$MARKER"; then
    die "$CONF_DIR/slurm.conf exists and was not written by this script; refusing to overwrite a real cluster's config"
fi
conf_changed=0
cmp -s "$new_conf" "$CONF_DIR/slurm.conf" || conf_changed=1
cmp -s "$new_gres" "$CONF_DIR/gres.conf" || conf_changed=1
if [ "$conf_changed" -eq 1 ]; then
    log "writing $CONF_DIR/slurm.conf and $CONF_DIR/gres.conf (node $NODE: CPUs=$CPUS RealMemory=$MEM GPUs=$GPUS)"
    # Daemons we started with the old config must restart to see a new node definition.
    for d in slurmd slurmctld; do
        if pid=$(pidfile_is "$BASE/started/$d.pid" "$d"); then
            log "config changed: stopping $d ($pid) to restart it"
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do pid_is "$pid" "$d" || break; sleep 0.2; done
            rm -f "$BASE/started/$d.pid"
        fi
    done
    install -m 644 "$new_conf" "$CONF_DIR/slurm.conf"
    install -m 644 "$new_gres" "$CONF_DIR/gres.conf"
fi
# Changing ClusterName needs a fresh state directory (slurmctld refuses to start otherwise).
if [ -f "$BASE/state/clustername" ] && [ "$(cat "$BASE/state/clustername")" != "$CLUSTER" ]; then
    rm -rf "$BASE/state" && mkdir -p "$BASE/state"
fi

# ---------------------------------------------------------------------------------------------- munge
munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
if munge_ok; then
    log "munged already answers"
else
    install -d -o munge -g munge -m 755 /run/munge
    install -d -o munge -g munge -m 700 /var/log/munge
    install -d -o munge -g munge -m 711 /var/lib/munge
    if [ ! -s /etc/munge/munge.key ]; then
        install -d -o munge -g munge -m 700 /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    fi
    log "starting munged"
    # --force: an earlier munged that died leaves its socket behind; we know none answers now.
    runuser -u munge -- /usr/sbin/munged --force || die "munged failed to start (see /var/log/munge/munged.log)"
    for _ in $(seq 50); do munge_ok && break; sleep 0.2; done
    munge_ok || die "munged started but munge -n | unmunge fails (see /var/log/munge/munged.log)"
    pid=$(pidfile_is /run/munge/munged.pid munged) || die "munged is up but /run/munge/munged.pid is not its pid"
    record munged "$pid"
fi

# ---------------------------------------------------------------------------------------------- slurmctld
ctld_up() { scontrol ping 2>/dev/null | grep -q 'is UP'; }
if pid=$(pidfile_is "$BASE/run/slurmctld.pid" slurmctld) && ctld_up; then
    log "slurmctld already running ($pid)"
elif ctld_up; then
    log "a slurmctld not started by this script answers; using it"
else
    log "starting slurmctld"
    /usr/sbin/slurmctld || die "slurmctld failed to start (see $BASE/log/slurmctld.log)"
    for _ in $(seq 100); do ctld_up && break; sleep 0.2; done
    if ! ctld_up; then
        tail -n 20 "$BASE/log/slurmctld.log" >&2 || true
        die "slurmctld does not answer scontrol ping (log: $BASE/log/slurmctld.log)"
    fi
    pid=$(pidfile_is "$BASE/run/slurmctld.pid" slurmctld) || die "slurmctld is up but its pid file is not"
    record slurmctld "$pid"
fi

# ---------------------------------------------------------------------------------------------- slurmd
if pid=$(pidfile_is "$BASE/run/slurmd.pid" slurmd); then
    log "slurmd already running ($pid)"
else
    log "starting slurmd"
    /usr/sbin/slurmd || die "slurmd failed to start (see $BASE/log/slurmd.log)"
    for _ in $(seq 50); do pid=$(pidfile_is "$BASE/run/slurmd.pid" slurmd) && break; sleep 0.2; done
    pid=$(pidfile_is "$BASE/run/slurmd.pid" slurmd) || {
        tail -n 20 "$BASE/log/slurmd.log" >&2 || true
        die "slurmd did not stay up (log: $BASE/log/slurmd.log)"
    }
    record slurmd "$pid"
fi

# ---------------------------------------------------------------------------------------------- node idle
state=""
for i in $(seq 150); do
    state=$(sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -n1)
    case "$state" in
        idle|mixed|allocated|completing) break ;;
        drain*|down*|fail*)
            # A node that went DRAIN/DOWN (e.g. on an earlier bad config) stays so until resumed.
            [ $((i % 10)) -eq 1 ] && { log "node $NODE is $state: resuming"; \
                scontrol update nodename="$NODE" state=resume 2>/dev/null || true; } ;;
    esac
    sleep 0.2
done
case "$state" in
    idle|mixed|allocated|completing) ;;
    *)
        sinfo -N -l >&2 || true
        scontrol show node "$NODE" >&2 || true
        tail -n 20 "$BASE/log/slurmctld.log" "$BASE/log/slurmd.log" >&2 || true
        die "node $NODE is '${state:-unknown}', not idle, after 30 s"
        ;;
esac
gres=$(sinfo -h -N -n "$NODE" -o '%G' | head -n1)
log "cluster up: node $NODE $state, partition $PARTITION, CPUs=$CPUS, RealMemory=$MEM, Gres=$gres, MinJobAge=${MIN_JOB_AGE}s"
