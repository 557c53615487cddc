#!/usr/bin/env bash
# Differential test of sshfleet's ssh_config resolver against the OpenSSH installed here,
# live: for every case directory beside this script, every line of its hosts.txt
# (`HOST` or `HOST<TAB>SSH-ARGS`) is resolved by
#     ssh -G -F ~/.ssh/config SSH-ARGS HOST
#     SSHFLEET ssh-config -F ~/.ssh/config --ssh-args SSH-ARGS HOST
# in the fixed environment of the shared corpus (lib/common.sh: env -i, a fake passwd
# user via nss_wrapper, the case's files copied to ~/.ssh), and the 16 keys the shared
# corpus compares must be equal byte for byte (or both must refuse).
#
#   compare_live.sh SHARED_CORPUS_DIR SSHFLEET_BIN
set -u
SHARED=$1
BIN=$2
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$SHARED/lib/common.sh"
# Our own root, so that a concurrent run of the shared compare.sh is not disturbed.
SSHCORPUS_ROOT=$(mktemp -d /tmp/sshfleet-sshcfg-live.XXXXXX)
SSHCORPUS_HOME=$SSHCORPUS_ROOT/home
SSHCORPUS_NSS=$SSHCORPUS_ROOT/nss
trap 'rm -rf "$SSHCORPUS_ROOT"' EXIT
sshcorpus_setup || exit 2
read -r -a KEYS <<<"$SSHCORPUS_KEYS"

values() { awk -v k="$1" '{ key = $1; val = $0; sub(/^[^ ]+ ?/, "", val); if (key == k) print ">" val }' "$2"; }

pass=0; fail=0; cases=0
tmp=$SSHCORPUS_ROOT/out; mkdir -p "$tmp"
for casedir in "$HERE"/*/; do
	casedir=${casedir%/}
	[ -f "$casedir/config" ] || continue
	name=$(basename "$casedir")
	cases=$((cases + 1))
	sshcorpus_stage "$casedir"
	cfg=$SSHCORPUS_HOME/.ssh/config
	while IFS= read -r line || [ -n "$line" ]; do
		case $line in ''|'#'*) continue ;; esac
		host=${line%%$'\t'*}
		args=; [ "$host" != "$line" ] && args=${line#*$'\t'}
		# shellcheck disable=SC2086 # the args are words, as on an ssh command line
		sshcorpus_run bash -c "ssh -G -F $(printf '%q' "$cfg") $args $(printf '%q' "$host")" </dev/null >"$tmp/exp" 2>"$tmp/experr"
		erc=$?
		sshcorpus_run "$BIN" ssh-config -F "$cfg" --ssh-args "$args" "$host" </dev/null >"$tmp/got" 2>"$tmp/goterr"
		grc=$?
		label="$name $host${args:+ [$args]}"
		if [ $erc -ne 0 ]; then
			if [ $grc -ne 0 ]; then pass=$((pass + 1)); else
				echo "FAIL $label: ssh -G refuses ($(head -c 200 "$tmp/experr" | tr '\n' ' ')) but sshfleet exits 0"; fail=$((fail + 1))
			fi
			continue
		fi
		if [ $grc -ne 0 ]; then
			echo "FAIL $label: sshfleet exits $grc: $(head -c 300 "$tmp/goterr" | tr '\n' ' ')"; fail=$((fail + ${#KEYS[@]})); continue
		fi
		for k in "${KEYS[@]}"; do
			e=$(values "$k" "$tmp/exp"); g=$(values "$k" "$tmp/got")
			if [ "$e" == "$g" ]; then pass=$((pass + 1)); else
				echo "FAIL $label $k: expected $(printf '%s' "$e" | tr '\n' '|') got $(printf '%s' "$g" | tr '\n' '|')"; fail=$((fail + 1))
			fi
		done
	done <"$casedir/hosts.txt"
done
echo "$cases cases: $pass passed, $fail failed"
[ $fail -eq 0 ] && [ $cases -gt 0 ]
