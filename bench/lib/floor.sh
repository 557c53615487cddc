#!/usr/bin/env bash
# The OpenSSH floor the benchmark compares sshfleet with: plain `ssh` logins, all hosts in
# parallel, with the cheapest kex OpenSSH offers (curve25519-sha256), BatchMode, the fleet key
# only (IdentitiesOnly, no ssh config, no agent) and strict host key checking.
#
#   floor.sh sweep     HOSTS KEY KNOWN_HOSTS USER SWEEPS
#       SWEEPS times, one after the other: `ssh HOST true` on every host at once, wait for all.
#       Rotation floor = 2 sweeps (the two logins a rotation needs per host: old key, new key).
#   floor.sh jsweep    HOSTS CONFIG JUMP SWEEPS
#       As sweep, for hosts behind a bastion: `ssh -F CONFIG -J JUMP -p PORT 127.0.0.1 true` (the
#       CONFIG gives both the bastion login and the host login their key, known_hosts, kex).
#   floor.sh replicate HOSTS KEY KNOWN_HOSTS USER SRC_HOST DIR FILE...
#       One connection to SRC_HOST streams `tar -C DIR -cf - FILE...` to the controller (held
#       in a temp file), then one connection per other host at once unpacks that tar stream
#       into DIR (`tar -xf -`): one parallel sweep plus the bytes. No temp-file + rename, no
#       checksum, no mode/owner handling: the floor, not a replacement.
#   floor.sh bigfile   HOSTS KEY KNOWN_HOSTS USER SRC_HOST PATH DEST...
#       The large-file floor (issue 21): `ssh SRC_HOST cat PATH` once into a controller temp
#       file, then one `ssh DEST 'cat > TMP && sync TMP && sha256sum TMP && mv TMP PATH'` per
#       DEST at once, aes128-gcm@openssh.com + curve25519-sha256. Writes, fsyncs and hashes on
#       each host and renames, but keeps no owner/mode and compares no checksum. FLOOR_HASHER
#       replaces `sha256sum` (e.g. `openssl dgst -sha256`, which uses the CPU's SHA
#       instructions as sshfleet's host-side hash does).
#
# HOSTS is a file of `NAME PORT` lines (address 127.0.0.1). Exit status: non-zero when any
# ssh failed (the driver treats that as a broken run). Every ssh is a child of this script
# and is waited for; nothing is left running.
set -euo pipefail

run_ssh() { # KEY KNOWN_HOSTS USER PORT CMD...  (stdin passed through; replaces the shell)
  local key=$1 kh=$2 user=$3 port=$4
  shift 4
  exec ssh -F /dev/null -i "$key" -o IdentitiesOnly=yes -o IdentityAgent=none \
    -o UserKnownHostsFile="$kh" -o StrictHostKeyChecking=yes -o BatchMode=yes \
    -o KexAlgorithms=curve25519-sha256 -o ConnectTimeout=30 ${cipher:+-c "$cipher"} \
    -l "$user" -p "$port" 127.0.0.1 "$@"
}
cipher="" # set by a mode that names the cipher

wait_all() { # PIDS... : wait for each, fail if any failed
  local rc=0 p
  for p in "$@"; do
    wait "$p" || rc=1
  done
  return $rc
}

mode=${1:?usage: floor.sh sweep|replicate ...}
shift
case "$mode" in
  sweep)
    hosts=$1 key=$2 kh=$3 user=$4 sweeps=$5
    for ((s = 0; s < sweeps; s++)); do
      pids=()
      while read -r name port; do
        [ -n "$name" ] || continue
        (run_ssh "$key" "$kh" "$user" "$port" true </dev/null) &
        pids+=($!)
      done <"$hosts"
      wait_all "${pids[@]}" || { echo "floor: an ssh login failed in sweep $((s + 1))" >&2; exit 1; }
    done
    ;;
  jsweep)
    hosts=$1 cfg=$2 jump=$3 sweeps=$4
    for ((s = 0; s < sweeps; s++)); do
      pids=()
      while read -r name port; do
        [ -n "$name" ] || continue
        (exec ssh -F "$cfg" -J "$jump" -p "$port" 127.0.0.1 true </dev/null) &
        pids+=($!)
      done <"$hosts"
      wait_all "${pids[@]}" || { echo "floor: an ssh -J login failed in sweep $((s + 1))" >&2; exit 1; }
    done
    ;;
  replicate)
    hosts=$1 key=$2 kh=$3 user=$4 src=$5 dir=$6
    shift 6
    [ "$#" -gt 0 ] || { echo "floor: no files" >&2; exit 2; }
    tmp=$(mktemp)
    trap 'rm -f "$tmp"' EXIT
    src_port=$(awk -v h="$src" '$1 == h { print $2 }' "$hosts")
    [ -n "$src_port" ] || { echo "floor: source host $src not in $hosts" >&2; exit 2; }
    # Remote command: tar with each argument single-quoted (the file names come from the
    # driver, but quote anyway).
    q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
    remote="tar -C $(q "$dir") -cf -"
    for f in "$@"; do remote+=" $(q "$f")"; done
    (run_ssh "$key" "$kh" "$user" "$src_port" "$remote" </dev/null >"$tmp")
    pids=()
    while read -r name port; do
      [ -n "$name" ] && [ "$name" != "$src" ] || continue
      (run_ssh "$key" "$kh" "$user" "$port" "tar -C $(q "$dir") -xf -" <"$tmp") &
      pids+=($!)
    done <"$hosts"
    wait_all "${pids[@]}" || { echo "floor: a destination failed" >&2; exit 1; }
    ;;
  bigfile)
    hosts=$1 key=$2 kh=$3 user=$4 src=$5 path=$6 cipher=aes128-gcm@openssh.com
    shift 6
    [ "$#" -gt 0 ] || { echo "floor: no destinations" >&2; exit 2; }
    tmp=$(mktemp)
    trap 'rm -f "$tmp"' EXIT
    port_of() { awk -v h="$1" '$1 == h { print $2 }' "$hosts"; }
    q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
    src_port=$(port_of "$src")
    [ -n "$src_port" ] || { echo "floor: source host $src not in $hosts" >&2; exit 2; }
    (run_ssh "$key" "$kh" "$user" "$src_port" "cat $(q "$path")" </dev/null >"$tmp")
    t="$path.floor.tmp"
    remote="cat > $(q "$t") && sync $(q "$t") && ${FLOOR_HASHER:-sha256sum} $(q "$t") >/dev/null && mv $(q "$t") $(q "$path")"
    pids=()
    for d in "$@"; do
      port=$(port_of "$d")
      [ -n "$port" ] || { echo "floor: destination $d not in $hosts" >&2; exit 2; }
      (run_ssh "$key" "$kh" "$user" "$port" "$remote" <"$tmp") &
      pids+=($!)
    done
    wait_all "${pids[@]}" || { echo "floor: a destination failed" >&2; exit 1; }
    ;;
  *)
    echo "floor.sh: unknown mode $mode" >&2
    exit 2
    ;;
esac
