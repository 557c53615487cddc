#!/usr/bin/env bash
# sshfleet benchmark: sshfleet vs Ansible vs the OpenSSH floor on a local fleet of real sshd
# hosts, measured in one run with the contenders alternating. Run as root on the test machine
# (the fleet needs namespaces); loopback only. Not part of the test suite.
#
#   bench/run.sh [--hosts N] [--runs R] [--only rotation,replication,inventory,rss,modules,bastion,hostkeys,largefile]
#                [--rss-runs R] [--rss-mib M] [--large-mib M] [--large-hosts N] [--profile] [--no-build]
#                [--results FILE | --no-results] [--keep-work]
#
# --profile also builds a symbolized release binary (target/bench-profile) and reruns each
# sshfleet command once under `perf record -a` to show where the CPU goes (in RESULTS.md).
# Defaults: N=50, R=3, all scenarios. Prints a table of medians and ratios and writes
# bench/RESULTS.md (machine, versions, targets met/missed, raw numbers per run).
# Environment: SSHFLEET_BIN=path uses that binary instead of building target/release/sshfleet;
# SSHFLEET_PROFILE_BIN=path likewise for --profile (it should have symbols).
# Everything it starts (the fleet, the driver and whatever the driver runs) is stopped by PID on
# exit, failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

hosts=50 runs=3 only=rotation,replication,inventory,rss,modules,bastion,hostkeys,largefile rss_runs=1 rss_mib=1024 large_mib=256 large_hosts=10
build=1 results=1 keep=0 profile=0 results_file=bench/RESULTS.md
args_text="$*"
while [ $# -gt 0 ]; do
  case "$1" in
    --hosts) hosts=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --rss-runs) rss_runs=$2; shift 2 ;;
    --rss-mib) rss_mib=$2; shift 2 ;;
    --large-mib) large_mib=$2; shift 2 ;;
    --large-hosts) large_hosts=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --no-results) results=0; shift ;;
    --results) results_file=$2; shift 2 ;;
    --keep-work) keep=1; shift ;;
    --profile) profile=1; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$hosts" =~ ^[0-9]+$ ]] && [ "$hosts" -ge 2 ] || { echo "--hosts must be a number >= 2" >&2; exit 2; }
[[ "$runs" =~ ^[0-9]+$ ]] && [ "$runs" -ge 1 ] || { echo "--runs must be a number >= 1" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "bench/run.sh must run as root (the test fleet uses namespaces)" >&2; exit 2; }

log() { printf '[bench] %s\n' "$*" >&2; }
work=$(mktemp -d /tmp/sshfleet-bench.XXXXXX)
fleet_pid="" bfleet_pid="" driver_pid=""
stop_pid() { # PID: SIGTERM, wait up to 30 s, then SIGKILL
  local p=$1 i
  kill -0 "$p" 2>/dev/null || return 0
  kill -TERM "$p" 2>/dev/null || true
  for i in $(seq 1 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  [ -n "$driver_pid" ] && stop_pid "$driver_pid"
  [ -n "$fleet_pid" ] && stop_pid "$fleet_pid"
  [ -n "$bfleet_pid" ] && stop_pid "$bfleet_pid"
  if [ "$keep" = 1 ] || { [ "$rc" != 0 ] && [ -d "$work/logs" ]; }; then
    log "work directory kept: $work (logs in $work/logs)"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

if [ -n "${SSHFLEET_BIN:-}" ]; then
  bin=$(readlink -f "$SSHFLEET_BIN")
else
  bin=$repo/target/release/sshfleet
  if [ "$build" = 1 ]; then
    log "building sshfleet (release)"
    cargo build --release --quiet --bin sshfleet
  fi
fi
[ -x "$bin" ] || { echo "no sshfleet binary at $bin" >&2; exit 1; }
# A private copy: a rebuild of target/release during the run must not change what is measured.
cp "$bin" "$work/sshfleet"
bin=$work/sshfleet

if [ ! -x /usr/bin/time ]; then # GNU time measures peak RSS
  log "installing GNU time"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi
profile_arg=()
if [ "$profile" = 1 ]; then
  command -v perf >/dev/null || { echo "--profile needs perf (apt-get install linux-perf)" >&2; exit 1; }
  if [ -n "${SSHFLEET_PROFILE_BIN:-}" ]; then
    profile_arg=(--profile-bin "$(readlink -f "$SSHFLEET_PROFILE_BIN")")
  else
    log "building a symbolized sshfleet for profiling (target/bench-profile)"
    CARGO_PROFILE_RELEASE_STRIP=none cargo build --release --quiet --bin sshfleet --target-dir target/bench-profile
    profile_arg=(--profile-bin "$repo/target/bench-profile/release/sshfleet")
  fi
fi
log "setting up the Ansible venv (scripts/setup.sh)"
bash scripts/setup.sh >"$work/setup.log" 2>&1 || { cat "$work/setup.log" >&2; echo "scripts/setup.sh failed" >&2; exit 1; }
grep '^\[setup\] ready' "$work/setup.log" >&2 || true
if [[ ",$only," == *,modules,* ]] && [ "$build" = 1 ]; then
  log "building the module binaries and the sshfleet.fleet collection (scripts/build-collection.sh)"
  bash scripts/build-collection.sh >"$work/collection.log" 2>&1 || { cat "$work/collection.log" >&2; exit 1; }
fi
venv=$repo/target/venv


wait_ready() { # DIR LOG PID
  for _ in $(seq 1 600); do
    [ -e "$1/ready" ] && break
    kill -0 "$3" 2>/dev/null || { cat "$2" >&2; exit 1; }
    sleep 0.1
  done
  [ -e "$1/ready" ] || { echo "fleet did not come up:" >&2; cat "$2" >&2; exit 1; }
  head -n1 "$2" >&2
}
fleet_dir=$work/fleet
if [ "$only" != bastion ]; then
  log "starting a $hosts-host fleet in $work/fleet"
  "$bin" fleet up --hosts "$hosts" --dir "$work/fleet" </dev/null >"$work/fleet.log" 2>&1 &
  fleet_pid=$!
  wait_ready "$work/fleet" "$work/fleet.log" "$fleet_pid"
fi
bastion_arg=()
if [[ ",$only," == *,bastion,* ]]; then
  # N hidden hosts + the bastion; MaxStartups raised so the floor's parallel -J logins are
  # never dropped (a floor with failed logins is not a floor).
  log "starting $hosts hosts behind a bastion in $work/bfleet"
  "$bin" fleet up --hosts "$((hosts + 1))" --behind-bastion --users deploy --max-startups 1000:30:1000 \
    --dir "$work/bfleet" </dev/null >"$work/bfleet.log" 2>&1 &
  bfleet_pid=$!
  wait_ready "$work/bfleet" "$work/bfleet.log" "$bfleet_pid"
  bastion_arg=(--bastion-fleet-dir "$work/bfleet")
  [ "$only" = bastion ] && fleet_dir=$work/bfleet
fi

results_arg=()
[ "$results" = 1 ] && results_arg=(--results "$(readlink -m "$results_file")")
python3 "$repo/bench/lib/bench.py" --fleet-dir "$fleet_dir" "${bastion_arg[@]}" --work "$work" --sshfleet "$bin" \
  --venv "$venv" --repo "$repo" --runs "$runs" --rss-runs "$rss_runs" --rss-mib "$rss_mib" \
  --large-mib "$large_mib" --large-hosts "$large_hosts" --only "$only" \
  --args-text "$args_text" "${results_arg[@]}" "${profile_arg[@]}" &
driver_pid=$!
set +e
wait "$driver_pid"
rc=$?
set -e
driver_pid=""
exit "$rc"
