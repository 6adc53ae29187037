"""Runs a script in a fresh interpreter and reads what it reports: for what a test must not
do in its own process (environment read at import, signals, fork, memory growth).

The script prints one line `RESULT <json>` (the `report(**fields)` of REPORT defines it).
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

REPORT = """
import json as _json

def report(**fields):
    print("RESULT " + _json.dumps(fields), flush=True)
"""


def run_script(code, env=None, drop=(), timeout=180):
    """Runs REPORT + dedented `code` with the environment minus the variables in `drop`,
    plus `env`, fastdl from this checkout; returns (completed process, RESULT dict or None)."""
    full_env = {k: v for k, v in os.environ.items() if k not in drop}
    full_env.update(env or {})
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                           full_env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-c", REPORT + textwrap.dedent(code)],
                          env=full_env, capture_output=True, text=True, timeout=timeout,
                          cwd=str(REPO_ROOT))
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
    return proc, result


def expect_ok(proc, result):
    """The RESULT of a script that must exit 0 (else the failure with its output)."""
    assert proc.returncode == 0 and result is not None, (
        f"exit {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}")
    return result
