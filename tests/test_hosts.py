"""A grid shared by two hosts through DVC's own sharing, on the tiny profile (docs/usage.md, "Past one machine").

The origin commits the tiny DAG's `dvc.lock` and metrics (the README run's, `conftest.readme_run`) and pushes
its outputs to a local-directory DVC remote, as the project's main branch does. Two clones of a bare git remote act as
hosts: each pulls those outputs, queues its shard of the grid (`pipeline.experiments.grid queue --shard I/2`) and
runs it with `dvc queue start`, so a cell re-runs only what it changes (bitext → distill → evaluate → report); DVC's
auto-push (`DVC_EXP_AUTO_PUSH`, `DVC_EXP_GIT_REMOTE`) sends each finished experiment to the git remote and its
outputs to the DVC remote. A third clone collects: `dvc exp pull`, `pipeline.experiments.results`, and an experiment's
outputs come from the DVC remote. Nothing is copied in with `--copy-paths`: a queued run's workspace holds only
what git and DVC track.
"""

import json
import os
import re
import subprocess
import sys
import time

import pytest

from pipeline.io import read_metrics

GRID = "hosts:\n  - aug: none\n    distill.seed: [1, 2]\n"


def _run(cwd, env, *cmd):
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
    return res.stdout


def _run_queues(hosts, env, timeout=900):
    """`dvc queue start` on every host at once (they share nothing but the remotes) and wait until no host has
    anything queued or running; returns each host's last `dvc queue status`."""
    for host in hosts:
        worker = subprocess.Popen(
            ["dvc", "queue", "start", "-j", "1"],
            cwd=host,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        worker.wait(timeout=60)
    deadline, statuses = time.monotonic() + timeout, {}
    while len(statuses) < len(hosts):
        for host in hosts:
            status = _run(host, env, "dvc", "queue", "status")
            if host not in statuses and not any(w in status for w in ("Queued", "Running")):
                statuses[host] = status
                _run(host, env, "dvc", "queue", "stop")
        assert time.monotonic() < deadline, statuses
        time.sleep(3)
    return statuses


@pytest.mark.long
def test_two_hosts_share_a_grid_through_git_and_dvc_remotes(readme_run, tiny_project, tmp_path):
    proj, env = tiny_project
    env = {k: v for k, v in env.items() if k != "PYTHONPATH"}  # each copy runs its own code (python -m from its root)
    git_remote, dvc_remote = tmp_path / "grid.git", tmp_path / "dvc-remote"
    (proj / "grid.yaml").write_text(GRID)
    for path, text in readme_run.committed.items():  # the tiny DAG, run once on the origin: lock and metrics
        (proj / path).parent.mkdir(parents=True, exist_ok=True)
        (proj / path).write_text(text)
    _run(proj, env, "dvc", "remote", "add", "-d", "shared", str(dvc_remote))
    _run(proj, env, "git", "add", "-A")
    _run(proj, env, "git", "commit", "-qm", "grid, remote and the tiny DAG's lock")
    _run(tmp_path, env, "git", "clone", "-q", "--bare", str(proj), str(git_remote))
    # The origin's outputs (in the README run's cache) go to the shared DVC remote.
    _run(proj, env, "dvc", "cache", "dir", "--local", str(readme_run.project / ".dvc/cache"))
    _run(proj, env, "dvc", "push", "-q")

    host_env = {**env, "DVC_EXP_AUTO_PUSH": "true", "DVC_EXP_GIT_REMOTE": str(git_remote)}
    hosts = [tmp_path / "host-a", tmp_path / "host-b"]
    for i, host in enumerate(hosts):
        _run(tmp_path, env, "git", "clone", "-q", str(git_remote), str(host))
        _run(host, env, "dvc", "pull", "-q")  # the lock's outputs: a cell re-runs only the stages it changes
        out = _run(host, env, sys.executable, "-m", "pipeline.experiments.grid", "queue", "hosts", "--shard", f"{i}/2")
        assert f"queued hosts-{i + 1} (1)" in out and "1 queued, 0 skipped" in out
    statuses = _run_queues(hosts, host_env)
    for i, host in enumerate(hosts):
        status = statuses[host]
        assert f"hosts-{i + 1}" in status and "Success" in status and "Failed" not in status, status
        ran = set(re.findall(r"Running stage '([^']+)'", _run(host, env, "dvc", "queue", "logs", f"hosts-{i + 1}")))
        assert "distill" in ran and not ran & {"udhr", "prepare", "train_mt", "synthesize", "teacher"}, ran

    collector = tmp_path / "collector"
    _run(tmp_path, env, "git", "clone", "-q", str(git_remote), str(collector))
    _run(collector, env, "dvc", "exp", "pull", "origin")
    _run(collector, env, sys.executable, "-m", "pipeline.experiments.results")
    results = {p.stem: json.loads(p.read_text()) for p in (collector / "results").glob("*.json")}
    assert sorted(results) == ["hosts-1", "hosts-2"]
    head = _run(collector, env, "git", "rev-parse", "HEAD").strip()
    for i in (1, 2):
        r = results[f"hosts-{i}"]
        assert _run(collector, env, "git", "rev-parse", f"{r['rev']}^").strip() == head  # an experiment of HEAD
        assert r["params"]["distill.seed"] == i and r["params"]["aug"] == "none"
        assert r["per_query_ap"]["in_domain"] and "student" in r["metrics"]["metrics/eval/in_domain.json"]
    # The outputs came through the DVC remote: applying an experiment checks out its student from the cache.
    _run(collector, env, "dvc", "exp", "apply", "hosts-2")
    applied = read_metrics(collector / "metrics/eval/in_domain.json")["student"]["title"]
    collected = results["hosts-2"]["metrics"]["metrics/eval/in_domain.json"]["student"]["title"]
    assert {k: applied[k] for k in ("AP", "nDCG@10", "R@100")} == {k: collected[k] for k in ("AP", "nDCG@10", "R@100")}
    assert (collector / "models/student").is_dir() and (collector / "data/udhr/package/declaration").is_dir()
    assert os.listdir(dvc_remote)
