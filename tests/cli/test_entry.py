"""The console script's start: Ctrl-C while PyTorch loads is one line; ``import rnnkit`` registers the operators
that .pt2 files need."""
from __future__ import annotations

import subprocess
import sys

INTERRUPT_TORCH_IMPORT = """
import builtins, sys
sys.argv[0] = "/somewhere/bin/rnnkit"                   # as the console script
real_import = builtins.__import__
def interrupted(name, *args, **kwargs):
    if name.split(".")[0] == "torch":              # Ctrl-C arrives while PyTorch loads
        raise KeyboardInterrupt
    return real_import(name, *args, **kwargs)
builtins.__import__ = interrupted
from rnnkit.cli.entry import main
sys.exit(main())
"""


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_ctrl_c_while_torch_loads_is_one_line_and_exit_130():
    done = _python(INTERRUPT_TORCH_IMPORT, "train", "lm", "--help")
    assert done.returncode == 130
    assert done.stderr.strip() == "rnnkit: interrupted while starting; nothing was done"
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_python_dash_m_rnnkit_counts_as_the_command():
    """torchrun starts `python -u -m rnnkit ...` (QA: a traceback there)."""
    code = INTERRUPT_TORCH_IMPORT.replace('sys.argv[0] = "/somewhere/bin/rnnkit"',
                                          'sys.argv[0] = "-m"; sys.orig_argv = ["python", "-u", "-m", "rnnkit"]')
    done = _python(code, "sample", "--help")
    assert done.returncode == 130
    assert done.stderr.strip() == "rnnkit: interrupted while starting; nothing was done"


def test_a_program_importing_rnnkit_gets_its_interrupt_back():
    done = _python(INTERRUPT_TORCH_IMPORT.replace('sys.argv[0] = "/somewhere/bin/rnnkit"', "pass"))
    assert done.returncode == -2 and done.stderr.rstrip().endswith("KeyboardInterrupt")   # as Python ends on it


def test_importing_rnnkit_registers_the_operators_pt2_files_name():
    done = _python("import torch, rnnkit; print(torch.ops.rnnkit.recurrence.default, "
                   "torch.ops.rnnkit.linear_scan.default)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["rnnkit.recurrence.default", "rnnkit.linear_scan.default"]


def test_python_dash_m_runs_the_command():
    done = subprocess.run([sys.executable, "-m", "rnnkit", "sample", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: rnnkit sample")
