#!/usr/bin/env bash
# `make test` step: the model crate as the Lambda runs it, on arm64. Cross-compiles the `model`
# crate's unit tests and its parity tests (against transformers' numbers in ../shared/parity) for
# aarch64-unknown-linux-gnu and runs them under qemu-user, so an arm64-only bug (a kernel path, a
# cfg(target_arch) branch, an alignment or float-order difference) cannot land.
#
# Installs what it needs when missing: Debian's qemu-user, gcc-aarch64-linux-gnu and
# libc6-dev-arm64-cross (apt-get, as root or with sudo), and the rustup target.
# ARM64_TESTS overrides which test binaries run (default: the unit tests and `parity`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=aarch64-unknown-linux-gnu
sysroot=/usr/aarch64-linux-gnu

if ! command -v qemu-aarch64 >/dev/null || ! command -v aarch64-linux-gnu-gcc >/dev/null \
   || [ ! -d "$sysroot/lib" ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  echo "installing qemu-user, gcc-aarch64-linux-gnu, libc6-dev-arm64-cross (Debian)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross >/dev/null
fi
rustup target list --installed | grep -qx "$target" || rustup target add "$target"

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L $sysroot"
tests=${ARM64_TESTS:---lib --test parity}
# shellcheck disable=SC2086
cargo test --locked -p model --target "$target" $tests
echo "arm64: model unit and parity tests passed under $(qemu-aarch64 --version | head -1)"
