"""Memory a bench case's first fastdl call takes beyond its inputs, prepared plan and
output: the kernels' workspace (thread-local buffers, kept for the next calls) plus what a
plan builds lazily (Winograd-transformed weights). One fresh process per case; Linux only
(peak resident set reset through /proc/self/clear_refs).

    python scripts/workspace_memory.py [--threads N] [--suite kernels|models|all]

Prints a Markdown table, largest first. A model case's runner has already predicted once
(its plans are built): what shows there is what one more predict allocates.
"""
import argparse
import ctypes
import json
import os
import subprocess
import sys


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def measure(name, threads):
    """(workspace MiB, output MiB) of case `name`'s first call, in this process."""
    import numpy as np
    from fastdl.bench.cases import DEFAULT_SUITE, MODEL_SUITE, make_data
    from fastdl.bench.subject import Fastdl
    case = next(c for c in DEFAULT_SUITE + MODEL_SUITE if c.name == name)
    runner = Fastdl().prepare(case, make_data(case), threads)
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # freed memory back to the OS: the call's
    before = _status_kib("VmRSS")            # new pages then show in the peak
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS
    out = runner.call()
    peak = _status_kib("VmHWM")
    out_kib = sum(np.asarray(a).nbytes for a in (out if isinstance(out, (tuple, list))
                                                  else (out,))) / 1024
    return (peak - before - out_kib) / 1024, out_kib / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--suite", choices=["kernels", "models", "all"], default="kernels")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # the child's one case
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(args.case, args.threads)))
        return
    from fastdl.bench.cases import DEFAULT_SUITE, MODEL_SUITE
    cases = {"kernels": DEFAULT_SUITE, "models": MODEL_SUITE,
             "all": DEFAULT_SUITE + MODEL_SUITE}[args.suite]
    rows = []
    for case in cases:
        proc = subprocess.run([sys.executable, __file__, "--case", case.name,
                               "--threads", str(args.threads)], capture_output=True, text=True,
                              env=dict(os.environ))
        if proc.returncode != 0:
            rows.append((case.name, None, proc.stderr.strip().splitlines()[-1:]))
            continue
        rows.append((case.name, *json.loads(proc.stdout.strip().splitlines()[-1])))
    print(f"| case ({args.threads} thread{'s' * (args.threads > 1)}) | workspace MiB "
          "| output MiB |\n| --- | --- | --- |")
    for name, work, out in sorted(rows, key=lambda r: -(r[1] or 0)):
        print(f"| {name} | {work:.1f} | {out:.1f} |" if work is not None
              else f"| {name} | failed: {out} | |")


if __name__ == "__main__":
    main()
