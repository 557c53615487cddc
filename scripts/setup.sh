#!/usr/bin/env bash
# Install everything sshfleet's demo, tests and benchmarks need on a fresh Debian machine
# (run as root). Idempotent: each step is skipped when already satisfied.
#   - OpenSSH server/client, sudo (the test fleet is real sshd processes on loopback)
#   - tmux (the progress-bar tests run sshfleet on a pseudo-terminal) and man-db (`man -l`
#     renders the generated man page in the tests)
#   - libnss-wrapper (the ssh_config differential tests against `ssh -G`)
#   - the x86_64-unknown-linux-musl Rust target (static Ansible module binaries), if rustup can
#   - the aarch64-unknown-linux-musl Rust target and qemu-user (aarch64 modules and their tests)
#   - a Python venv with ansible-core and the `ansible` package (ansible.posix) under target/venv
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

need_pkgs=()
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need_pkgs+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need_pkgs+=(openssh-client)
command -v sudo >/dev/null 2>&1 || need_pkgs+=(sudo)
command -v unshare >/dev/null 2>&1 || need_pkgs+=(util-linux)
# openssl passwd -6: the test fleet's per-host password hashes
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
command -v socat >/dev/null 2>&1 || need_pkgs+=(socat)       # test fleet relays, ProxyCommand tests
command -v ip >/dev/null 2>&1 || need_pkgs+=(iproute2)        # loopback of the hidden network
command -v python3 >/dev/null 2>&1 || need_pkgs+=(python3 python3-venv)
command -v tmux >/dev/null 2>&1 || need_pkgs+=(tmux)
command -v man >/dev/null 2>&1 || need_pkgs+=(man-db)
command -v getfacl >/dev/null 2>&1 || need_pkgs+=(acl)        # ansible-core's copy target (acls.yml)
# nss_wrapper: the ssh_config differential tests pin the passwd user OpenSSH sees.
[ -n "$(ls /usr/lib/*/libnss_wrapper.so /usr/lib/libnss_wrapper.so 2>/dev/null)" ] || need_pkgs+=(libnss-wrapper)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
mkdir -p /run/sshd && chmod 0755 /run/sshd

# Static module binaries need the musl target; without it modules are built for the host.
if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
  log "adding rust target x86_64-unknown-linux-musl"
  rustup target add x86_64-unknown-linux-musl >/dev/null 2>&1 || log "musl target unavailable; modules will be built for the host target"
fi
# The aarch64 modules of the sshfleet.fleet collection: the Rust target only (the modules
# contain no C since key URLs are fetched on the controller; they link with the toolchain's
# rust-lld). A machine that cannot add it builds x86_64 alone (scripts/build-modules.sh says so).
if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-musl; then
  log "adding rust target aarch64-unknown-linux-musl"
  rustup target add aarch64-unknown-linux-musl >/dev/null 2>&1 \
    || log "WARNING: aarch64 musl target unavailable: the collection will support x86_64 hosts only"
fi
# qemu-aarch64 (Debian qemu-user, no binfmt registration) runs the aarch64 modules in the tests.
if ! command -v qemu-aarch64 >/dev/null 2>&1; then
  log "installing qemu-user (qemu-aarch64 for the aarch64 module tests)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends qemu-user >/dev/null \
    || log "WARNING: qemu-user unavailable: the aarch64 modules will not be tested"
fi
# musl-gcc for the x86_64 musl build of C dependencies (the controller-only TLS stack is not
# in the modules any more; kept for crates that may need it).
if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl && ! command -v musl-gcc >/dev/null 2>&1; then
  log "installing musl-tools (musl-gcc for the static module build)"
  export DEBIAN_FRONTEND=noninteractive
  [ "${#need_pkgs[@]}" -gt 0 ] || apt-get update -qq
  apt-get install -y -qq --no-install-recommends musl-tools >/dev/null
fi

# Python venv with real ansible-core (and the `ansible` package for ansible.posix).
# SSHFLEET_SETUP_ANSIBLE=0 skips it (the demo does not need Ansible).
[ "${SSHFLEET_SETUP_ANSIBLE:-1}" = 0 ] && exit 0
venv=target/venv
ansible_core_spec="${SSHFLEET_ANSIBLE_CORE:-ansible-core>=2.19,<2.20}"
ansible_spec="${SSHFLEET_ANSIBLE:-ansible>=12,<13}"
if [ ! -x "$venv/bin/ansible-playbook" ] || [ ! -d "$venv/lib" ] || ! "$venv/bin/python" -c 'import ansible_collections.ansible.posix' 2>/dev/null; then
  log "creating $venv with $ansible_core_spec and $ansible_spec"
  mkdir -p target
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "$ansible_core_spec" "$ansible_spec"
fi
# ansible-builder, in its own venv (its dependencies stay out of Ansible's): the tests check
# execution-environment.yml with `ansible-builder create` (no container engine needed).
if [ ! -x target/venv-builder/bin/ansible-builder ]; then
  log "creating target/venv-builder with ansible-builder"
  python3 -m venv target/venv-builder
  target/venv-builder/bin/pip install -q --disable-pip-version-check "ansible-builder>=3,<4"
fi
ver="$("$venv/bin/ansible" --version 2>/dev/null)" || true
log "ready: ${ver%%$'\n'*}"
