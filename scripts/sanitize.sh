#!/usr/bin/env bash
# The C++ kernels and their GoogleTest suite under AddressSanitizer + UndefinedBehaviorSanitizer
# (kernels/CMakeLists.txt: FASTDL_SANITIZE). Any report stops the test that made it and fails
# the run (-fno-sanitize-recover=all, halt_on_error); leaks are reported at exit.
#
#   bash scripts/sanitize.sh            (CI: called by .ci/run after the x86 tests)
#
# Work directory build/sanitize/ (git-ignored). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build/sanitize
cmake -S kernels -B "$build" -DFASTDL_SANITIZE=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)"
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=0:strict_string_checks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
ctest --test-dir "$build" -j "$(nproc)" --output-on-failure
echo "== sanitizers: ASan + UBSan, no reports"
