#!/usr/bin/env bash
# Run ansible.posix's own integration target for `authorized_key` the way ansible-test runs
# it (a `testhost` play with `output_dir`, the target as a role, its meta dependencies from
# the targets directory), with either our `sshfleet_authorized_key` binary standing in for
# `ansible.posix.authorized_key` or, as the control, the collection's own module.
#
#   scripts/upstream-tests.sh --module PATH   # PATH: a sshfleet_authorized_key binary
#   scripts/upstream-tests.sh --control       # upstream's authorized_key.py
#   options: --work DIR (default target/upstream-work/{ours,control})
#
# The target comes from the sdist of the `ansible` 14.5.0 package on PyPI (ansible.posix
# 2.2.2 with its tests; the installed `ansible` 12.x ships ansible.posix 2.1.0 without
# tests). `pip download` fetches it once into target/upstream-cache (reused afterwards;
# --ignore-requires-python because the sdist declares Python >= 3.12 while only its files
# are used here). The task files run unmodified: the stand-in is a shim `ansible.posix`
# collection, first (and only) on the collections path, whose plugins/modules/authorized_key
# is our binary.
#
# The target creates and deletes users (testuser, nopriv) and writes under /tmp, so the play
# runs as root in a throwaway mount namespace (`unshare -m`): /etc is a private copy on a
# tmpfs, /home, /tmp, /var/mail and /var/log are empty tmpfs mounts. Nothing of the machine's
# accounts or files changes. Needs root and util-linux's unshare.
#
# Output: ansible-playbook's log in WORK/playbook.log, one JSON line per task result in
# WORK/checks.jsonl, and a summary line on stdout:
#   upstream-checks: passed=N failed=M expected_failures=E skipped=S ...
# A check is one task's result (a module call, fact gathering included, or an assert);
# passed = ok or changed. The control gives passed=87 failed=0: 89 results, one skipped
# (a `debug` with verbosity 1) and one expected failure (`ignore_errors: true`, followed by
# an assert that it failed). A play that stops early has fewer passed checks.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/upstream.sh
upstream_args upstream-tests "$@"
version=14.5.0
work=${work:-$root/target/upstream-work/$mode}

# 1. The sdist, once.
sdist=$cache/ansible-$version.tar.gz
posix=$cache/ansible-$version/ansible_collections/ansible/posix
mkdir -p "$cache"
if [ ! -f "$sdist" ]; then
  "$venv/bin/pip" download --quiet --no-deps --no-binary :all: --ignore-requires-python \
    "ansible==$version" -d "$cache" >&2
fi
if [ ! -f "$posix/.extracted" ]; then
  tar -xzf "$sdist" -C "$cache" "ansible-$version/ansible_collections/ansible/posix"
  touch "$posix/.extracted"
fi

# 2. The integration directory as ansible-test lays it out (one run per work dir at a time).
mkdir -p "$(dirname "$work")"
exec 9>"$work.lock"
flock 9
rm -rf "$work"
mkdir -p "$work/integration/targets" "$work/ns"
for t in authorized_key prepare_tests setup_pkg_mgr; do
  cp -a "$posix/tests/integration/targets/$t" "$work/integration/targets/"
done
cat > "$work/integration/inventory" <<INV
[testgroup]
testhost ansible_connection=local ansible_pipelining=yes ansible_python_interpreter=$venv/bin/python3
INV
cat > "$work/integration/authorized_key.yml" <<'PLAY'
[
    {
        "gather_facts": true,
        "hosts": "testhost",
        "roles": [
            "authorized_key"
        ],
        "vars": {
            "output_dir": "/tmp/ansible-test-output/output_dir"
        },
        "vars_files": []
    }
]
PLAY
printf '[defaults]\n' > "$work/integration/ansible.cfg"

# 3. The collections path: the sdist's ansible.posix (control) or the shim (ours).
if [ "$mode" = control ]; then
  collections=$cache/ansible-$version
else
  collections=$work/shim
  shim=$collections/ansible_collections/ansible/posix
  mkdir -p "$shim/plugins/modules" "$shim/meta"
  install -m 0755 "$module" "$shim/plugins/modules/authorized_key"
  cat > "$shim/galaxy.yml" <<'GALAXY'
namespace: ansible
name: posix
version: 2.2.2
readme: README.md
authors: [sshfleet]
GALAXY
  printf -- "---\nrequires_ansible: '>=2.16.0'\n" > "$shim/meta/runtime.yml"
fi

# 4. Run it in a throwaway mount namespace.
: > "$work/checks.jsonl"
export work collections root venv
set +e
unshare --mount --propagation private -- bash -euo pipefail -c '
  mount -t tmpfs -o mode=0755 sshfleet-upstream "$work/ns"
  cp -a /etc "$work/ns/etc"
  mount --bind "$work/ns/etc" /etc
  # The checkout itself may live under one of the emptied directories (a clone in /tmp):
  # keep it reachable at the same path through a bind mount parked on /run.
  keep=/run/sshfleet-upstream-repo.$$
  mkdir -p "$keep" && mount --bind "$root" "$keep"
  for d in /home /tmp /var/mail /var/log; do
    [ -d "$d" ] || continue
    mount -t tmpfs -o mode=0755 sshfleet-upstream "$d"
    case "$root/" in "$d"/*) mkdir -p "$root" && mount --bind "$keep" "$root" ;; esac
  done
  chmod 1777 /tmp
  cd "$work/integration"
  env -u ANSIBLE_INVENTORY -u ANSIBLE_STDOUT_CALLBACK -u SSH_AUTH_SOCK \
    ANSIBLE_CONFIG="$work/integration/ansible.cfg" \
    ANSIBLE_HOME=/tmp/ansible-home \
    ANSIBLE_LOCAL_TEMP=/tmp/ansible-local \
    ANSIBLE_REMOTE_TEMP=/tmp/ansible-remote \
    ANSIBLE_ROLES_PATH="$work/integration/targets" \
    ANSIBLE_COLLECTIONS_PATH="$collections" \
    ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false \
    ANSIBLE_CALLBACK_PLUGINS="$root/tests/upstream/callback_plugins" \
    ANSIBLE_CALLBACKS_ENABLED=check_log \
    SSHFLEET_CHECK_LOG="$work/checks.jsonl" \
    ANSIBLE_PLAYBOOK_DIR="$work/integration" \
    ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 ANSIBLE_LOCALHOST_WARNING=false \
    "$venv/bin/ansible-playbook" authorized_key.yml -i inventory
' > "$work/playbook.log" 2>&1
rc=$?
set -e

# 5. Count the checks.
"$venv/bin/python3" "$root/tests/upstream/count_checks.py" "$work/checks.jsonl" "$rc" authorized_key assert
