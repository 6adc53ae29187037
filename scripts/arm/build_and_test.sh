#!/usr/bin/env bash
# The cross-compiled ARM build for the HiKey970 (Kirin 970: Cortex-A73/A53, ARMv8.0-A,
# NEON fp32, no fp16 arithmetic, no dot product), tested under user-mode qemu, from a
# Debian bookworm x86-64 machine with Python 3.11 (root; apt and pip only).
#
#   bash scripts/arm/build_and_test.sh          (CI: called by .ci/run after the x86 tests)
#
# Environment: FASTDL_ARM_PYTEST_ARGS (extra pytest arguments), FASTDL_QEMU_CPU (default
# cortex-a72), FASTDL_HOST_PYTHON (a host python3.11), FASTDL_ARM_WORK (default build/arm).
#
# Work directory build/arm/ (git-ignored); the wheel goes to dist-arm/. Re-running reuses
# the sysroot, venvs and target packages, and rebuilds fastdl. ~5-8 minutes on 2 cores
# (the first run adds the apt installs). Exits non-zero on any failure; a summary closes.
#
# Stages:
#  1. apt: g++-aarch64-linux-gnu, qemu-user, mmdebstrap, googletest (sources), llvm-14
#     (llvm-mca), cmake, make -- only what is missing.
#  2. kernels/: cmake with kernels/cmake/aarch64-linux-gnu.cmake (GoogleTest built from
#     /usr/src/googletest with the cross compiler), ctest through qemu-aarch64 -cpu
#     cortex-a72: same ARMv8.0-A level as the A73 (qemu 7.2 has no A73), so an ARMv8.2
#     instruction (fp16, dot product) dies with SIGILL as on the board; qemu's default
#     `max` CPU would run it.
#  3. wheel: an arm64 sysroot with Debian's python3.11 (mmdebstrap --variant=extract, no
#     emulation), crossenv around it, `cross-pip wheel --no-build-isolation` of a copy of
#     the work tree (tracked + untracked-not-ignored files: never the x86 build leftovers)
#     -> dist-arm/fastdl-*-cp311-cp311-linux_aarch64.whl. Checked: both extensions are in
#     it and are AArch64 ELF (setup.py falls back to pure Python on a compile error; that
#     must fail here, not ship).
#  4. Python tests under qemu: the wheel + aarch64 numpy, pytest, hypothesis in a target
#     dir, run by the sysroot's python3.11 under qemu-aarch64 -cpu cortex-a72.
#     - The WHOLE suite (tests/), not a subset: it takes ~2-3 minutes emulated, because
#       the tests keep their shapes small, and it is the only way to be sure every kernel
#       (GEMM 8x12 and every row count, Winograd F(2,3)/F(4,3), depthwise 3x3/5x5 s1/s2
#       and generic, activations, im2col/col2im, thread pool) and every public op runs
#       on NEON against the NumPy reference.
#     - torch is not installed: the PyTorch-oracle tests skip (they run on x86); the
#       NumPy reference is the oracle here.
#     - numba is not installed: its LLVM JIT would compile every kernel inside the
#       emulator (tens of seconds each, minutes per test module), and the Numba twins
#       contain no fastdl ARM code -- what the ARM build adds is the native NEON backend.
#       The Numba tests skip; before pytest a check asserts fastdl.backend() == 'native'
#       and fastdl.isa() == 'neon', so a silent fallback cannot pass.
#     - No binfmt_misc: the tests that spawn sys.executable run too, because the
#       interpreter is started through a wrapper (build/arm/bin/python3.11) with qemu's
#       `-0 argv0` option, so the emulated Python's sys.executable is the wrapper.
#     - qemu-user 7.2 cannot create threads in a child forked from a multi-threaded
#       process (qemu aborts: "cpu_exec: assertion failed: (cpu == current_cpu)"). A
#       10-line C probe (no fastdl code) checks this qemu; if it aborts, the two tests
#       that fork a process with a live thread pool are deselected (ctest
#       ThreadPool.ForkedChildCanStillRunParallelFor, pytest
#       test_fastdl_works_in_a_forked_child[native]); they run natively on x86 in CI.
#     - FASTDL_TEST_EMULATED=1 tells the tests that time things that the CPU is emulated
#       (50-200x slower than the board): Ctrl-C must still stop the long calls
#       (tests/test_interrupts.py), but their 1 s bound belongs to real hardware.
#  5. Evidence: scripts/arm/check_fmla.sh (objdump: `fmla vN.4s` in each hot kernel, no
#     ARMv8.2 instructions) and scripts/arm/mca.sh (llvm-mca FMLA/cycle of the GEMM k-loop).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
W=${FASTDL_ARM_WORK:-$ROOT/build/arm}
DIST=$ROOT/dist-arm
SYSROOT=$W/sysroot
QEMU_CPU=${FASTDL_QEMU_CPU:-cortex-a72}
PYVER=3.11
TRIPLE=aarch64-linux-gnu
TARGET_PIP_FLAGS=(--platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64
                  --platform linux_aarch64 --python-version "$PYVER" --implementation cp
                  --only-binary=:all:)
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
mkdir -p "$W" "$DIST"
cd "$ROOT"

# ---------------------------------------------------------------------------- summary
declare -a SUMMARY=()
FACTS=()
T0=$SECONDS
STAGE="" STAGE_T0=0
stage() {  # stage NAME: ends the previous stage (ok) and starts the next
  [[ -n $STAGE ]] && SUMMARY+=("$(printf '%-10s ok    %4ds' "$STAGE" $((SECONDS - STAGE_T0)))")
  STAGE=$1 STAGE_T0=$SECONDS
  echo
  echo "== [$(date +%H:%M:%S)] $1: ${2:-}"
}
finish() {
  local rc=$?
  if [[ -n $STAGE ]]; then
    SUMMARY+=("$(printf '%-10s %-5s %4ds' "$STAGE" "$([[ $rc == 0 ]] && echo ok || echo FAIL)" \
                $((SECONDS - STAGE_T0)))")
  fi
  echo
  echo "== ARM build summary ($(( (SECONDS - T0) / 60 ))m$(( (SECONDS - T0) % 60 ))s)"
  printf '   %s\n' "${SUMMARY[@]}"
  [[ ${#FACTS[@]} -gt 0 ]] && printf '   %s\n' "${FACTS[@]}"
  if [[ $rc == 0 ]]; then echo "== ARM build: OK"; else echo "== ARM build: FAILED (exit $rc) in stage $STAGE"; fi
}
trap finish EXIT
die() { echo "build_and_test.sh: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------- 1. apt
stage apt "cross toolchain, qemu, mmdebstrap, googletest, llvm-14, cmake"
PKGS=(g++-$TRIPLE binutils-$TRIPLE qemu-user mmdebstrap googletest llvm-14 make)
if ! command -v cmake >/dev/null; then PKGS+=(cmake); fi
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  # No recommends (llvm-14-dev, qemu-user-binfmt), except for mmdebstrap's helpers.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [[ " ${missing[*]} " == *" mmdebstrap "* ]] && apt-get install -y -qq mmdebstrap >/dev/null
fi
cmake_version=$(cmake --version | awk 'NR == 1 { print $3 }')
printf '%s\n3.18\n' "$cmake_version" | sort -V -C && die "cmake $cmake_version < 3.18 (gtest DISCOVERY_MODE)"

HOSTPY=${FASTDL_HOST_PYTHON:-}
if [[ -z $HOSTPY ]]; then
  for c in python$PYVER python3; do
    if command -v "$c" >/dev/null && "$c" -c "import sys; sys.exit(sys.version_info[:2] != (3, 11))"; then
      HOSTPY=$(command -v "$c"); break
    fi
  done
fi
[[ -n $HOSTPY ]] || die "no host Python $PYVER (crossenv needs the same minor version as the target)"
if ! "$HOSTPY" -c "import ensurepip, venv" 2>/dev/null; then
  apt-get install -y -qq "python$PYVER-venv" >/dev/null
fi
echo "host python: $HOSTPY ($("$HOSTPY" -c 'import platform; print(platform.python_version())'))," \
     "cmake $cmake_version, $(qemu-aarch64 --version | head -n1)"

# qemu-user bug probe (see the header): fork a process that has a live thread, then start
# a thread in the child.
probe=$W/probe
mkdir -p "$probe"
cat > "$probe/fork_thread.c" <<'EOF'
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>
static void* idle(void* p) { (void)p; usleep(100000); return 0; }
int main(void) {
  pthread_t t, u;
  pthread_create(&t, 0, idle, 0);
  pid_t pid = fork();
  if (pid == 0) { pthread_create(&u, 0, idle, 0); pthread_join(u, 0); _exit(0); }
  int status = 1;
  waitpid(pid, &status, 0);
  pthread_join(t, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
EOF
$TRIPLE-gcc -O2 -pthread -o "$probe/fork_thread" "$probe/fork_thread.c"
if qemu-aarch64 -cpu "$QEMU_CPU" -L /usr/$TRIPLE "$probe/fork_thread" >/dev/null 2>&1; then
  QEMU_FORK_OK=1
  echo "qemu: threads in a forked child work; fork tests run"
else
  QEMU_FORK_OK=0
  echo "qemu: aborts when a forked child of a multi-threaded process starts a thread" \
       "(qemu-user bug, not fastdl's); fork tests deselected"
fi

# ---------------------------------------------------------------------------- 2. kernels
stage kernels "cmake cross build of kernels/ + ctest under qemu-aarch64 -cpu $QEMU_CPU"
KB=$W/kernels
cmake -S kernels -B "$KB" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_TOOLCHAIN_FILE="$ROOT/kernels/cmake/aarch64-linux-gnu.cmake" \
      -DFASTDL_QEMU_CPU="$QEMU_CPU" -Wno-dev -Wno-deprecated > "$W/kernels-configure.log" 2>&1 \
  || { cat "$W/kernels-configure.log"; die "cmake configure failed"; }
cmake --build "$KB" -j "$(nproc)" > "$W/kernels-build.log" 2>&1 \
  || { tail -n 60 "$W/kernels-build.log"; die "kernel cross build failed"; }
ctest_args=(--test-dir "$KB" -j "$(nproc)" --output-on-failure --timeout 600)
[[ $QEMU_FORK_OK == 1 ]] || ctest_args+=(-E 'ForkedChild')
set +e
ctest "${ctest_args[@]}" 2>&1 | tee "$W/ctest.log"
ctest_rc=${PIPESTATUS[0]}
set -e
ctest_line=$(grep -E '% tests passed' "$W/ctest.log" | tail -n1 || true)
FACTS+=("ctest (qemu $QEMU_CPU): ${ctest_line:-no result line}$([[ $QEMU_FORK_OK == 1 ]] || echo '; ForkedChild deselected (qemu bug)')")
[[ $ctest_rc == 0 ]] || die "ctest under qemu failed (exit $ctest_rc)"

# ---------------------------------------------------------------------------- 3. wheel
stage sysroot "arm64 Debian sysroot with python$PYVER (mmdebstrap, no emulation)"
SYSROOT_PKGS=python$PYVER,libpython$PYVER-dev,libstdc++6
if [[ ! -f $SYSROOT/.fastdl-complete || $(cat "$SYSROOT/.fastdl-complete") != "$SYSROOT_PKGS" ]]; then
  rm -rf "$SYSROOT"
  sources=/etc/apt/sources.list.d/debian.sources
  [[ -f $sources ]] || sources=/etc/apt/sources.list
  mmdebstrap --quiet --variant=extract --arch=arm64 --include="$SYSROOT_PKGS" \
             bookworm "$SYSROOT" "$sources"
  # Every emulated start would otherwise compile the stdlib it imports (~3 s); the host's
  # 3.11 writes the same bytecode format. -s/-p: tracebacks name /usr/lib/python3.11.
  "$HOSTPY" -m compileall -q -j 0 -s "$SYSROOT" -p / -x '/(test|tests|idlelib|lib2to3)/' \
            "$SYSROOT/usr/lib/python$PYVER" >/dev/null || true
  # Empty site dirs inside the sysroot: qemu -L would otherwise fall back to the host's
  # (x86) /usr/local/lib/python3.11/dist-packages and /usr/lib/python3/dist-packages.
  mkdir -p "$SYSROOT/usr/local/lib/python$PYVER/dist-packages" "$SYSROOT/usr/lib/python3/dist-packages"
  echo "$SYSROOT_PKGS" > "$SYSROOT/.fastdl-complete"
fi
# The target interpreter; sys.executable is this wrapper (qemu -0), so subprocesses work.
mkdir -p "$W/bin"
cat > "$W/bin/python$PYVER" <<EOF
#!/bin/sh
exec qemu-aarch64 -cpu "$QEMU_CPU" -L "$SYSROOT" -0 "\$0" "$SYSROOT/usr/bin/python$PYVER" "\$@"
EOF
chmod +x "$W/bin/python$PYVER"
TPY=$W/bin/python$PYVER
"$TPY" -c "import platform, sys; assert platform.machine() == 'aarch64'; print('target python', sys.version.split()[0], platform.machine())"

stage crossenv "host venv + crossenv + build dependencies"
if [[ ! -x $W/host-venv/bin/python ]]; then
  rm -rf "$W/host-venv" "$W/xenv"
  "$HOSTPY" -m venv "$W/host-venv"
fi
"$W/host-venv/bin/python" -c "import crossenv" 2>/dev/null \
  || "$W/host-venv/bin/python" -m pip install -q crossenv
if [[ ! -x $W/xenv/bin/cross-pip ]]; then
  rm -rf "$W/xenv"
  # --sysroot inside CC/CXX too: the sysroot's libc.so linker script has absolute paths.
  "$W/host-venv/bin/python" -m crossenv "$SYSROOT/usr/bin/python$PYVER" "$W/xenv" \
      --sysroot "$SYSROOT" \
      --env "CC=$TRIPLE-gcc --sysroot=$SYSROOT" --env "CXX=$TRIPLE-g++ --sysroot=$SYSROOT" >/dev/null
fi
# Build dependencies (pyproject.toml's build-system.requires minus numpy, which the build
# does not import) in the build-python, exposed to cross-python: --no-build-isolation.
"$W/xenv/bin/cross-python" -c "import setuptools, wheel, pybind11, Cython" 2>/dev/null || {
  "$W/xenv/bin/build-pip" install -q "setuptools>=64" wheel "pybind11>=2.11" "Cython>=3.0"
  "$W/xenv/bin/cross-expose" wheel pybind11 Cython >/dev/null
  "$W/xenv/bin/cross-python" -c "import setuptools, wheel, pybind11, Cython"
}
"$W/xenv/bin/cross-python" -c "import sysconfig; p = sysconfig.get_platform(); assert p == 'linux-aarch64', p; print('cross-python platform', p)"

stage wheel "cross-pip wheel (linux_aarch64, cp311) -> dist-arm/"
SRC=$W/src
rm -rf "$SRC"
mkdir -p "$SRC"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$ROOT" ls-files -z -co --exclude-standard | (cd "$ROOT" && tar --null -cf - -T -) | tar -xf - -C "$SRC"
else
  tar -C "$ROOT" --exclude=./build --exclude=./dist --exclude=./dist-arm --exclude=./.git \
      --exclude='*.so' --exclude=__pycache__ --exclude='*.egg-info' --exclude=./.ci-venv \
      -cf - . | tar -xf - -C "$SRC"
fi
rm -f "$DIST"/fastdl-*.whl
(cd "$W" && "$W/xenv/bin/cross-pip" wheel --no-build-isolation --no-deps -w "$DIST" "$SRC") \
  > "$W/wheel.log" 2>&1 || { tail -n 60 "$W/wheel.log"; die "cross-pip wheel failed"; }
WHEEL=$(ls "$DIST"/fastdl-*-cp311-cp311-linux_aarch64.whl 2>/dev/null | head -n1)
[[ -n $WHEEL ]] || { tail -n 40 "$W/wheel.log"; die "no linux_aarch64 cp311 wheel in dist-arm/"; }
if grep -q "Installing as pure Python" "$W/wheel.log"; then
  grep -B30 "Installing as pure Python" "$W/wheel.log" | tail -n 40
  die "the extension failed to compile; setup.py fell back to pure Python"
fi
"$HOSTPY" - "$WHEEL" <<'EOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
want = [f"fastdl/{m}.cpython-311-aarch64-linux-gnu.so" for m in ("_C", "_im2col", "_losses",
                                                                 "_optimizers", "_triplet")]
missing = [n for n in want if n not in names]
if missing:
    sys.exit(f"wheel lacks {missing}")
print("wheel has", ", ".join(want))
EOF
rm -rf "$W/site-fastdl"
"$HOSTPY" -m pip install -q --target "$W/site-fastdl" "${TARGET_PIP_FLAGS[@]}" --no-deps "$WHEEL"
for so in "$W"/site-fastdl/fastdl/*.so; do
  [[ $($TRIPLE-readelf -h "$so") == *"Machine:"*"AArch64"* ]] || die "$so is not an AArch64 ELF"
done
FACTS+=("wheel: dist-arm/$(basename "$WHEEL") ($(du -h "$WHEEL" | cut -f1))")

# ---------------------------------------------------------------------------- 4. pytest
stage pytest "the Python suite under qemu-aarch64 -cpu $QEMU_CPU (native backend, NEON)"
DEPS=$W/site-deps
DEPS_SPEC="numpy pytest hypothesis"
if [[ ! -f $DEPS/.fastdl-complete || $(cat "$DEPS/.fastdl-complete") != "$DEPS_SPEC" ]]; then
  rm -rf "$DEPS"
  # shellcheck disable=SC2086
  "$HOSTPY" -m pip install -q --target "$DEPS" "${TARGET_PIP_FLAGS[@]}" $DEPS_SPEC
  "$HOSTPY" -m compileall -q -j 0 "$DEPS" >/dev/null || true
  echo "$DEPS_SPEC" > "$DEPS/.fastdl-complete"
fi
"$HOSTPY" -m compileall -q -j 0 "$W/site-fastdl" >/dev/null || true
# The tests run from a copy outside the work tree: tests put their parent's parent on
# PYTHONPATH for child interpreters, and the work tree's fastdl/ holds x86 builds.
RUN=$W/pytest
rm -rf "$RUN"
mkdir -p "$RUN"
cp -r "$SRC/tests" "$RUN/tests"
[[ -f $SRC/pyproject.toml ]] && cp "$SRC/pyproject.toml" "$RUN/"
temu() {  # the target Python under qemu, in a clean environment
  (cd "$RUN" && env -u PYTHONDONTWRITEBYTECODE -u PYTHONHOME -u FASTDL_ISA -u FASTDL_BACKEND \
       -u FASTDL_NUM_THREADS -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE -u OPENBLAS_NUM_THREADS \
       PYTHONPATH="$W/site-fastdl:$DEPS" PYTHONNOUSERSITE=1 FASTDL_TEST_EMULATED=1 "$TPY" "$@")
}
temu - <<'EOF'
import fastdl, numpy
from fastdl import _C
assert fastdl.backend() == "native", fastdl.backend()
assert fastdl.isa() == "neon", fastdl.isa()
variants = _C.variants("gemm")
assert variants.get("fdl_f32_gemm__neon_8x12"), variants
gflops = _C.fma_peak_gflops(0.05)   # the NEON peak kernel runs (the emulated figure means nothing)
assert gflops > 0, gflops
print(f"fastdl {fastdl.__version__}: backend native, isa neon, gemm variants {sorted(variants)},"
      f" numpy {numpy.__version__}; NEON FMA peak loop ran")
EOF
pytest_args=(-m pytest tests -q -p no:cacheprovider -rfE --durations=5)
[[ $QEMU_FORK_OK == 1 ]] || pytest_args+=(--deselect "tests/test_env_selection.py::test_fastdl_works_in_a_forked_child[native]")
# Extra pytest arguments, e.g. FASTDL_ARM_PYTEST_ARGS="-x" or "--deselect tests/...::name".
read -r -a extra_args <<< "${FASTDL_ARM_PYTEST_ARGS:-}"
pytest_args+=("${extra_args[@]}")
set +e
temu "${pytest_args[@]}" 2>&1 | tee "$W/pytest.log"
pytest_rc=${PIPESTATUS[0]}
set -e
pytest_line=$(grep -E '^(=+ )?[0-9]+ (passed|failed)' "$W/pytest.log" | tail -n1 | sed 's/=//g; s/^ *//; s/ *$//' || true)
FACTS+=("pytest (qemu $QEMU_CPU): ${pytest_line:-no result line}$([[ $QEMU_FORK_OK == 1 ]] || echo '; forked-child[native] deselected (qemu bug)')")
[[ $pytest_rc == 0 ]] || die "pytest under qemu failed (exit $pytest_rc)"

# ---------------------------------------------------------------------------- 5. evidence
stage evidence "objdump fmla check, llvm-mca of the GEMM k-loop"
bash "$ROOT/scripts/arm/check_fmla.sh" "$KB/libfastdl_kernels.a" "$W"/site-fastdl/fastdl/_C.*.so \
  | tee "$W/check_fmla.log"
FACTS+=("$(grep '^objdump:' "$W/check_fmla.log" | tail -n1 || true)")
FASTDL_ARM_WORK=$W bash "$ROOT/scripts/arm/mca.sh" > "$W/mca.log" 2>&1 || { cat "$W/mca.log"; die "mca.sh failed"; }
sed -n '1,2p' "$W/mca.log"
FACTS+=("llvm-mca GEMM 8x12 k-loop: $(grep '^FMLA/cycle:' "$W/mca.log" | sed 's/^FMLA\/cycle: //' || true)")
echo "(full llvm-mca output: $W/mca.log)"
SUMMARY+=("$(printf '%-10s ok    %4ds' "$STAGE" $((SECONDS - STAGE_T0)))")
STAGE=""
