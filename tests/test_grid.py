"""pipeline.experiments.grid: grid.yaml → explicit, deterministically named queued experiments, and the reports
it declares."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from conftest import GIT_IDENTITY

from pipeline.errors import PipelineError
from pipeline.experiments import grid
from pipeline.experiments.grid import GridError, cells, shard
from pipeline.io import write_json

DEFAULTS = {"lang": "swh", "aug": "none", "augment.size": 400, "distill.seed": 0, "synth.model": "gemma3-270m"}
DEFAULTS_YAML = {"lang": "swh", "aug": "none", "distill": {"seed": 0, "loss": "ot"}}


@pytest.fixture(autouse=True)
def _no_results(tmp_path, monkeypatch):
    """No collected results unless a test writes some (the repository's results/ are not these tests' cells)."""
    monkeypatch.setattr(grid, "RESULTS_DIR", tmp_path / "results")


def _record_commands(monkeypatch, stdout: str = "") -> list[list[str]]:
    """Every command pipeline.experiments.grid runs, recorded instead of run (each succeeds, printing ``stdout``)."""
    calls = []

    def fake_run(cmd, check, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, stdout=stdout)

    monkeypatch.setattr(grid.subprocess, "run", fake_run)
    return calls


def _exp_names(calls: list[list[str]]) -> list[str]:
    """The experiment names of the recorded ``dvc exp run`` commands."""
    return [c[c.index("-n") + 1] for c in calls if "exp" in c]


def _grid(tmp_path, text: str):
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    return path


def test_cells_are_the_product_with_every_grid_key_explicit(tmp_path):
    path = _grid(
        tmp_path,
        "g:\n  - {aug: none, distill.seed: [0, 1]}\n"
        "  - {aug: [backtranslation, synthetic], augment.size: [400, 1000], distill.seed: [0, 1]}\n",
    )
    got = cells("g", path, DEFAULTS)
    assert len(got) == 2 + 8
    names = [n for n, _ in got]
    assert names[:3] == ["g-none-400-0", "g-none-400-1", "g-backtranslation-400-0"]
    assert len(set(names)) == len(names)
    # the none cells get augment.size from params.yaml, explicitly; keys no block mentions are not set
    assert got[0][1] == {"aug": "none", "distill.seed": 0, "augment.size": 400}
    assert got[-1][1] == {"aug": "synthetic", "distill.seed": 1, "augment.size": 1000}
    assert cells("g", path, DEFAULTS) == got  # deterministic


def test_bad_grids_name_the_file_and_key(tmp_path):
    with pytest.raises(GridError, match="no such file"):
        cells("g", tmp_path / "missing.yaml", DEFAULTS)
    path = _grid(tmp_path, "g:\n  - {aug: none, distill.sed: [0, 1]}\n")
    with pytest.raises(GridError, match=r"unknown param\(s\) \['distill.sed'\]"):
        cells("g", path, DEFAULTS)
    with pytest.raises(GridError, match=r"no grid 'h'"):
        cells("h", path, DEFAULTS)
    with pytest.raises(GridError, match="same cell twice"):
        cells("g", _grid(tmp_path, "g:\n  - {aug: none}\n  - {aug: none}\n"), DEFAULTS)


def test_shards_partition_the_grid():
    items = list(range(10))
    parts = [shard(items, f"{i}/3") for i in range(3)]
    assert sorted(x for p in parts for x in p) == items and parts[1] == [1, 4, 7]
    with pytest.raises(GridError, match="I/N"):
        shard(items, "3/3")


def test_queue_passes_every_param_and_skips_finished_cells(tmp_path, monkeypatch):
    path = _grid(tmp_path, "g:\n  - {aug: [none, backtranslation], distill.seed: 1}\n")
    monkeypatch.setattr(grid, "committed_params", lambda: DEFAULTS)
    done = {"params": {"params.yaml": {"data": {"aug": "none", "distill": {"seed": 1}}}}}
    finished = {
        "rev": "base",
        "data": {"params": {"params.yaml": {"data": {}}}},
        "experiments": [{"revs": [{"rev": "e1", "name": "g-none", "data": done}]}],
    }
    monkeypatch.setattr(grid, "exp_show", lambda: [finished])
    calls = _record_commands(monkeypatch)
    grid.main(["queue", "g", "--file", str(path)])
    queued = [c for c in calls if "exp" in c]
    assert len(queued) == 1
    cmd = queued[0]
    assert cmd[cmd.index("-n") + 1] == "g-backtranslation"
    assert [cmd[i + 1] for i, a in enumerate(cmd) if a == "-S"] == ["aug=backtranslation", "distill.seed=1"]


def test_run_executes_cells_in_the_workspace_and_records_their_time(tmp_path, monkeypatch, capsys):
    path = _grid(tmp_path, "g:\n  - {aug: [none, backtranslation], distill.seed: [0, 1]}\n")
    monkeypatch.setattr(grid, "committed_params", lambda: DEFAULTS)
    monkeypatch.setattr(grid, "exp_show", lambda: [])
    monkeypatch.setattr(grid, "TIMES_FILE", tmp_path / "times.json")
    clock = iter([100.0, 112.34, 200.0, 207.5])  # each cell reads the clock before and after its dvc exp run
    starts = iter([1000.0, 3000.0])  # and the wall clock when it starts, for the stages that finished since
    monkeypatch.setattr(grid, "time", SimpleNamespace(perf_counter=lambda: next(clock), time=lambda: next(starts)))
    stages = tmp_path / "timings"
    monkeypatch.setattr(grid, "STAGE_TIMINGS", stages)
    for stage, seconds, finished in [
        ("train_mt", 300.0, 500),
        ("distill", 9.5, 2000),
        ("evaluate@in_domain", 1.5, 2000),
    ]:
        write_json(stages / f"{stage}.json", {"seconds": seconds, "peak_rss_gb": 1.0})
        os.utime(stages / f"{stage}.json", (finished, finished))
    calls = _record_commands(monkeypatch, stdout="abc123\n")
    grid.main(["run", "g", "--file", str(path), "--only", "aug=backtranslation"])
    runs = [c for c in calls if "exp" in c]
    assert _exp_names(calls) == ["g-backtranslation-0", "g-backtranslation-1"]
    restore = ["git", "checkout", "HEAD", "--", "params.yaml"]
    assert [calls[calls.index(c) + 1] for c in runs] == [restore, restore]  # the next cell starts from the commit
    assert all("--queue" not in c for c in runs)
    times = json.loads((tmp_path / "times.json").read_text())["tasks"]
    assert [r["name"] for r in times] == ["g-backtranslation-0", "g-backtranslation-1"]
    assert [r["seconds"] for r in times] == [12.3, 7.5]  # what the clock measured around each cell, to 0.1 s
    assert all(r["baseline"] == "abc123" and r["status"] == "run" for r in times)
    # The first cell's stages are those that finished after it started (train_mt was restored, not run); none of
    # these records is newer than the second cell's start.
    assert [r["stages"] for r in times] == [{"distill": 9.5, "evaluate@in_domain": 1.5}, {}]
    assert "[1/2] g-backtranslation-0: 12 s" in capsys.readouterr().out


def test_a_params_file_that_differs_from_the_commit_is_refused_and_restored(tmp_path, monkeypatch):
    """A value left in params.yaml (by hand, or by the last workspace cell of another grid) would reach every cell
    for the keys the grid does not set: queue and run refuse it; run puts the committed file back after each cell."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(DEFAULTS_YAML))
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "p"]):
        subprocess.run(cmd, check=True, env={**os.environ, **GIT_IDENTITY})
    grid.require_committed_params()
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({**DEFAULTS_YAML, "aug": "parallel"}))
    with pytest.raises(GridError, match="params.yaml differs from the commit"):
        grid.require_committed_params()
    with pytest.raises(GridError, match="params.yaml differs"):
        grid.main(["queue", "g", "--file", str(_grid(tmp_path, "g:\n  - {distill.seed: [0, 1]}\n"))])
    grid.restore_committed_params()
    grid.require_committed_params()
    assert yaml.safe_load((tmp_path / "params.yaml").read_text()) == DEFAULTS_YAML


def test_run_notes_bf16_cells_on_a_cpu_without_bf16_kernels(tmp_path, monkeypatch, capsys):
    path = _grid(tmp_path, "g:\n  - {train.precision: [bf16, fp32]}\n")
    monkeypatch.setattr(grid, "committed_params", lambda: DEFAULTS | {"train.precision": "fp32"})
    monkeypatch.setattr(grid, "exp_show", lambda: [])
    monkeypatch.setattr(grid, "bf16_note", lambda: "NOTE: no bf16 kernels")
    monkeypatch.setattr(grid.subprocess, "run", lambda cmd, check, **kw: subprocess.CompletedProcess(cmd, 0))
    grid.main(["queue", "g", "--file", str(path)])
    assert "NOTE: no bf16 kernels; 1 of these 2 cells use bf16" in capsys.readouterr().err


def test_cells_whose_params_results_already_hold_are_skipped(tmp_path, monkeypatch, capsys):
    """A result with every param equal, under any name (another grid's cell), counts as run; one param off does
    not; --ignore-results runs them all."""
    path = _grid(tmp_path, "g:\n  - {aug: none, distill.seed: [0, 1, 2]}\n")
    monkeypatch.setattr(grid, "committed_params", lambda: DEFAULTS)
    monkeypatch.setattr(grid, "exp_show", lambda: [])
    (tmp_path / "results").mkdir()
    for name, seed, model in (("other-0", 0, "gemma3-270m"), ("other-1", 1, "smollm2")):
        params = DEFAULTS | {"distill.seed": seed, "synth.model": model}
        record = {"name": name, "rev": "e1", "params": params, "metrics": {}, "per_query_ap": {}}
        (tmp_path / "results" / f"{name}.json").write_text(json.dumps(record))
    calls = _record_commands(monkeypatch)
    grid.main(["queue", "g", "--file", str(path)])
    assert _exp_names(calls) == ["g-1", "g-2"]
    assert "skip g-0: results/other-0.json has the same params" in capsys.readouterr().out
    calls.clear()
    grid.main(["queue", "g", "--file", str(path), "--ignore-results"])
    assert _exp_names(calls) == ["g-0", "g-1", "g-2"]


REPORTS_GRID = "g:\n  - {aug: none}\nh:\n  - {aug: synthetic}\n"


def test_reports_are_declared_beside_the_grids(tmp_path):
    """``reports:`` is no grid: each report is a list of selections, values as text (as --where gives them)."""
    path = _grid(
        tmp_path,
        REPORTS_GRID + "reports:\n  r:\n    - {grid: g|h, seed: 13}\n    - {lang: swh, augment.pool.synthetic: 1150}\n",
    )
    assert grid.reports(path) == {
        "r": ({"grid": "g|h", "seed": "13"}, {"lang": "swh", "augment.pool.synthetic": "1150"})
    }
    assert [n for n, _ in cells("g", path, DEFAULTS)] == ["g"]
    with pytest.raises(GridError, match=r"no grid 'reports' \(grids: \['g', 'h'\]\)"):
        cells("reports", path, DEFAULTS)


@pytest.mark.parametrize(
    ("reports", "error"),
    [
        ("reports: [a, b]\n", r"reports: expected a mapping of names to declarations"),
        ("reports:\n  r: {lang: swh}\n", r"reports.r: expected a non-empty list of selections"),
        ("reports:\n  r: [{lang: swh}, x]\n", r"reports.r\[1\]: expected a non-empty mapping"),
        ("reports:\n  r:\n    - {lang: [swh, tgl]}\n", r"reports.r\[0\].lang: expected a text or number value"),
        ("reports:\n  r:\n    - {aug: none, lang: null}\n", r"reports.r\[0\].lang: expected a text or number"),
        ("reports:\n  r:\n    - {grid: g|answer}\n", r"reports.r\[0\].grid: no grid \['answer'\]"),
        ("reports:\n  r/x:\n    - {lang: swh}\n", r"reports: 'r/x' is no report name"),
    ],
)
def test_bad_reports_name_the_file_and_key(tmp_path, reports, error):
    path = _grid(tmp_path, REPORTS_GRID + reports)
    with pytest.raises(GridError, match=rf"grid.yaml: {error}"):
        grid.reports(path)


def test_set_cell_params_writes_dotted_keys_and_keeps_comments(tmp_path):
    committed = Path("params.yaml").read_text(encoding="utf-8")
    params = tmp_path / "params.yaml"
    params.write_text(committed, encoding="utf-8")
    grid.set_cell_params({"lang": "nya", "augment.pool.synthetic": 3000, "synth.max_prompts": 8000}, params)
    written, pool = yaml.safe_load(params.read_text()), yaml.safe_load(committed)["augment"]["pool"]
    assert (written["lang"], written["synth"]["max_prompts"]) == ("nya", 8000)
    assert written["augment"]["pool"] == pool | {"synthetic": 3000}  # the other values of the group stay
    assert "# replicate seed" in params.read_text()
    with pytest.raises(PipelineError, match="max_promptz"):
        grid.set_cell_params({"synth.max_promptz": 1}, params)


def test_ahead_runs_one_cell_up_to_a_stage_and_records_its_time_with_the_resumed_runs(tmp_path, monkeypatch, capsys):
    path = _grid(tmp_path, "g:\n  - {lang: [swh, nya], aug: synthetic}\n")
    monkeypatch.setattr(grid, "committed_params", lambda: DEFAULTS)
    monkeypatch.setattr(grid, "TIMES_FILE", tmp_path / "times.json")
    monkeypatch.setattr(grid, "STAGE_TIMINGS", tmp_path / "timings/stages")
    monkeypatch.setattr(grid.paths, "TIMINGS_DIR", tmp_path / "timings")
    set_params = []
    monkeypatch.setattr(grid, "set_cell_params", lambda cell: set_params.append(cell))
    clock = iter([100.0, 160.0, 200.0, 201.0])
    monkeypatch.setattr(grid, "time", SimpleNamespace(perf_counter=lambda: next(clock), time=lambda: 1000.0))
    ran = {"synthesize": True}

    def fake_run(cmd, check, **kwargs):  # dvc repro: the stage finishes, its checkpoint held 40 s of earlier runs
        if "repro" in cmd and ran["synthesize"]:
            write_json(tmp_path / "timings/stages/synthesize.json", {"seconds": 55.0, "peak_rss_gb": 2.0})
            timings = {"generate_seconds": 90.0, "resumed_generate_seconds": 40.0}
            write_json(tmp_path / "timings/synthesize.json", timings)
        return subprocess.CompletedProcess(cmd, 0, stdout="abc123\n")

    monkeypatch.setattr(grid.subprocess, "run", fake_run)
    with pytest.raises(GridError, match="select one cell"):
        grid.main(["ahead", "g", "--file", str(path), "--stage", "synthesize"])
    grid.main(["ahead", "g", "--file", str(path), "--only", "lang=nya", "--stage", "synthesize"])
    assert set_params == [{"aug": "synthetic", "lang": "nya"}]
    (row,) = json.loads((tmp_path / "times.json").read_text())["tasks"]
    assert (row["name"], row["status"], row["seconds"]) == ("g-nya@synthesize", "ahead", 100.0)  # 60 s + 40 s
    assert row["stages"] == {"synthesize": 55.0} and "g-nya@synthesize: 100 s, recorded" in capsys.readouterr().out
    # Up to date (DVC restored it or nothing changed): nothing recorded.
    (tmp_path / "timings/stages/synthesize.json").unlink()
    ran["synthesize"] = False
    grid.main(["ahead", "g", "--file", str(path), "--only", "lang=nya", "--stage", "synthesize"])
    assert "did not run" in capsys.readouterr().out
    assert len(json.loads((tmp_path / "times.json").read_text())["tasks"]) == 1
