# Shared by scripts/upstream-tests.sh and scripts/upstream-copy.sh (sourced, not run): the
# command line (--module PATH | --control [--work DIR]) and the preconditions of a run of an
# upstream integration target. Sets root, venv, cache, mode (ours|control), module and work
# (empty when not given). NAME (first argument) prefixes the error messages.
upstream_args() {
  local name=$1 usage
  shift
  usage="usage: $0 --module PATH | --control [--work DIR]"
  root=$PWD
  venv=$root/target/venv
  cache=$root/target/upstream-cache
  mode=
  module=
  work=
  while [ $# -gt 0 ]; do
    case "$1" in
      --module) mode=ours; module=$(realpath "$2"); shift 2 ;;
      --control) mode=control; shift ;;
      --work) work=$2; shift 2 ;;
      *) echo "$usage" >&2; exit 5 ;;
    esac
  done
  [ -n "$mode" ] || { echo "$usage" >&2; exit 5; }
  [ "$(id -u)" = 0 ] || { echo "$name: needs root (users are created in a private mount namespace)" >&2; exit 5; }
  [ -x "$venv/bin/ansible-playbook" ] || { echo "$name: $venv missing: run scripts/setup.sh" >&2; exit 5; }
}
