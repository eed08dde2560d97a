#!/usr/bin/env bash
# One command for the VM kernel matrix: installs the host tools it needs
# (idempotently), builds the driver and runs it. Arguments go to
# `nsverify-vm run` (kernel names, --jobs, ..., then `--` case arguments).
#   ci/vm-matrix.sh                 # every kernel in ci/kernels.toml
#   ci/vm-matrix.sh 5.10 sid        # a subset
#   ci/vm-matrix.sh sid -- --exact create.clone.uts
#   ci/vm-matrix.sh --kernel-tree ~/linux            # your own built tree (ci/kernel.config)
#   ci/vm-matrix.sh 6.12 --kernel-image bzImage --kernel-config .config
#   NSVERIFY_DEBIAN_MIRROR=http://proxy:3142/deb.debian.org/debian ci/vm-matrix.sh
# Exit codes (the driver's): 0 green, 1 a case failed, 2 usage, 3 infrastructure.
set -euo pipefail
# The driver runs where it was called from, so that relative paths
# (--kernel-tree, --out ...) mean what they say; cargo finds the workspace
# by its manifest.
caller_dir=$PWD
cd "$(dirname "$0")/.."
repo_dir=$PWD

# Debian/Ubuntu packages providing each command the driver runs.
declare -A PROVIDER=(
  [qemu-system-x86_64]=qemu-system-x86
  [qemu-system-aarch64]=qemu-system-arm   # arm64 kernels (ci/kernels.toml arch = "arm64")
  [busybox]=busybox-static
  [setpriv]=util-linux
  [apt-get]=apt
  [dpkg-deb]=dpkg
  [xz]=xz-utils
  [zstd]=zstd
  [objcopy]=binutils
  [timeout]=coreutils
  # Kernels built from source (ci/mutants/base.toml: the `base` column, mutants).
  [make]=make
  [gcc]=gcc
  [flex]=flex
  [bison]=bison
  [bc]=bc
  [perl]=perl
  [patch]=patch
  [ccache]=ccache      # mutants: restoring a header after a mutant is a cache hit
)

install_host_tools() {
  local missing=() cmd
  for cmd in "${!PROVIDER[@]}"; do
    command -v "$cmd" >/dev/null || missing+=("${PROVIDER[$cmd]}")
  done
  # A dynamically linked busybox cannot be init in the guest.
  if command -v busybox >/dev/null && ldd "$(command -v busybox)" >/dev/null 2>&1; then
    missing+=(busybox-static)
  fi
  [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
  # objtool (x86_64 kernels) needs libelf's headers.
  [ -f /usr/include/gelf.h ] || missing+=(libelf-dev)
  if ((${#missing[@]})); then
    echo "vm-matrix: installing ${missing[*]}"
    local sudo=()
    ((EUID == 0)) || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

run_driver() {
  # cargo run, not target/debug/...: honours CARGO_TARGET_DIR.
  # A relative CARGO_TARGET_DIR kept meaning the repository's, as before.
  if [[ -n ${CARGO_TARGET_DIR:-} && $CARGO_TARGET_DIR != /* ]]; then
    export CARGO_TARGET_DIR="$repo_dir/$CARGO_TARGET_DIR"
  fi
  cd "$caller_dir"
  exec cargo run -q --manifest-path "$repo_dir/Cargo.toml" -p nsverify-ci -- "$@"
}

# Guests get static musl binaries, linked by the toolchain's rust-lld; arm64
# ones are stripped by its llvm-objcopy.
install_rust_targets() {
  command -v rustup >/dev/null || return 0
  local target
  for target in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
    rustup target list --installed 2>/dev/null | grep -qx "$target" || rustup target add "$target"
  done
  rustup component list --installed 2>/dev/null | grep -q '^llvm-tools' ||
    rustup component add llvm-tools
}

install_host_tools
install_rust_targets
# ci/mutants.sh sources this file for install_host_tools and run_driver.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  run_driver run "$@"
fi
