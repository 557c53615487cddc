#!/usr/bin/env bash
# The main job on the embedded demo fleet, end to end:
#   build -> start N real sshd hosts on 127.0.0.1 -> generate PKI files on host01 ->
#   rotate the deploy user's SSH key everywhere (lock-out safe) -> replicate the PKI files from
#   host01 to every other host -> show the result -> tear the fleet down.
# Usage: ./scripts/demo.sh [HOSTS]   (default 10; run as root on Debian)
set -euo pipefail
cd "$(dirname "$0")/.."
hosts="${1:-10}"

SSHFLEET_SETUP_ANSIBLE=0 bash scripts/setup.sh
echo "==> building sshfleet (release)"
cargo build --release --quiet --bin sshfleet
bin="$PWD/target/release/sshfleet"

work="$(mktemp -d /tmp/sshfleet-demo.XXXXXX)"
fleet_pid=""
cleanup() {
  if [ -n "$fleet_pid" ] && kill -0 "$fleet_pid" 2>/dev/null; then
    kill -TERM "$fleet_pid" 2>/dev/null || true
    wait "$fleet_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "==> starting a $hosts-host demo fleet (one real sshd per host, own /home each)"
"$bin" fleet up --hosts "$hosts" --dir "$work/fleet" </dev/null >"$work/fleet.log" 2>&1 &
fleet_pid=$!
for _ in $(seq 1 300); do
  [ -e "$work/fleet/ready" ] && break
  kill -0 "$fleet_pid" 2>/dev/null || { cat "$work/fleet.log"; exit 1; }
  sleep 0.1
done
[ -e "$work/fleet/ready" ] || { echo "fleet did not come up"; cat "$work/fleet.log"; exit 1; }
inv="$work/fleet/inventory.ini"
fleet_key="$work/fleet/id_ed25519"
sf() { echo "+ sshfleet $*" >&2; "$bin" -i "$inv" "$@"; }

sf ping

echo "==> generating PKI files on host01 (a CA, a host cert, a CA bundle)"
sf run -l host01 -- sh -c '
  set -e; umask 022; mkdir -p ~/pki && cd ~/pki
  openssl req -x509 -newkey ed25519 -nodes -keyout ca.key -out ca.crt -subj /CN=demo-ca -days 30 2>/dev/null
  openssl req -newkey ed25519 -nodes -keyout web.key -out web.csr -subj /CN=web.demo 2>/dev/null
  openssl x509 -req -in web.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out web.crt -days 30 2>/dev/null
  cat ca.crt > ca-bundle.pem; rm -f web.csr ca.srl; chmod 600 ca.key web.key'

echo "==> rotating the deploy user's key on every host (add -> verify with only the new key -> exclusive)"
#    --install then moves the new pair to the inventory's key path (old pair kept as a backup).
sf keys rotate --generate --new-key "$work/id_ed25519_new" --user deploy --install

echo "==> a second rotation run with the same key changes nothing"
sf keys rotate --new-key "$fleet_key" --user deploy

echo "==> the old key is refused by every sshd now; the new one logs in"
old_key="$(ls "$fleet_key".*~ | grep -v '\.pub\.' | head -n1)"
port1="$(sed -n 's/^host01 .*ansible_port=\([0-9]*\).*/\1/p' "$inv")"
if ssh -F /dev/null -i "$old_key" -o IdentitiesOnly=yes -o BatchMode=yes \
     -o UserKnownHostsFile="$work/fleet/known_hosts" -p "$port1" deploy@127.0.0.1 true 2>/dev/null; then
  echo "old key still works on host01: rotation failed"; exit 1
fi
echo "    old key refused on host01 (OpenSSH ssh), as expected"
sf ping

echo "==> replicating PKI files from host01 to the rest (streamed, checksum-verified, atomic)"
sf replicate --from host01 \
  /home/deploy/pki/ca.crt /home/deploy/pki/web.crt /home/deploy/pki/web.key /home/deploy/pki/ca-bundle.pem

echo "==> second replicate: nothing to do (all ok)"
sf replicate --from host01 \
  /home/deploy/pki/ca.crt /home/deploy/pki/web.crt /home/deploy/pki/web.key /home/deploy/pki/ca-bundle.pem

echo "==> done; tearing the fleet down"
