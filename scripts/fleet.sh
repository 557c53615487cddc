#!/usr/bin/env bash
# Run a local test fleet of real sshd hosts on 127.0.0.1 (root only) until Ctrl-C/SIGTERM:
#   scripts/fleet.sh --hosts 10 --dir /tmp/fleet     # then: -i /tmp/fleet/inventory.ini
# All arguments go to `sshfleet fleet up` (see `sshfleet fleet up --help`). The binary is
# $SSHFLEET_BIN, or a (re)built target/debug/sshfleet.
# In a script, background it and wait for DIR/ready; `kill PID` tears everything down:
#   scripts/fleet.sh --hosts 20 --dir "$d" & pid=$!
#   while [ ! -e "$d/ready" ]; do kill -0 $pid || exit 1; sleep 0.1; done
#   ...; kill $pid; wait $pid
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${SSHFLEET_BIN:-}"
if [ -z "$bin" ]; then
  cargo build -q --bin sshfleet
  bin=target/debug/sshfleet
fi
# exec: signals sent to this script's PID reach sshfleet directly.
exec "$bin" fleet up "$@"
