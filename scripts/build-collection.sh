#!/usr/bin/env bash
# Build the Ansible collection sshfleet.fleet into dist/sshfleet-fleet-VERSION.tar.gz.
#
#   bash scripts/build-collection.sh            # modules for every installed arch, then the tarball
#   SSHFLEET_SKIP_MODULE_BUILD=1 bash scripts/build-collection.sh   # reuse built binaries
#   SSHFLEET_COLLECTION_DIR=D SSHFLEET_DIST=O ...   # stage under D, tarball into O (tests)
#
# Stages target/collection/ansible_collections/sshfleet/fleet from collection/ (galaxy.yml,
# meta/, plugins/action/, plugins/plugin_utils/, README.md, CHANGELOG.md), the module
# documentation generated from modules/sshfleet_NAME.yml (plugins/modules/NAME.py) and the
# static binaries (bin/x86_64/NAME, bin/aarch64/NAME), then runs `ansible-galaxy collection
# build`; any warning it prints fails the build. The staged tree is usable in place:
# ansible.cfg puts target/collection on collections_path.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/venv
[ -x "$venv/bin/ansible-galaxy" ] || { echo "[collection] $venv missing: run scripts/setup.sh" >&2; exit 1; }

version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
gversion="$(sed -n 's/^version: *//p' collection/galaxy.yml)"
if [ "$version" != "$gversion" ]; then
  echo "[collection] collection/galaxy.yml has version $gversion, Cargo.toml $version: make them equal" >&2
  exit 1
fi

[ "${SSHFLEET_SKIP_MODULE_BUILD:-0}" = 1 ] || bash scripts/build-modules.sh

stage="${SSHFLEET_COLLECTION_DIR:-target/collection}/ansible_collections/sshfleet/fleet"
dist="${SSHFLEET_DIST:-dist}"
rm -rf "$stage"
mkdir -p "$stage"
cp -R collection/. "$stage/"
find "$stage" -name __pycache__ -prune -exec rm -rf {} +
"$venv/bin/python" scripts/gen-collection-docs.py modules "$stage/plugins/modules"

mods=()
for f in src/bin/sshfleet_*.rs; do mods+=("$(basename "$f" .rs)"); done
archs=()
for arch in x86_64 aarch64; do
  dir="target/$arch-unknown-linux-musl/module"
  have=1
  for m in "${mods[@]}"; do [ -x "$dir/$m" ] || have=0; done
  if [ "$have" = 0 ]; then
    echo "[collection] WARNING: no $arch binaries in $dir: the collection will not support $arch hosts" >&2
    continue
  fi
  mkdir -p "$stage/bin/$arch"
  for m in "${mods[@]}"; do install -m 0755 "$dir/$m" "$stage/bin/$arch/${m#sshfleet_}"; done
  archs+=("$arch")
done
[ "${#archs[@]}" -gt 0 ] || { echo "[collection] no module binaries for any architecture" >&2; exit 1; }
(cd "$stage/bin" && sha256sum */* > SHA256SUMS)

mkdir -p "$dist"
dist="$(cd "$dist" && pwd)"
out="$(cd "$stage" && "$OLDPWD/$venv/bin/ansible-galaxy" collection build --force --output-path "$dist" 2>&1)" || {
  echo "$out" >&2; exit 1; }
echo "$out" >&2
if grep -qi 'warning' <<<"$out"; then
  echo "[collection] ansible-galaxy collection build printed warnings: failing" >&2
  exit 1
fi
tarball="$dist/sshfleet-fleet-$version.tar.gz"
[ -f "$tarball" ] || { echo "[collection] $tarball was not produced" >&2; exit 1; }
echo "[collection] $tarball ($(stat -c %s "$tarball") bytes; architectures: ${archs[*]})" >&2
echo "$tarball"
