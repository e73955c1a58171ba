"""Run a Python script under callgrind and read how many instructions it executed."""

from __future__ import annotations

import os
import re
import subprocess
import sys


def instructions(script: str, *args: str) -> int:
    """Instructions `python script args...` executes (PYTHONHASHSEED fixed, so repeatable)."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        script,
        *args,
    ]
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    match = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode or match is None:
        lines = done.stderr.splitlines()
        said = [ln for ln in lines if ln.startswith(("icount:", "Traceback")) or "Error" in ln]
        raise RuntimeError(f"rc={done.returncode} " + (" | ".join(said[-4:]) or done.stderr[-400:]))
    return int(match.group(1))
