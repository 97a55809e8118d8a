"""The console script's start: Ctrl-C while PyTorch loads is one line, and the package imports lazily."""
from __future__ import annotations

import subprocess
import sys

import pytest

import rnnkit

INTERRUPT_TORCH_IMPORT = """
import builtins, sys
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


def test_importing_the_package_does_not_import_torch():
    done = _python("import sys, rnnkit; print('torch' in sys.modules, rnnkit.__version__)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", rnnkit.__version__]


def test_public_names_and_subpackages_load_on_first_use():
    from rnnkit.layers import LSTM
    from rnnkit import engine
    assert rnnkit.LSTM is LSTM and rnnkit.engine is engine
    assert set(rnnkit.__all__) <= set(dir(rnnkit))
    for name in rnnkit.__all__:
        assert getattr(rnnkit, name) is not None
    with pytest.raises(AttributeError, match="module 'rnnkit' has no attribute 'LSTMcell'"):
        rnnkit.LSTMcell


def test_python_dash_m_runs_the_command():
    done = subprocess.run([sys.executable, "-m", "rnnkit", "sample", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: rnnkit sample")
