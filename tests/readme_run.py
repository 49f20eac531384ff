"""The README's run command on the tiny profile, run once per test session in the background.

The whole tiny DAG through the README's run command takes minutes, and several tests continue from it
(``conftest.readme_run``). So the first test worker to need it starts this file as a detached process
(:func:`start`) and goes on with the tests that do not need it; the tests that do wait for its result
(:func:`wait`). With ``pytest -n N`` (pytest-xdist) every worker shares the one run: the files live in the
session's base temp directory, which all workers share.

Run as ``python tests/readme_run.py DIR``: copies the working tree to ``DIR/project``, applies the tiny profile
over its ``params.yaml`` (as ``python -m pipeline.profile profiles/tiny.yaml`` does), runs the README's run
command there as ``bash -c`` in a plain shell (:func:`plain_shell_env`), and writes ``DIR/result.json`` last
(atomically), also when something failed.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from pipeline.io import read_metrics

ROOT = Path(__file__).resolve().parents[1]

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@localhost",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@localhost",
}

#: Large files that no step of a test edits in place (DVC removes an output before re-making it, and stages write
#: by rename): a test's copy of the README run links them instead of copying 2 GB.
LINKED = (".dvc/cache", "models")


def venv_env() -> dict[str, str]:
    """This environment with the venv's ``python`` and ``dvc`` first on PATH, for further dvc calls."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def plain_shell_env(home: Path) -> dict[str, str]:
    """A newcomer's shell: no virtual environment active, the venv's directory removed from PATH, no PYTHONPATH;
    only locale, temp dir, pip cache and the thread count (conftest: one per test process) kept.

    ``python`` on that PATH is whatever other interpreter the machine has (one without the pipeline's packages).
    """
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p and p != venv_bin)
    kept = ("LANG", "LC_ALL", "TERM", "TMPDIR", "PIP_CACHE_DIR", "OMP_NUM_THREADS")
    keep = {k: v for k, v in os.environ.items() if k in kept}
    return {**keep, "HOME": str(home), "PATH": path}


@dataclass
class ReadmeRun:
    project: Path  # the README run's project: read it, never change it (tests change a copy(); it is shared)
    env: dict[str, str]  # the venv on PATH, for further dvc calls
    result: subprocess.CompletedProcess  # the README's run command
    status: str  # `dvc status --json` right after it
    evals: dict[str, str]  # metrics/eval/<split>.json with its info file, right after it
    committed: dict[str, str]  # path -> text of dvc.lock, metrics/ and dvclive/ right after it (what git holds;
    # the cached outputs stay in the project's DVC cache)

    def copy(self, dest: Path) -> Path:
        """A copy of the project at ``dest`` for a test to change: big immutable files linked (:data:`LINKED`)."""

        def copy_or_link(src, dst):
            rel = Path(src).relative_to(self.project).as_posix()
            if any(rel == p or rel.startswith(p + "/") for p in LINKED):
                os.link(src, dst)
            else:
                shutil.copy2(src, dst)

        shutil.copytree(self.project, dest, symlinks=True, copy_function=copy_or_link)
        return dest


def start(shared: Path) -> None:
    """Start the README run in ``shared`` unless a worker of this session already has (a file lock decides)."""
    shared.mkdir(parents=True, exist_ok=True)
    with open(shared / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (shared / "pid").exists():
            return
        with open(shared / "log", "w") as log:
            proc = subprocess.Popen(
                [sys.executable, __file__, str(shared)],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # not stopped with the worker that happened to start it
            )
        (shared / "pid").write_text(str(proc.pid))


def wait(shared: Path, timeout: float = 3600) -> ReadmeRun:
    """The finished README run of this session (started here if no worker has started it yet)."""
    start(shared)
    result, pid = shared / "result.json", int((shared / "pid").read_text())
    deadline = time.monotonic() + timeout
    while not result.exists():
        if not _alive(pid) and not result.exists():
            raise AssertionError(f"the README run ended without a result:\n{_log_tail(shared)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"the README run took over {timeout:.0f} s:\n{_log_tail(shared)}")
        time.sleep(2)
    data = json.loads(result.read_text())
    assert "error" not in data, f"the README run's set-up failed:\n{data.get('error')}"
    return ReadmeRun(
        project=Path(data["project"]),
        env=venv_env(),
        result=subprocess.CompletedProcess(data["command"], data["returncode"], data["stdout"], data["stderr"]),
        status=data["status"],
        evals=data["evals"],
        committed=data["committed"],
    )


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie, ended but not yet reaped by its starter, does not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "zombie" not in status.lower()


def _log_tail(shared: Path) -> str:
    log = shared / "log"
    return log.read_text()[-3000:] if log.exists() else ""


def _run(shared: Path) -> dict:
    from pipeline.io import copy_working_tree
    from pipeline.profile import apply_profile

    proj = shared / "project"
    copy_working_tree(ROOT, proj)
    apply_profile(proj / "profiles/tiny.yaml", proj / "params.yaml")  # as `python -m pipeline.profile` does
    # The clone's .venv is a link to this venv, so ./setup.sh finds its stamp and installs nothing (in a venv
    # it did not set up, it only checks that everything is installed); the udhr stage fetches from the download
    # cache.
    (proj / ".venv").symlink_to(Path(sys.prefix))
    plain = {**plain_shell_env(Path(os.environ.get("HOME", proj))), **GIT_IDENTITY}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "clone"]):
        subprocess.run(cmd, cwd=proj, check=True, env=plain)
    command = subprocess.run(
        [str(ROOT / ".ci/readme-command"), "run"], check=True, capture_output=True, text=True
    ).stdout.strip()
    result = subprocess.run(["bash", "-c", command], cwd=proj, env=plain, capture_output=True, text=True)
    # What the README tests check, recorded now, before any test changes a copy of this project.
    status = subprocess.run(["dvc", "status", "--json"], cwd=proj, env=venv_env(), capture_output=True, text=True)
    return {
        "project": str(proj),
        "command": command,
        "returncode": result.returncode,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "status": status.stdout if status.returncode == 0 else status.stderr,
        "evals": {  # each split's metrics as the stage wrote them (numbers and info file merged)
            p.stem: json.dumps(read_metrics(p))
            for p in (proj / "metrics/eval").glob("*.json")
            if not p.name.endswith(".info.json")
        },
        # The DAG's state as git would hold it: dvc.lock and the uncached outputs (metrics, training curves).
        "committed": {
            str(p.relative_to(proj)): p.read_text()
            for p in [proj / "dvc.lock", *(proj / "metrics").rglob("*.json"), *(proj / "dvclive").rglob("*")]
            if p.is_file()
        },
    }


if __name__ == "__main__":
    shared = Path(sys.argv[1])
    try:
        data = _run(shared)
    except Exception:  # recorded for the waiting tests, which fail with it
        data = {"error": traceback.format_exc()}
    tmp = shared / "result.json.tmp"
    tmp.write_text(json.dumps(data))
    tmp.rename(shared / "result.json")
