#!/usr/bin/env bash
# Build the Ansible binary modules into modules/: statically linked for
# x86_64-unknown-linux-musl when that target is installed, else for the host target.
set -euo pipefail
cd "$(dirname "$0")/.."
mods=()
for f in src/bin/*.rs; do [ -e "$f" ] && mods+=("$(basename "$f" .rs)"); done
if [ "${#mods[@]}" -eq 0 ]; then echo "[modules] no module binaries yet" >&2; exit 0; fi
args=()
for m in "${mods[@]}"; do args+=(--bin "$m"); done
target=x86_64-unknown-linux-musl
if rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  cargo build --release --no-default-features --target "$target" "${args[@]}"
  out="target/$target/release"
else
  echo "[modules] musl target not installed: building for the host (binaries need glibc on the managed host)" >&2
  cargo build --release --no-default-features "${args[@]}"
  out="target/release"
fi
for m in "${mods[@]}"; do install -m 0755 "$out/$m" "modules/$m"; done
echo "[modules] built ${mods[*]} into modules/ ($out)" >&2
