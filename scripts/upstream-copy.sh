#!/usr/bin/env bash
# Run ansible-core's own integration target for `copy` the way ansible-test runs it (a
# `testhost` play, the target as a role, its meta dependencies from the targets directory),
# either with the collection's `sshfleet.fleet.copy` standing in for the builtin copy or, as
# the control, with ansible-core's own copy.
#
#   scripts/upstream-copy.sh --module PATH   # PATH: a sshfleet_copy binary (any build)
#   scripts/upstream-copy.sh --control       # ansible-core's copy action + module
#   options: --work DIR (default target/upstream-work/copy-{ours,control})
#
# The target comes from the sdist of ansible-core on PyPI, the version installed in
# target/venv; `pip download` fetches it once into target/upstream-cache. The task files run
# unmodified. The stand-in: an `action_plugins` directory (ANSIBLE_ACTION_PLUGINS) whose
# copy.py is the collection's copy action plugin, so every `copy:` task (the short name
# resolves through ansible.legacy, which searches configured plugin paths first) runs
# sshfleet.fleet.copy; the collection is staged from collection/ with PATH as its binary for
# this machine's architecture (bin/x86_64/copy), run from the host-side cache as always.
#
# The target creates and deletes users and groups, writes a sudoers file and works under
# /tmp, so the play runs as root in a throwaway mount namespace (`unshare -m`): /etc is a
# private copy on a tmpfs, /home, /tmp, /var/mail and /var/log are empty tmpfs mounts, and
# HOME is a fresh directory there (with the ~/.ssh/authorized_keys the target duplicates).
# Modules run with the system /usr/bin/python3 (the target becomes `nobody`, who cannot
# reach the venv). Nothing of the machine's accounts or files changes. Needs root and util-linux's unshare.
#
# Output: ansible-playbook's log in WORK/playbook.log, one JSON line per task result in
# WORK/checks.jsonl (tests/upstream/callback_plugins/check_log.py), and on stdout:
#   upstream-checks: passed=N failed=M expected_failures=E skipped=S ...
# A check is one task's result (a module call, fact gathering included, or an assert; a loop
# counts once); passed = ok or changed; expected_failures = failed with ignore_errors.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/upstream.sh
upstream_args upstream-copy "$@"
work=${work:-$root/target/upstream-work/copy-$mode}
version=$("$venv/bin/python3" -c 'import ansible.release as r; print(r.__version__)')

# 1. The sdist, once.
sdist=$cache/ansible_core-$version.tar.gz
targets=$cache/ansible_core-$version/test/integration/targets
mkdir -p "$cache"
if [ ! -f "$sdist" ]; then
  "$venv/bin/pip" download --quiet --no-deps --no-binary :all: "ansible-core==$version" -d "$cache" >&2
fi
if [ ! -f "$targets/.extracted-copy" ]; then
  tar -xzf "$sdist" -C "$cache" --wildcards \
    "ansible_core-$version/test/integration/targets/copy/*" \
    "ansible_core-$version/test/integration/targets/prepare_tests/*" \
    "ansible_core-$version/test/integration/targets/setup_nobody/*" \
    "ansible_core-$version/test/integration/targets/setup_remote_tmp_dir/*"
  touch "$targets/.extracted-copy"
fi

# 2. The integration directory as ansible-test lays it out (one run per work dir at a time).
mkdir -p "$(dirname "$work")"
exec 9>"$work.lock"
flock 9
rm -rf "$work"
mkdir -p "$work/integration/targets" "$work/ns"
for t in copy prepare_tests setup_nobody setup_remote_tmp_dir; do
  cp -a "$targets/$t" "$work/integration/targets/"
done
cat > "$work/integration/inventory" <<INV
[testgroup]
testhost ansible_connection=local ansible_pipelining=yes ansible_python_interpreter=/usr/bin/python3
INV
cat > "$work/integration/copy.yml" <<'PLAY'
[
    {
        "gather_facts": true,
        "hosts": "testhost",
        "roles": [
            "copy"
        ],
        "vars": {
            "output_dir": "/tmp/ansible-test-output/output_dir"
        },
        "vars_files": []
    }
]
PLAY
printf '[defaults]\n' > "$work/integration/ansible.cfg"

# 3. The stand-in (ours): the staged collection with PATH as its binary, and the redirect.
collections=$work/collections
actions=
if [ "$mode" = ours ]; then
  stage=$collections/ansible_collections/sshfleet/fleet
  mkdir -p "$stage"
  cp -R "$root/collection/." "$stage/"
  find "$stage" -name __pycache__ -prune -exec rm -rf {} +
  arch=$(uname -m)
  mkdir -p "$stage/bin/$arch"
  install -m 0755 "$module" "$stage/bin/$arch/copy"
  actions=$work/action_plugins
  mkdir -p "$actions"
  cat > "$actions/copy.py" <<'PY'
# Redirect for the upstream copy target: the short name `copy` runs sshfleet.fleet.copy.
from ansible_collections.sshfleet.fleet.plugins.action.copy import ActionModule  # noqa: F401
PY
else
  mkdir -p "$collections"
fi

# 4. Run it in a throwaway mount namespace.
: > "$work/checks.jsonl"
export work collections root venv actions
set +e
unshare --mount --propagation private -- bash -euo pipefail -c '
  mount -t tmpfs -o mode=0755 sshfleet-upstream "$work/ns"
  cp -a /etc "$work/ns/etc"
  mount --bind "$work/ns/etc" /etc
  keep=/run/sshfleet-upstream-repo.$$
  mkdir -p "$keep" && mount --bind "$root" "$keep"
  for d in /home /tmp /var/mail /var/log; do
    [ -d "$d" ] || continue
    mount -t tmpfs -o mode=0755 sshfleet-upstream "$d"
    case "$root/" in "$d"/*) mkdir -p "$root" && mount --bind "$keep" "$root" ;; esac
  done
  chmod 1777 /tmp
  export HOME=/home/sshfleet-upstream-root
  mkdir -p -m 0700 "$HOME/.ssh"
  echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTheUpstreamCopyTarget0000000000 upstream" > "$HOME/.ssh/authorized_keys"
  cd "$work/integration"
  env -u ANSIBLE_INVENTORY -u ANSIBLE_STDOUT_CALLBACK -u SSH_AUTH_SOCK -u ANSIBLE_LIBRARY \
    ANSIBLE_CONFIG="$work/integration/ansible.cfg" \
    ANSIBLE_HOME=/tmp/ansible-home \
    ANSIBLE_LOCAL_TEMP=/tmp/ansible-local \
    ANSIBLE_REMOTE_TEMP=/tmp/ansible-remote \
    ANSIBLE_ROLES_PATH="$work/integration/targets" \
    ANSIBLE_COLLECTIONS_PATH="$collections" \
    ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false \
    ${actions:+ANSIBLE_ACTION_PLUGINS="$actions"} \
    ANSIBLE_CALLBACK_PLUGINS="$root/tests/upstream/callback_plugins" \
    ANSIBLE_CALLBACKS_ENABLED=check_log \
    SSHFLEET_CHECK_LOG="$work/checks.jsonl" \
    ANSIBLE_PLAYBOOK_DIR="$work/integration" \
    PATH="$venv/bin:$PATH" \
    ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 ANSIBLE_LOCALHOST_WARNING=false \
    "$venv/bin/ansible-playbook" copy.yml -i inventory
' > "$work/playbook.log" 2>&1
rc=$?
set -e

# 5. Count the checks.
"$venv/bin/python3" "$root/tests/upstream/count_checks.py" "$work/checks.jsonl" "$rc"
