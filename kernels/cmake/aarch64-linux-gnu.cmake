# CMake toolchain file: cross-compile kernels/ for 64-bit ARM Linux (the HiKey970 board:
# Kirin 970, 4x Cortex-A73 + 4x Cortex-A53, ARMv8.0-A) with Debian's cross compiler, and
# run the tests under user-mode qemu.
#
#   apt-get install g++-aarch64-linux-gnu qemu-user googletest cmake
#   cmake -S kernels -B build/arm/kernels -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
#   cmake --build build/arm/kernels -j && ctest --test-dir build/arm/kernels
#
# (A relative toolchain path is looked up in the build tree, then in the source tree
# kernels/; an absolute path always works.) scripts/arm/build_and_test.sh does all of this,
# plus the Python wheel and its tests.
#
# kernels/CMakeLists.txt gives the -neon.cc files -mcpu=cortex-a73 when
# CMAKE_SYSTEM_PROCESSOR is aarch64; every other file is built for the ARMv8.0-A baseline.
#
# Tests run through CMAKE_CROSSCOMPILING_EMULATOR (ctest, and gtest_discover_tests at test
# time). The emulated CPU is a Cortex-A72: qemu 7.2 has no A73 model, and the A72 is at
# the same ARMv8.0-A level, so an ARMv8.2 instruction (fp16 arithmetic, dot product, ...)
# that slipped into a kernel dies with SIGILL here as it would on the board; qemu's default
# `max` CPU would run it and hide the bug. Override with -DFASTDL_QEMU_CPU=... if needed.
#
# GoogleTest: Debian's libgtest-dev holds host (x86-64) libraries only, so the tests link
# a GoogleTest built from source with this compiler: FASTDL_GTEST_SOURCE (default: Debian's
# `googletest` source package, /usr/src/googletest) is added to the build by
# kernels/CMakeLists.txt. Set -DFASTDL_GTEST_SOURCE= (empty) to use find_package(GTest)
# with an arm64 GoogleTest of your own (e.g. -DGTest_DIR=...).

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(FASTDL_CROSS_PREFIX aarch64-linux-gnu-)
set(CMAKE_C_COMPILER ${FASTDL_CROSS_PREFIX}gcc)
set(CMAKE_CXX_COMPILER ${FASTDL_CROSS_PREFIX}g++)

# Debian's multiarch cross toolchain keeps the target's libc and libstdc++ here.
set(FASTDL_TARGET_ROOT /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH ${FASTDL_TARGET_ROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)   # build tools run on the host
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)    # libraries and headers: the target's only
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

if(NOT DEFINED FASTDL_QEMU_CPU)
  set(FASTDL_QEMU_CPU cortex-a72)
endif()
if(NOT DEFINED CMAKE_CROSSCOMPILING_EMULATOR)
  find_program(FASTDL_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
  if(NOT FASTDL_QEMU_AARCH64)
    set(FASTDL_QEMU_AARCH64 qemu-aarch64)
  endif()
  set(CMAKE_CROSSCOMPILING_EMULATOR
      ${FASTDL_QEMU_AARCH64};-cpu;${FASTDL_QEMU_CPU};-L;${FASTDL_TARGET_ROOT})
endif()

if(NOT DEFINED FASTDL_GTEST_SOURCE AND EXISTS /usr/src/googletest/googletest/CMakeLists.txt)
  set(FASTDL_GTEST_SOURCE /usr/src/googletest CACHE PATH
      "GoogleTest source tree built with the cross compiler (empty: find_package(GTest))")
endif()
