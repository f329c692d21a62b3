#!/usr/bin/env bash
# A team tracking server on this machine: PostgreSQL as MLflow's backend store (and as the Optuna
# storage of parallel sweep workers) plus `mlflow server` proxying artifacts into a folder.
#
#   scripts/tracking_server.sh start [--dir DIR] [--port 5000] [--pg-port 5433] [--workers 2]
#   scripts/tracking_server.sh env   [--dir DIR]    # the export lines again
#   scripts/tracking_server.sh status [--dir DIR]
#   scripts/tracking_server.sh stop  [--dir DIR]
#
# DIR (default $MOODGEN_SERVER_DIR, else .cache/tracking-server in this repository) holds
# everything: pg/ (the database cluster), artifacts/ (every run's files), the logs and server.env.
# Both services listen on 127.0.0.1 only. `start` is idempotent: what runs already is left alone.
# As root with apt-get, a missing PostgreSQL is installed (Debian's `postgresql`) and the cluster
# runs as the `postgres` user. The Python that runs `mlflow server` is $PYTHON (default python3)
# and needs this project installed (`pip install -e .`: mlflow and the psycopg driver).
# The last lines of `start` (and `env`) are shell exports: eval "$(... start)" sets them.
set -euo pipefail

command=${1:-}
[ $# -gt 0 ] && shift
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${MOODGEN_SERVER_DIR:-$repo/.cache/tracking-server}
port=${MOODGEN_MLFLOW_PORT:-5000}
pg_port=${MOODGEN_PG_PORT:-5433}
workers=${MOODGEN_MLFLOW_WORKERS:-2}
python=${PYTHON:-python3}
while [ $# -gt 0 ]; do
  case $1 in
    --dir) dir=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --pg-port) pg_port=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    *) echo "tracking_server.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
case $command in start|stop|status|env) ;; *)
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac

say() { echo "tracking_server: $*" >&2; }
die() { say "error: $*"; exit 1; }

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
pgdata=$dir/pg
socket=$dir/run
env_file=$dir/server.env

if [ "$(id -u)" -eq 0 ]; then
  pg_user=postgres
  as_pg() { runuser -u postgres -- "$@"; }
else
  pg_user=$(id -un)
  as_pg() { "$@"; }
fi

pg_bin() {  # the folder of initdb/pg_ctl/psql: on PATH, else Debian's newest version
  local found
  found=$(command -v pg_ctl 2>/dev/null || true)
  if [ -n "$found" ]; then dirname "$(readlink -f "$found")"; return; fi
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$found" ] && [ -x "$found/pg_ctl" ] && echo "$found"
}

mlflow_pid() {  # the running mlflow server's pid (its process group), or nothing
  local pid
  [ -f "$dir/mlflow.pid" ] || return 0
  pid=$(sed -n 1p "$dir/mlflow.pid")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

healthy() {
  "$python" - "$1" <<'EOF' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health", timeout=3) as answer:
    sys.exit(0 if answer.read().strip() == b"OK" else 1)
EOF
}

print_env() {
  [ -f "$env_file" ] || die "no server was started in $dir (run: $0 start --dir $dir)"
  cat "$env_file"
}

case $command in
env) print_env; exit 0 ;;
status)
  bin=$(pg_bin || true)
  if [ -n "$bin" ] && [ -f "$pgdata/PG_VERSION" ] && as_pg "$bin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
    say "postgresql: running ($pgdata)"
  else
    say "postgresql: stopped"
  fi
  pid=$(mlflow_pid)
  if [ -n "$pid" ]; then say "mlflow server: running (pid $pid)"; else say "mlflow server: stopped"; fi
  [ -f "$env_file" ] && cat "$env_file"
  exit 0 ;;
stop)
  pid=$(mlflow_pid)
  if [ -n "$pid" ]; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    say "mlflow server stopped"
  fi
  rm -f "$dir/mlflow.pid"
  bin=$(pg_bin || true)
  if [ -n "$bin" ] && [ -f "$pgdata/postmaster.pid" ]; then
    as_pg "$bin/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null && say "postgresql stopped"
  fi
  exit 0 ;;
esac

# --- start ---------------------------------------------------------------------------------
bin=$(pg_bin || true)
if [ -z "$bin" ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    say "installing PostgreSQL (Debian's postgresql)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq postgresql >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; }
    bin=$(pg_bin || true)
  fi
  [ -n "$bin" ] || die "PostgreSQL is not installed: apt-get install postgresql (as root), or put pg_ctl on PATH"
fi
"$python" -c "import mlflow, psycopg" 2>/dev/null ||
  die "$python cannot import mlflow and psycopg: activate the project's venv (pip install -e .) or set PYTHON="

mkdir -p "$pgdata" "$socket"
if [ "$(id -u)" -eq 0 ]; then  # the cluster runs as postgres, which must reach its folders
  chmod 711 "$dir"
  chown postgres: "$pgdata" "$socket"
  as_pg test -x "$pgdata" -a -w "$pgdata" ||
    die "the postgres user cannot reach $pgdata (a parent folder is closed to it); use --dir under /var/lib, /srv or /tmp"
fi
chmod 700 "$pgdata"

password_file=$dir/pg_password
if [ ! -f "$pgdata/PG_VERSION" ]; then
  say "initialising a PostgreSQL cluster in $pgdata"
  umask 077
  head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$password_file"
  umask 022
  as_pg "$bin/initdb" -D "$pgdata" --auth-local=peer --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
    >"$dir/initdb.log" 2>&1 || die "initdb failed: $(tail -n 3 "$dir/initdb.log")"
fi
[ -f "$password_file" ] || die "$password_file is missing: the cluster in $pgdata was not made by this script"
password=$(cat "$password_file")

if ! as_pg "$bin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
  say "starting PostgreSQL on 127.0.0.1:$pg_port"
  as_pg "$bin/pg_ctl" -D "$pgdata" -l "$pgdata/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -c unix_socket_directories=$socket" start >/dev/null ||
    die "PostgreSQL did not start: $(tail -n 5 "$pgdata/postgres.log")"
else  # already running: it keeps the port it was started with
  pg_port=$(sed -n 4p "$pgdata/postmaster.pid")
fi

psql() { as_pg "$bin/psql" -h "$socket" -p "$pg_port" -d postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
if [ "$(psql -c "select 1 from pg_roles where rolname = 'moodgen'")" != 1 ]; then
  psql -c "create role moodgen login password '$password'"
fi
for db in mlflow optuna; do
  if [ "$(psql -c "select 1 from pg_database where datname = '$db'")" != 1 ]; then
    psql -c "create database $db owner moodgen"
  fi
done
backend="postgresql://moodgen:$password@127.0.0.1:$pg_port/mlflow"
optuna="postgresql://moodgen:$password@127.0.0.1:$pg_port/optuna"

pid=$(mlflow_pid)
if [ -n "$pid" ]; then
  port=$(sed -n 2p "$dir/mlflow.pid")  # it keeps the port it was started with
else
  say "starting mlflow server on 127.0.0.1:$port (artifacts in $dir/artifacts)"
  mkdir -p "$dir/artifacts"
  # its GenAI job runner (four more processes) is of no use to moodgen: off unless asked for
  MLFLOW_SERVER_ENABLE_JOB_EXECUTION=${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false} \
    setsid "$python" -m mlflow server --backend-store-uri "$backend" --artifacts-destination "$dir/artifacts" \
      --serve-artifacts --host 127.0.0.1 --port "$port" --workers "$workers" \
      >"$dir/mlflow.log" 2>&1 </dev/null &
  pid=$!
  printf '%s\n%s\n' "$pid" "$port" >"$dir/mlflow.pid"
fi
for _ in $(seq 240); do
  healthy "$port" && break
  kill -0 "$pid" 2>/dev/null || die "mlflow server exited: $(tail -n 5 "$dir/mlflow.log")"
  sleep 0.5
done
healthy "$port" || die "mlflow server did not answer http://127.0.0.1:$port/health within 120 s (log: $dir/mlflow.log)"

cat >"$env_file" <<EOF
export MLFLOW_TRACKING_URI=http://127.0.0.1:$port
export MOODGEN_OPTUNA_STORAGE=$optuna
EOF
chmod 600 "$env_file"
say "ready: MLflow UI and API at http://127.0.0.1:$port, Optuna storage on PostgreSQL 127.0.0.1:$pg_port"
cat "$env_file"
