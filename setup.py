"""Builds fastdl's compiled part: kernels/ into a static library, linked into the pybind11
module fastdl._C and the Cython modules fastdl._<stem> of src/_cy/<stem>.pyx (_im2col,
_losses; each takes the objects it uses; symbols are hidden, so the copies never
interpose).

The file suffix -<isa>.cc is the one thing that selects ISA flags (kernels/CMakeLists.txt
applies the same rule). Never -march=native: a wheel must run on any CPU of its
architecture; the kernels pick their ISA at run time.

If compiling fails, the install still succeeds as pure Python (the Numba backend) and
says so loudly. FASTDL_NO_EXTENSION=1 skips the compiled part on purpose.
"""
import glob
import os
import sys
import sysconfig
import traceback
from concurrent.futures import ThreadPoolExecutor

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

KERNEL_INCLUDE = os.path.join("kernels", "include")
COMMON_FLAGS = ["-O3", "-std=c++17", "-fPIC", "-fvisibility=hidden", "-Wall"]
ISA_FLAGS = {
    "x86_64": {
        "avx2": ["-mavx2", "-mfma"],
        "avx512": ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mfma",
                   "-Wno-maybe-uninitialized"],
    },
    "aarch64": {"neon": ["-mcpu=cortex-a73"]},
}
ALL_ISAS = {isa for flags in ISA_FLAGS.values() for isa in flags}


def target_arch():
    """The architecture being built for (crossenv reports the target's platform)."""
    plat = sysconfig.get_platform()
    if "aarch64" in plat or "arm64" in plat:
        return "aarch64"
    if "x86_64" in plat or "amd64" in plat:
        return "x86_64"
    return plat


def kernel_sources():
    """(source, extra flags) for every kernel file that belongs to this architecture."""
    arch_flags = ISA_FLAGS.get(target_arch(), {})
    out = []
    for src in sorted(glob.glob(os.path.join("kernels", "src", "**", "*.cc"), recursive=True)):
        stem = os.path.splitext(os.path.basename(src))[0]
        isa = stem.rsplit("-", 1)[-1] if "-" in stem else None
        if isa in ALL_ISAS:
            if isa not in arch_flags:
                continue
            out.append((src, arch_flags[isa]))
        else:
            out.append((src, []))
    return out


def kernel_headers():
    """Headers and .inc fragments: a change to any of them rebuilds what includes it."""
    return sorted(glob.glob(os.path.join("kernels", "**", "*.h"), recursive=True)
                  + glob.glob(os.path.join("kernels", "**", "*.inc"), recursive=True))


def loud_warning(message):
    bar = "!" * 78
    sys.stderr.write(f"\n{bar}\n!! fastdl: {message}\n!! Installing as pure Python: "
                     f"kernels run on the Numba backend (much slower).\n{bar}\n\n")


class BuildWithKernels(build_ext):
    """Compiles kernels/ once into a shared library next to the extensions."""

    def run(self):
        if os.environ.get("FASTDL_NO_EXTENSION") == "1":
            loud_warning("FASTDL_NO_EXTENSION=1: the compiled extension is not built.")
            return
        try:
            super().run()
        except Exception:  # noqa: BLE001 - any build failure falls back to pure Python
            traceback.print_exc()
            loud_warning("building the compiled extension failed (see the error above).")

    def build_extensions(self):
        library = self.build_kernel_library()
        for ext in self.extensions:
            if ext.name == "fastdl._C":  # the one module that links the kernels
                ext.extra_objects.append(library)
        super().build_extensions()

    def build_kernel_library(self):
        """Compiles kernels/src with per-file ISA flags into libfastdl_kernels.a."""
        objects_dir = os.path.join(self.build_temp, "kernels")

        def compile_one(item):
            src, flags = item
            return self.compiler.compile([src], output_dir=objects_dir,
                                         include_dirs=[KERNEL_INCLUDE],
                                         extra_postargs=COMMON_FLAGS + flags,
                                         depends=kernel_headers())

        with ThreadPoolExecutor(max(1, os.cpu_count() or 1)) as pool:
            objects = [o for objs in pool.map(compile_one, kernel_sources()) for o in objs]
        self.compiler.create_static_lib(objects, "fastdl_kernels", output_dir=self.build_temp)
        return self.compiler.library_filename("fastdl_kernels", output_dir=self.build_temp)


def extensions():
    import pybind11

    # depends: relink when any kernel source changes (the library is not a source).
    link = dict(extra_link_args=["-pthread"], language="c++",
                depends=kernel_headers() + [src for src, _ in kernel_sources()])
    exts = [
        Extension("fastdl._C", sorted(glob.glob(os.path.join("src", "_C", "*.cc"))),
                  include_dirs=[KERNEL_INCLUDE, "src", pybind11.get_include()],
                  extra_compile_args=COMMON_FLAGS, **link),
    ]
    try:
        from Cython.Build import cythonize
    except ImportError:
        loud_warning("Cython is missing: fastdl._im2col and fastdl._losses are not built "
                     "(ops fall back).")
        return exts
    # One module fastdl._<stem> per src/_cy/<stem>.pyx (fastdl._im2col, fastdl._losses, ...).
    # They call the kernels through fastdl._C's capsule (src/kernel_api.h) and link none.
    cy = [Extension(f"fastdl._{os.path.splitext(os.path.basename(pyx))[0]}", [pyx],
                    include_dirs=[KERNEL_INCLUDE, "src"], extra_compile_args=COMMON_FLAGS,
                    language="c++", depends=kernel_headers() + [os.path.join("src", "kernel_api.h")])
          for pyx in sorted(glob.glob(os.path.join("src", "_cy", "*.pyx")))]
    return exts + cythonize(cy, language_level=3, quiet=True,
                            include_path=[os.path.join("src", "_cy")])


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildWithKernels})
