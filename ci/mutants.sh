#!/usr/bin/env bash
# One command for the mutant kernels (ci/mutants/README.md): installs the
# host tools (as ci/vm-matrix.sh does, including the kernel build tools),
# builds the driver, builds the base kernel from Debian's pinned kernel
# source, proves it green, then builds and boots every mutant.
#   ci/mutants.sh                          # every mutant in ci/mutants/mutants.toml
#   ci/mutants.sh 'lifetime-*' --repeat 5  # a subset, each booted 5 times
#   ci/mutants.sh --list | --check         # list them; check the patches apply
# Exit codes: 0 every mutant killed or accepted, 1 a mutant survived (or
# was only partly killed, or crashed) without an `accepted` reason,
# 2 usage, 3 infrastructure (download, build, base kernel not green).
set -euo pipefail
# shellcheck source=ci/vm-matrix.sh
source "$(dirname "$0")/vm-matrix.sh"
run_driver mutants "$@"
