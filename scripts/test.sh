#!/usr/bin/env bash
# The whole test suite: setup, format, lints, module build, unit and integration tests
# (real sshd fleets on loopback, real ansible-core). This is what .ci/run runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/target/venv/bin:$PATH"
export ANSIBLE_HOME="$PWD/target/ansible-home"
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
bash scripts/build-modules.sh     # static x86_64 (+ aarch64) modules; the collection tests package them
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast
else
  cargo test --no-fail-fast
fi
