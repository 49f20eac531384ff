"""Shared fixtures: tests run from the repository root with the git-ignored UDHR files present."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.chdir(ROOT)  # stages and default paths are relative to the repository root

if not (ROOT / "data/external/udhr/package/declaration/eng.html").exists():
    raise RuntimeError("data/external/udhr is missing: run ./setup.sh first")

#: What a clean clone contains that the DAG needs (tracked files and the set-up's UDHR download).
PROJECT_FILES = ["pipeline", "dvc.yaml", "params.yaml", "profiles", ".dvc/config", ".dvcignore", ".gitignore"]


@pytest.fixture
def tiny_project(tmp_path):
    """A throw-away copy of the project with the tiny profile as params.yaml, as a git + DVC repo."""
    proj = tmp_path / "project"
    proj.mkdir()
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, proj / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (proj / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, proj / name)
    shutil.copy(ROOT / "profiles/tiny.yaml", proj / "params.yaml")
    (proj / "data/external").mkdir(parents=True)
    shutil.copytree(ROOT / "data/external/udhr", proj / "data/external/udhr")
    # The venv's `dvc` and `python` first on PATH, even when pytest runs as `.venv/bin/python -m pytest`.
    env = {**os.environ, "PYTHONPATH": str(proj), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for cmd in (
        ["git", "init", "-q"],
        ["git", "config", "user.email", "test@localhost"],
        ["git", "config", "user.name", "test"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "tiny project"],
    ):
        subprocess.run(cmd, cwd=proj, check=True, env=env)
    return proj, env
