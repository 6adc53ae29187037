#!/usr/bin/env bash
# fastdl under AddressSanitizer + UndefinedBehaviorSanitizer. Any report stops the run that
# made it and fails it (-fno-sanitize-recover=all, halt_on_error).
#
#   bash scripts/sanitize.sh                      the C++ kernels' GoogleTest suite
#                                                 (kernels/CMakeLists.txt: FASTDL_SANITIZE;
#                                                 CI: called by .ci/run), leaks reported too
#   bash scripts/sanitize.sh --python [ARGS...]   the Python suite (pytest ARGS, default
#                                                 tests/) on a copy of the tracked tree whose
#                                                 extension is built with FASTDL_SANITIZE=1
#                                                 (setup.py); Python is not instrumented, the
#                                                 sanitizer runtimes are preloaded and leak
#                                                 checks are off (the interpreter's own);
#                                                 --capture=sys: reports reach the terminal
#
# Work directories build/sanitize/ and build/sanitize-py/ (git-ignored). Exits non-zero on
# any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

if [[ "${1:-}" == "--python" ]]; then
  shift
  work=build/sanitize-py
  rm -rf "$work" && mkdir -p "$work"
  git ls-files -z | xargs -0 cp --parents -t "$work"
  (cd "$work" && FASTDL_SANITIZE=1 python setup.py build_ext --inplace >/dev/null)
  runtimes="$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libubsan.so)"
  cd "$work"
  LD_PRELOAD="$runtimes" ASAN_OPTIONS=halt_on_error=1:detect_leaks=0 \
    python -m pytest -q -p no:cacheprovider --capture=sys "${@:-tests/}"
  echo "== sanitizers (Python suite): ASan + UBSan, no reports"
  exit 0
fi

build=build/sanitize
cmake -S kernels -B "$build" -DFASTDL_SANITIZE=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)"
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:strict_string_checks=1
ctest --test-dir "$build" -j "$(nproc)" --output-on-failure
echo "== sanitizers (C++ suite): ASan + UBSan, no reports"
