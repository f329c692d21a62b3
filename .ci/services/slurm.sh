#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the tests (tests/slurm_cluster.py) and CI:
# Debian's slurm-wlm (22.05) + munge, installed when missing (root with apt), one node named
# after `hostname -s` with every CPU, a default partition `debug`, no cgroups, no accounting
# database (sacct is unavailable; `scontrol show job` keeps finished jobs for MinJobAge).
# The daemons are started directly (no systemd). Safe to re-run: a cluster that is up already
# is left alone; a changed slurm.conf restarts the daemons this script started.
# Exit 0 once `sinfo` shows the node idle (bounded by SLURM_START_TIMEOUT, 90 s); else non-zero
# with one `slurm.sh: ...` line saying why on stderr.
set -euo pipefail

TIMEOUT="${SLURM_START_TIMEOUT:-90}"
CONF_DIR=/etc/slurm
CONF="$CONF_DIR/slurm.conf"
LOG_DIR=/var/log/slurm
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid

die() {
  echo "slurm.sh: $*" >&2
  exit 1
}

node="$(hostname -s)"

running() {  # a pid file whose process is alive
  [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

node_state() {  # idle, mixed, ...; a trailing * (not responding) is kept, so "idle*" is not up
  running "$CTLD_PID" || return 0
  sinfo -h -N -n "$node" -o %T 2>/dev/null | head -n 1 | tr -d '~#!%$@^-'
}

[ "$(id -u)" -eq 0 ] || die "needs root (installs packages, starts munged, slurmctld and slurmd)"

# 1. packages
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  command -v apt-get >/dev/null || die "slurm-wlm and munge are not installed and there is no apt-get to install them"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq slurm-wlm munge >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get install -y -qq slurm-wlm munge >/dev/null || die "apt-get install slurm-wlm munge failed"
  fi
fi

# 2. slurm.conf for one local node (rewritten only when the machine changed)
cpus="$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)"  # nproc obeys OMP_NUM_THREADS: =1 made a 1-CPU node
mem_mb="$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)"
real_mb=$((mem_mb * 9 / 10))  # below what slurmd measures, or the node is drained as "Low RealMemory"
mkdir -p "$CONF_DIR" "$LOG_DIR" /var/spool/slurmctld /var/spool/slurmd
wanted="$(cat <<EOF
# written by .ci/services/slurm.sh: one local node, no cgroups, no accounting database
ClusterName=moodgen
SlurmctldHost=${node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=900
SlurmctldTimeout=60
SlurmdTimeout=60
InactiveLimit=0
KillWait=10
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=${CTLD_PID}
SlurmdPidFile=${SLURMD_PID}
SlurmctldLogFile=${LOG_DIR}/slurmctld.log
SlurmdLogFile=${LOG_DIR}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=${node} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${real_mb} State=UNKNOWN
PartitionName=debug Nodes=${node} Default=YES MaxTime=INFINITE State=UP
EOF
)"
changed=0
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$wanted" ]; then
  printf '%s\n' "$wanted" >"$CONF"
  changed=1
fi

case "$(node_state)" in
  idle|mixed|allocated|completing)
    if [ "$changed" -eq 0 ]; then
      echo "slurm.sh: node $node is up already ($(node_state))"
      exit 0
    fi
    ;;
esac

# 3. munge: a key, the daemon, and a credential that round-trips
if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge
  if command -v mungekey >/dev/null; then
    mungekey --create --keyfile=/etc/munge/munge.key --force
  else
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
fi
mkdir -p /run/munge /var/lib/munge /var/log/munge
if id munge >/dev/null 2>&1; then
  chown munge:munge /etc/munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge
fi
chmod 0700 /etc/munge
chmod 0400 /etc/munge/munge.key
chmod 0755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  if id munge >/dev/null 2>&1 && command -v runuser >/dev/null; then
    runuser -u munge -- munged || die "munged did not start (see /var/log/munge/munged.log)"
  else
    munged --force || die "munged did not start (see /var/log/munge/munged.log)"
  fi
  for _ in $(seq 1 20); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
    sleep 0.5
  done
  munge -n | unmunge >/dev/null 2>&1 || die "munge credentials do not round-trip (see /var/log/munge/munged.log)"
fi

# 4. slurmctld and slurmd (restarted when slurm.conf changed)
if [ "$changed" -eq 1 ]; then
  for pidfile in "$SLURMD_PID" "$CTLD_PID"; do
    if running "$pidfile"; then
      pid="$(cat "$pidfile")"
      kill "$pid"
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
  done
fi
if ! running "$CTLD_PID"; then
  slurmctld || die "slurmctld did not start (see $LOG_DIR/slurmctld.log)"
fi
for _ in $(seq 1 20); do
  scontrol ping >/dev/null 2>&1 && break
  sleep 0.5
done
if ! running "$SLURMD_PID"; then
  slurmd || die "slurmd did not start (see $LOG_DIR/slurmd.log)"
fi

# 5. the node idle in sinfo
deadline=$((SECONDS + TIMEOUT))
state=""
while [ "$SECONDS" -lt "$deadline" ]; do
  state="$(node_state)"
  case "$state" in
    idle|mixed|allocated|completing)
      echo "slurm.sh: node $node is $state (partition debug, $cpus CPUs, ${real_mb} MB)"
      exit 0
      ;;
    drained|draining|drain|down)
      scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true
      ;;
  esac
  sleep 1
done
reason="$(sinfo -h -N -n "$node" -o '%E' 2>/dev/null | head -n 1)"
die "node $node is not idle after ${TIMEOUT}s (state: ${state:-unknown}${reason:+, reason: $reason}; logs in $LOG_DIR)"
