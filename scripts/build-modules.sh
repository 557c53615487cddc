#!/usr/bin/env bash
# Build the Ansible binary modules: static musl binaries with the size-optimised `module`
# profile (Cargo.toml), for every architecture whose Rust target is installed:
#   x86_64-unknown-linux-musl  -> target/x86_64-unknown-linux-musl/module/, copied to modules/
#                                 (the short-name modules, `library = modules`)
#   aarch64-unknown-linux-musl -> target/aarch64-unknown-linux-musl/module/ (linked with the
#                                 toolchain's own rust-lld: no C code is left in the modules,
#                                 so no cross C compiler is needed)
# SSHFLEET_ARCHES="x86_64 aarch64" (default) chooses the architectures. A missing aarch64
# target is reported loudly and skipped; without the x86_64 musl target the modules are built
# for the host (glibc) into modules/ only, as before.
set -euo pipefail
cd "$(dirname "$0")/.."
mods=()
for f in src/bin/*.rs; do [ -e "$f" ] && mods+=("$(basename "$f" .rs)"); done
if [ "${#mods[@]}" -eq 0 ]; then echo "[modules] no module binaries yet" >&2; exit 0; fi
args=()
for m in "${mods[@]}"; do args+=(--bin "$m"); done
installed="$(rustup target list --installed 2>/dev/null || true)"
built=()
for arch in ${SSHFLEET_ARCHES:-x86_64 aarch64}; do
  target="$arch-unknown-linux-musl"
  if ! grep -qx "$target" <<<"$installed"; then
    if [ "$arch" = x86_64 ]; then
      echo "[modules] musl target not installed: building for the host (binaries need glibc on the managed host)" >&2
      cargo build --release --no-default-features "${args[@]}"
      for m in "${mods[@]}"; do install -m 0755 "target/release/$m" "modules/$m"; done
    else
      {
        echo "[modules] ======================================================================"
        echo "[modules] WARNING: rust target $target is not installed: NO $arch MODULES BUILT."
        echo "[modules] Add it with: rustup target add $target (scripts/setup.sh does)"
        echo "[modules] ======================================================================"
      } >&2
    fi
    continue
  fi
  linker_var="CARGO_TARGET_$(tr 'a-z-' 'A-Z_' <<<"$target")_LINKER"
  if [ "$arch" != "$(uname -m)" ] && [ -z "${!linker_var:-}" ]; then
    export "$linker_var=rust-lld"
  fi
  cargo build --profile module --no-default-features --target "$target" "${args[@]}"
  built+=("$arch")
  if [ "$arch" = x86_64 ]; then
    for m in "${mods[@]}"; do install -m 0755 "target/$target/module/$m" "modules/$m"; done
  fi
done
for arch in "${built[@]}"; do
  sizes="$(cd "target/$arch-unknown-linux-musl/module" && stat -c '%n %s' "${mods[@]}" | tr '\n' ' ')"
  echo "[modules] $arch: $sizes(target/$arch-unknown-linux-musl/module)" >&2
done
