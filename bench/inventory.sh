#!/usr/bin/env bash
# Benchmark: `sshfleet inventory --list` vs `ansible-inventory --list` on a generated
# 10,000-host inventory with group_vars/ and host_vars/. Prints medians and the ratio.
#
# Usage: bench/inventory.sh [HOSTS] [RUNS]      (defaults: 10000 hosts, 5 runs)
# Needs the ansible-core venv (scripts/setup.sh) and builds sshfleet in release mode.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
hosts="${1:-10000}"
runs="${2:-5}"
venv="$root/target/venv/bin"
[ -x "$venv/ansible-inventory" ] || { echo "missing $venv/ansible-inventory: run scripts/setup.sh" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export ANSIBLE_HOME="$work/ansible-home" ANSIBLE_CONFIG="$work/ansible.cfg" ANSIBLE_NOCOLOR=1
printf '[defaults]\n' > "$ANSIBLE_CONFIG"

echo "building sshfleet (release)..." >&2
cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin sshfleet
bin="$root/target/release/sshfleet"

python3 "$root/bench/gen_inventory.py" "$work/inv" "$hosts"
inv="$work/inv/hosts"

# Wall time of one run in milliseconds (output discarded).
time_ms() {
    local start end
    start=$(date +%s%N)
    "$@" > /dev/null
    end=$(date +%s%N)
    echo $(( (end - start) / 1000000 ))
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2] + a[NR/2+1]) / 2)}'; }

# Correctness first: both must print the same inventory.
"$bin" -i "$inv" inventory --list > "$work/ours.json"
"$venv/ansible-inventory" -i "$inv" --list > "$work/theirs.json"
python3 - "$work/ours.json" "$work/theirs.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
if a != b:
    sys.exit("sshfleet and ansible-inventory outputs differ")
print(f"outputs equal: {len(a['_meta']['hostvars'])} hosts with variables", file=sys.stderr)
PY

ours=(); theirs=(); parse=()
for _ in $(seq "$runs"); do   # alternate A B A B
    ours+=("$(time_ms "$bin" -i "$inv" inventory --list)")
    theirs+=("$(time_ms "$venv/ansible-inventory" -i "$inv" --list)")
    parse+=("$(time_ms "$bin" -i "$inv" hosts all)")
done
o=$(printf '%s\n' "${ours[@]}" | median)
t=$(printf '%s\n' "${theirs[@]}" | median)
p=$(printf '%s\n' "${parse[@]}" | median)
echo "inventory --list, $hosts hosts, median of $runs runs (machine load: $(cut -d' ' -f1-3 /proc/loadavg)):"
echo "  sshfleet          ${o} ms   (runs: ${ours[*]})"
echo "  ansible-inventory ${t} ms   (runs: ${theirs[*]})"
echo "  (sshfleet hosts all, parse + group_vars only: ${p} ms)"
awk -v o="$o" -v t="$t" 'BEGIN { if (o < 1) o = 1; printf "  ratio             %.1fx faster\n", t / o }'
