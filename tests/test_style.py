"""ruff (configured in pyproject.toml) passes: lint rules E, F, W, I, B, UP, SIM and the formatter."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]], ids=["check", "format"])
def test_ruff(args):
    res = subprocess.run([sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, f"ruff {' '.join(args)}:\n{res.stdout}{res.stderr}"
