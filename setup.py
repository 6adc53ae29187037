"""Builds fastdl's compiled part: kernels/ into a static library, linked into the pybind11
module fastdl._C (src/_C/*.cc) only, and the Cython modules fastdl._<stem> of
src/_cy/<stem>.pyx (_im2col, _losses), which link no kernels: they call fastdl._C's through
its capsule (src/kernel_api.h), so the process holds one copy of the kernels' state (the
active ISA, the thread pool).

The file suffix -<isa>.cc is the one thing that selects ISA flags (kernels/CMakeLists.txt
applies the same rule). Never -march=native: a wheel must run on any CPU of its
architecture; the kernels pick their ISA at run time.

How the build goes (BuildWithKernels):
- Every translation unit (kernels/src/**/*.cc, src/_C/*.cc, the C++ that Cython generates
  from src/_cy/*.pyx) compiles in one pool, one compiler per CPU this process may use.
- It is incremental, editable installs included: objects, the library and the linked
  modules stay in build/objects.<python-abi-platform>/ and each is remade only when out of
  date. An object: when its source or a project file it included last time (the
  compiler's -MMD list) is newer, or the toolchain changed (compiler commands, flags,
  pybind11 and Cython versions: toolchain.json there). The library and each module: when
  an input is newer or their list of inputs changed. A second `pip install -e .` in the
  same checkout compiles nothing.
- pip shows a build backend's output only under -v (or when the build fails), so the
  progress (a line per compiled file and linked module) and the warnings go to the
  terminal (/dev/tty) when there is one, else to stderr.

If the build fails (or pybind11/Cython cannot be imported, as under
--no-build-isolation without them), the install still succeeds as pure Python (the
Numba backend) and says so loudly; `import fastdl` then warns too.
FASTDL_NO_EXTENSION=1 skips the compiled part on purpose.
"""
import glob
import json
import os
import subprocess
import sys
import sysconfig
import threading
import time
import traceback
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import List, NamedTuple

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CompileError

ROOT = os.path.dirname(os.path.abspath(__file__))
KERNEL_INCLUDE = os.path.join("kernels", "include")
KERNEL_MODULE = "fastdl._C"  # the one module that links the kernel library
# -g0 overrides the -g that Python's CFLAGS usually carry: debug info nearly triples the
# compile time of a SIMD kernel file and makes the modules ~10x larger; kernels/CMakeLists.txt
# builds Release (-O3, no -g) too.
COMMON_FLAGS = ["-O3", "-g0", "-std=c++17", "-fPIC", "-fvisibility=hidden", "-Wall"]
# FASTDL_SANITIZE=1 (scripts/sanitize.sh --python): AddressSanitizer + UBSan, ASan's usual
# -O1 -g1 (after -O3 -g0: the last of each wins). Python itself is not instrumented: the run
# preloads the sanitizer runtimes.
SANITIZE = os.environ.get("FASTDL_SANITIZE") == "1"
if SANITIZE:
    COMMON_FLAGS += ["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                     "-fno-omit-frame-pointer", "-O1", "-g1"]
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


def available_cpus():
    """How many CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no sched_getaffinity outside Linux
        return max(1, os.cpu_count() or 1)


_tell_lock = threading.Lock()
_tty_written = False


def tell_user(text, also_stderr=False):
    """Shows text although pip captures the build's output: on the terminal (/dev/tty)
    when this process has one, else on stderr (pip shows that with -v, or when the build
    fails); with also_stderr on both, so logs keep it. Never raises: CI has no terminal."""
    global _tty_written
    with _tell_lock:
        shown = False
        try:
            with open("/dev/tty", "w") as tty:
                # pip's spinner ends the current line: the first line goes below it, the
                # next ones overwrite the spinner character it writes at column 0.
                tty.write(("\r" if _tty_written else "\n") + text)
            _tty_written = shown = True
        except OSError:
            pass
        if also_stderr or not shown:
            try:
                sys.stderr.write(text)
                sys.stderr.flush()
            except (OSError, ValueError):
                pass


def loud_warning(message):
    bar = "!" * 78
    tell_user(f"{bar}\n!! fastdl: {message}\n!! Installing as pure Python: kernels run on "
              f"the Numba backend (much slower).\n{bar}\n", also_stderr=True)


def newer_than(target, inputs):
    """True when target is missing, or any input is missing or newer than it."""
    try:
        built = os.path.getmtime(target)
        return any(os.path.getmtime(path) > built for path in inputs)
    except OSError:
        return True


def up_to_date(target, inputs):
    """True when target is newer than every input and was made from exactly these inputs
    (record_inputs kept their list beside it)."""
    try:
        with open(target + ".inputs") as f:
            same = f.read() == "\n".join(inputs)
    except OSError:
        return False
    return same and not newer_than(target, inputs)


def record_inputs(target, inputs):
    with open(target + ".inputs", "w") as f:
        f.write("\n".join(inputs))


def remove(*paths):
    for path in paths:
        if os.path.exists(path):
            os.remove(path)


def project_includes(depfile):
    """The project's files a compile read, from the compiler's -MMD output, or None when
    there is none. Files outside the project are left out: pybind11's headers live in
    pip's temporary build environment (its version is in toolchain.json), Python's
    headers change with the interpreter (its ABI names the objects' directory)."""
    try:
        with open(depfile) as f:
            text = f.read()
    except OSError:
        return None
    _target, _, deps = text.replace("\\\n", " ").partition(":")
    return [p for p in deps.split() if not os.path.isabs(p) or p.startswith(ROOT + os.sep)]


class Unit(NamedTuple):
    """One translation unit: what compiles into which object, with which flags."""
    source: str
    object: str
    include_dirs: List[str]
    flags: List[str]

    @property
    def depfile(self):
        return os.path.splitext(self.object)[0] + ".d"

    def stale(self, stamp):
        """True when the object must be recompiled (see the module docstring)."""
        includes = project_includes(self.depfile)
        return includes is None or newer_than(self.object, [self.source, stamp] + includes)


def toolchain_stamp(compiler, directory):
    """Path of directory/toolchain.json, rewritten, so newer than every object, when what
    goes into every object besides sources and headers changed; and whether it did."""
    import Cython
    import pybind11

    signature = json.dumps({
        "compile": [compiler.compiler_so, getattr(compiler, "compiler_so_cxx", None)],
        "link": [compiler.linker_so, getattr(compiler, "linker_so_cxx", None),
                 compiler.compiler_cxx],
        "archive": compiler.archiver, "flags": COMMON_FLAGS, "isa_flags": ISA_FLAGS,
        "pybind11": pybind11.__version__, "Cython": Cython.__version__}, indent=1)
    stamp = os.path.join(directory, "toolchain.json")
    try:
        with open(stamp) as f:
            if f.read() == signature:
                return stamp, False
    except OSError:
        pass
    os.makedirs(directory, exist_ok=True)
    with open(stamp, "w") as f:
        f.write(signature)
    return stamp, True


class BuildWithKernels(build_ext):
    """Compiles every translation unit in one pool, incrementally, archives the kernels
    and links each module with them (see the module docstring)."""

    def run(self):
        in_tree = self.inplace or getattr(self, "editable_mode", False)
        if os.environ.get("FASTDL_NO_EXTENSION") == "1":
            self.remove_modules(in_tree)
            loud_warning("FASTDL_NO_EXTENSION=1: the compiled extension is not built.")
            return
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any build failure falls back to pure Python
            traceback.print_exc()
            self.remove_modules(in_tree)
            loud_warning(f"building the compiled extension failed:\n!!   {exc}\n"
                         "!! (`pip install -v ...` shows the compiler's messages)")

    def remove_modules(self, in_tree):
        """Removes the modules an earlier build left where this one would put them (in
        build_lib and, in_tree: editable or --inplace, in the source tree), so that an
        install without the compiled part is pure Python, as the warning says."""
        for ext in self.extensions:
            filename = self.get_ext_filename(ext.name)
            remove(os.path.join(self.build_lib, filename))
            if in_tree:
                remove(os.path.join(ROOT, filename))

    def build_extensions(self):
        started = time.monotonic()
        self.check_extensions_list(self.extensions)
        import pybind11  # a build requirement; its absence lands in run()'s fallback

        self.objects_dir = self.objects_directory()
        stamp, toolchain_changed = toolchain_stamp(self.compiler, self.objects_dir)
        for ext in self.extensions:
            if ext.name == KERNEL_MODULE:
                ext.include_dirs.append(pybind11.get_include())
        self.cythonize(force=toolchain_changed)

        # The modules' own sources first: the pybind11 ones take longest to compile.
        modules = {ext.name: [self.unit(src, ext.include_dirs, ext.extra_compile_args)
                              for src in ext.sources] for ext in self.extensions}
        kernels = [self.unit(src, [KERNEL_INCLUDE], COMMON_FLAGS + flags)
                   for src, flags in kernel_sources()]
        units = [u for units in modules.values() for u in units] + kernels
        compiled = self.compile_units(units, stamp)
        library = self.archive([u.object for u in kernels], stamp)
        linked = sum(self.link(ext, [u.object for u in modules[ext.name]], library, stamp)
                     for ext in self.extensions)
        if compiled or linked:
            tell_user(f"fastdl: compiled extension built: {compiled} of {len(units)} files "
                      f"compiled, {linked} modules linked, {time.monotonic() - started:.0f} s\n")
        else:
            tell_user(f"fastdl: compiled extension up to date ({len(units)} files)\n")

    def objects_directory(self):
        """build/objects.<EXT_SUFFIX stem>, e.g. build/objects.cpython-311-x86_64-linux-gnu:
        fixed for editable builds too, whose build_temp is a new temporary directory."""
        abi = os.path.splitext(sysconfig.get_config_var("EXT_SUFFIX"))[0]
        return os.path.join(self.get_finalized_command("build").build_base, "objects" + abi)

    def cythonize(self, force):
        """Replaces each module's .pyx sources with the C++ Cython generates beside them,
        regenerated when forced or when the .pyx or a .pxd/.pxi of src/_cy is newer. Not
        Cython's own rule: it counts its Cython/Includes/*.pxd, which pip's new build
        environment dates from now, so every build would regenerate and recompile."""
        from Cython.Build import cythonize

        declarations = glob.glob(os.path.join("src", "_cy", "*.px[di]"))
        for ext in self.extensions:
            pyx = [src for src in ext.sources if src.endswith(".pyx")]
            if not pyx:
                continue
            generated = [os.path.splitext(src)[0] + ".cpp" if src in pyx else src
                         for src in ext.sources]
            if force or any(newer_than(cpp, [src] + declarations)
                            for src, cpp in zip(ext.sources, generated) if src in pyx):
                tell_user(f"fastdl: cythonizing {' '.join(pyx)}\n")
                cythonize([ext], language_level=3, quiet=True, force=True,
                          include_path=[os.path.join("src", "_cy")])
            ext.sources = generated

    def unit(self, source, include_dirs, flags):
        obj = self.compiler.object_filenames([source], output_dir=self.objects_dir)[0]
        return Unit(source, obj, list(include_dirs), list(flags))

    def compile_units(self, units, stamp):
        """Compiles the stale units, available_cpus() at a time, a progress line each;
        at the first failure, starts no more and raises it. Returns how many compiled."""
        todo = [u for u in units if u.stale(stamp)]
        if not todo:
            return 0
        jobs = available_cpus()
        tell_user(f"fastdl: compiling {len(todo)} of {len(units)} files, {jobs} at a time\n")
        started = iter(range(1, len(todo) + 1))

        def compile_one(unit):
            with _tell_lock:
                n = next(started)
            tell_user(f"fastdl: [{n}/{len(todo)}] {unit.source}\n")
            remove(unit.object, unit.depfile)
            t0 = time.monotonic()
            try:
                self.compiler.compile([unit.source], output_dir=self.objects_dir,
                                      include_dirs=unit.include_dirs, debug=self.debug,
                                      extra_postargs=unit.flags + ["-MMD", "-MF", unit.depfile])
            except CompileError as exc:
                failed = exc.__context__  # what distutils caught: the command's exit or OSError
                if isinstance(failed, subprocess.CalledProcessError):
                    exc = f"{os.path.basename(failed.cmd[0])} exited with status {failed.returncode}"
                raise CompileError(f"{unit.source}: {exc}") from None
            print(f"fastdl: {unit.source} compiled in {time.monotonic() - t0:.1f} s", flush=True)

        with ThreadPoolExecutor(jobs) as pool:
            futures = [pool.submit(compile_one, unit) for unit in todo]
            wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:
                future.cancel()
            for future in futures:
                if not future.cancelled() and future.exception() is not None:
                    raise future.exception()
        return len(todo)

    def archive(self, objects, stamp):
        """libfastdl_kernels.a of the kernel objects, remade only when out of date."""
        library = self.compiler.library_filename("fastdl_kernels", output_dir=self.objects_dir)
        inputs = objects + [stamp]
        if not up_to_date(library, inputs):
            remove(library, library + ".inputs")  # ar adds to an existing archive
            self.compiler.create_static_lib(objects, "fastdl_kernels",
                                            output_dir=self.objects_dir)
            record_inputs(library, inputs)
        return library

    def link(self, ext, objects, library, stamp):
        """Links the module in the objects' directory when out of date, then copies it to
        where setuptools expects it (for an editable install it copies it on into the
        source tree). Returns whether it linked."""
        linked = os.path.join(self.objects_dir, self.get_ext_filename(ext.name))
        # Only fastdl._C links the kernels; the Cython modules reach them through its
        # capsule (src/kernel_api.h), so the process has one copy of their state.
        libraries = [library] if ext.name == KERNEL_MODULE else []
        inputs = objects + libraries + [stamp]
        relink = not up_to_date(linked, inputs)
        if relink:
            tell_user(f"fastdl: linking {ext.name}\n")
            remove(linked, linked + ".inputs")
            self.compiler.link_shared_object(
                objects + libraries, linked, libraries=self.get_libraries(ext),
                library_dirs=ext.library_dirs, runtime_library_dirs=ext.runtime_library_dirs,
                extra_postargs=ext.extra_link_args, export_symbols=self.get_export_symbols(ext),
                debug=self.debug, build_temp=self.objects_dir, target_lang="c++")
            record_inputs(linked, inputs)
        ext_path = self.get_ext_fullpath(ext.name)
        self.mkpath(os.path.dirname(ext_path))
        self.copy_file(linked, ext_path)
        return relink


def extensions():
    """fastdl._C (pybind11) and one fastdl._<stem> per src/_cy/<stem>.pyx (fastdl._im2col,
    fastdl._losses, ...). Nothing here imports pybind11 or Cython: BuildWithKernels adds
    them, where their absence falls back to pure Python."""
    def module(name, sources, flags=()):
        return Extension(name, sources, include_dirs=[KERNEL_INCLUDE, "src"], language="c++",
                         extra_compile_args=list(COMMON_FLAGS) + list(flags),
                         extra_link_args=["-pthread"] + (
                             ["-fsanitize=address,undefined"] if SANITIZE else []))

    # The Cython loops never read errno: without it, sqrt/exp in them can vectorise.
    return ([module(KERNEL_MODULE, sorted(glob.glob(os.path.join("src", "_C", "*.cc"))))]
            + [module(f"fastdl._{os.path.splitext(os.path.basename(pyx))[0]}", [pyx],
                      ["-fno-math-errno"])
               for pyx in sorted(glob.glob(os.path.join("src", "_cy", "*.pyx")))])


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildWithKernels})
