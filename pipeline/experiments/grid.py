"""The experiment grid: ``grid.yaml`` turned into queued DVC experiments with every grid param given explicitly.

``grid.yaml`` names grids; a grid is a list of blocks, and a block maps dotted param keys to a value or a list of
values (the block's cells are the cartesian product). Every key that any block of the grid mentions is given to
every cell, with ``params.yaml``'s committed value (``git show HEAD:params.yaml``) where a block does not set it.
A key the grid does not mention comes from the workspace's ``params.yaml``, so ``queue`` and ``run`` refuse a
workspace whose ``params.yaml`` differs from the commit, and ``run`` restores the committed file after each cell
(``dvc exp run`` leaves the cell's values there): no cell inherits a value from the workspace or from another
cell, or another grid. Beside the grids, ``grid.yaml``'s top-level ``reports:`` declares the reports that
``pipeline.experiments.compare`` writes from their results (:func:`reports`), and ``designs:`` the statistical
designs declared before a grid ran (:mod:`pipeline.experiments.designs`). ::

    python -m pipeline.experiments.grid list NAME [--shard I/N] [--only key=value]  # the cells, their params
    python -m pipeline.experiments.grid queue NAME [--shard I/N]  # dvc exp run --queue -n <name> -S ... per cell
    dvc queue start -j 1 && dvc queue status                      # run them (one worker: stages use both cores)
    python -m pipeline.experiments.grid run NAME [--shard I/N]    # or: one dvc exp run after another, here
    python -m pipeline.experiments.results                        # collect finished experiments into results/
    python -m pipeline.experiments.grid ahead NAME --only ... --stage STAGE  # one cell's DAG up to STAGE, ahead

``queue`` runs each cell in a temporary copy, which restores unchanged stages only from the committed
``dvc.lock`` (DVC 3.67's queue did not use the run cache with ``-S`` overrides: docs/usage.md); ``run`` runs
them in this workspace with ``dvc exp run``, which also restores stages that DVC's run cache holds (not
``distill``: DVC keeps no stage with a plain ``cache: false`` output, such as its DVCLive directory, so each cell
trains its student; docs/usage.md), and prints and records each cell's wall time and the seconds of the stages
that ran in it (``benchmarks/results/grid_times.json``). ``run`` leaves the workspace's outputs and
``dvc.lock`` at the last cell: restore them with ``git checkout dvc.lock && dvc checkout``.

A cell's name is the grid's name and its values of the keys that vary in the grid (sorted by key), so it is the
same on every host and in every session (extending an axis that had one value renames the cells). A cell is
skipped when its experiment is queued, running or finished on this commit with the same params, or when
``results/`` already holds an experiment with exactly its params (every param, under any name: e.g. the
``answer`` grid's ``aug: none`` cells are ``loss_scoring``'s ``ot`` × ``dense`` cells). A collected result counts
whatever commit it ran on: after changing what a stage computes, pass ``--ignore-results``. ``--shard I/N``
keeps the cells whose index is I modulo N (one shard per host or per cluster job: docs/usage.md).

``ahead`` runs one cell's DAG up to a stage before the cell itself (``dvc repro STAGE`` with the cell's params in
``params.yaml``, restored afterwards; ``dvc.lock`` is left as the run wrote it): a stage that outlasts a session,
such as an LLM synthesis that keeps few of its lines, continues from its checkpoint when run again
(``data/partial/``), and the cell, run next in this workspace, finds the stage and its upstream up to date. Its time
is not in the cell's, so ``ahead`` records it in ``grid_times.json`` as the row ``<cell>@<stage>`` (status
``ahead``): the wall time of the run that finished the stage plus the time of the earlier, interrupted runs that
the stage reports as ``resumed_*_seconds`` (``timings/<stage>.json``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import yaml

from pipeline.cli import run_command
from pipeline.config import paths
from pipeline.config.hardware import bf16_note, cpu_model, uses_bf16
from pipeline.errors import PipelineError
from pipeline.experiments.results import GRID_TIMES, RESULTS_DIR, exp_show, flatten, parse_exp_show
from pipeline.experiments.results import load as load_results
from pipeline.io import read_json, read_metrics, write_json
from pipeline.profile import apply_profile

GRID_FILE = Path("grid.yaml")
#: The top-level keys of ``grid.yaml`` that declare the reports (:func:`reports`) and the statistical designs
#: (:func:`designs`); every other key is a grid.
REPORTS_KEY = "reports"
DESIGNS_KEY = "designs"
CONTRASTS_KEY = "contrasts"


class GridError(PipelineError):
    pass


def _values(value) -> list:
    return list(value) if isinstance(value, list) else [value]


def _format(value) -> str:
    """A value as ``dvc exp run -S`` parses it (YAML)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _read(grid_file: Path) -> tuple[dict, dict]:
    """The grids of ``grid_file`` and its ``reports:`` mapping (empty where it has none)."""
    grids, declared, _, _ = read_all(grid_file)
    return grids, declared


def read_all(grid_file: Path) -> tuple[dict, dict, dict, dict]:
    """The grids of ``grid_file``, its ``reports:``, ``designs:`` and ``contrasts:`` mappings (empty where it has
    none)."""
    if not grid_file.exists():
        raise GridError(f"{grid_file}: no such file")
    data = yaml.safe_load(grid_file.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise GridError(f"{grid_file}: expected a mapping of grid names to grids (and {REPORTS_KEY}:)")
    out = []
    for key in (REPORTS_KEY, DESIGNS_KEY, CONTRASTS_KEY):
        declared = data.pop(key, None) or {}
        if not isinstance(declared, dict):
            raise GridError(f"{grid_file}: {key}: expected a mapping of names to declarations")
        out.append(declared)
    return data, out[0], out[1], out[2]


def contrast_families(grid_file: Path = GRID_FILE) -> dict:
    """``grid.yaml``'s ``contrasts:`` as written (family -> its entries); :mod:`pipeline.experiments.contrasts`
    checks and parses them."""
    return read_all(grid_file)[3]


def reports(grid_file: Path = GRID_FILE) -> dict[str, tuple[dict[str, str], ...]]:
    """The declared reports (``grid.yaml``'s ``reports:``): name -> its selections over ``results/``, each a
    mapping of a dotted param key (or ``grid``: the grid that named the experiment) to a value, ``a|b`` for either;
    an experiment matching any selection enters the report. Values as text, as ``--where`` gives them."""
    grids, declared = _read(grid_file)
    out = {}
    for name, selections in declared.items():
        where = f"{grid_file}: {REPORTS_KEY}.{name}"
        if not isinstance(name, str) or not re.fullmatch(r"\w+", name):
            raise GridError(f"{grid_file}: {REPORTS_KEY}: {name!r} is no report name (letters, digits, _)")
        if not isinstance(selections, list) or not selections:
            raise GridError(f"{where}: expected a non-empty list of selections (key: value mappings)")
        parsed = []
        for i, selection in enumerate(selections):
            if not isinstance(selection, dict) or not selection:
                raise GridError(f"{where}[{i}]: expected a non-empty mapping of param key: value")
            for key, value in selection.items():
                if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, str | int | float):
                    raise GridError(
                        f"{where}[{i}].{key}: expected a text or number value (a|b for either), got {value!r}"
                    )
            unknown = [g for g in str(selection.get("grid", "")).split("|") if g and g not in grids]
            if unknown:
                raise GridError(f"{where}[{i}].grid: no grid {unknown} in {grid_file} (grids: {sorted(grids)})")
            parsed.append({key: str(value) for key, value in selection.items()})
        out[name] = tuple(parsed)
    return out


def selected_grids(selections: Iterable[dict]) -> list[str]:
    """The grids a report's selections name (their ``grid:`` values, ``a|b`` for either), each once, in order."""
    return list(dict.fromkeys(g for sel in selections for g in str(sel.get("grid", "")).split("|") if g))


def cells(name: str, grid_file: Path = GRID_FILE, defaults: dict | None = None) -> list[tuple[str, dict]]:
    """(experiment name, {dotted key: value}) for every cell of grid ``name``, in file order."""
    grids, _ = _read(grid_file)
    if name not in grids:
        raise GridError(f"{grid_file}: no grid {name!r} (grids: {sorted(grids)})")
    blocks = grids[name]
    if not isinstance(blocks, list) or not all(isinstance(b, dict) and b for b in blocks):
        raise GridError(f"{grid_file}: grid {name!r} must be a list of non-empty key: values blocks")
    defaults = committed_params() if defaults is None else defaults
    keys = list(dict.fromkeys(k for block in blocks for k in block))
    unknown = [k for k in keys if k not in defaults]
    if unknown:
        raise GridError(f"{grid_file}: grid {name!r} sets unknown param(s) {unknown} (not in params.yaml)")
    grid = [
        {k: defaults[k] for k in keys} | dict(zip(block, combo, strict=True))
        for block in blocks
        for combo in itertools.product(*(_values(v) for v in block.values()))
    ]
    varying = sorted(k for k in keys if len({repr(c[k]) for c in grid}) > 1)
    out = []
    for cell in grid:
        label = "-".join(re.sub(r"[^A-Za-z0-9.]+", "_", _format(cell[k])) for k in varying)
        out.append((f"{name}-{label}" if label else name, cell))
    names = [n for n, _ in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise GridError(f"{grid_file}: grid {name!r} has the same cell twice: {dupes}")
    return out


def committed_params() -> dict:
    text = subprocess.run(["git", "show", "HEAD:params.yaml"], check=True, capture_output=True, text=True).stdout
    return flatten(yaml.safe_load(text))


def shard(items: list, spec: str | None) -> list:
    if not spec:
        return items
    match = re.fullmatch(r"(\d+)/(\d+)", spec)
    if not match or not 0 <= int(match[1]) < int(match[2]):
        raise GridError(f"--shard {spec!r}: expected I/N with 0 <= I < N")
    i, n = int(match[1]), int(match[2])
    return [x for k, x in enumerate(items) if k % n == i]


def existing(rows: list[dict]) -> dict[str, dict]:
    """Experiment name -> its flattened params, for the experiments of ``dvc exp show --json``, queued and
    running ones included (queueing them again would run them twice)."""
    return {e.name: e.params for e in parse_exp_show(rows, commits=False, unfinished=True)}


def collected(directory: Path | None = None) -> dict[str, str]:
    """Every param set of ``results/`` (:func:`params_key`) -> the name of the first result that has it (none
    without results)."""
    directory = Path(RESULTS_DIR if directory is None else directory)
    exps = load_results(directory) if any(directory.glob("*.json")) else []
    out: dict[str, str] = {}
    for e in exps:
        out.setdefault(params_key(e.params), e.name)
    return out


def params_key(params: dict) -> str:
    """A flattened param set as text, for equality across JSON and YAML sources (every key, sorted)."""
    return json.dumps(params, sort_keys=True)


def queue_command(name: str, cell: dict, *, queue: bool = True) -> list[str]:
    sets = [arg for k, v in cell.items() for arg in ("-S", f"{k}={_format(v)}")]
    # Nothing to copy in: a queued run's workspace holds what git and DVC track, and that is all the DAG reads
    # (the udhr stage fetches the UDHR; external collections are ``dvc add``-ed: data/external/README.md).
    return [sys.executable, "-m", "dvc", "exp", "run", *(["--queue"] if queue else []), "-n", name, *sets]


TIMES_FILE = GRID_TIMES
PARAMS_FILE = str(paths.PARAMS_FILE)


#: Where each stage records its wall time when it finishes (``pipeline.stages.run_stage``).
STAGE_TIMINGS = paths.TIMINGS_DIR / "stages"


def finished_stages(since: float, directory: Path | None = None) -> dict[str, dict]:
    """The stages that finished at or after ``since`` (a ``time.time()``): stage name -> the record it left in
    ``directory`` (:data:`STAGE_TIMINGS` of this workspace by default): ``{"seconds", "peak_rss_gb"}``. A stage
    DVC restored or skipped left none."""
    directory = Path(STAGE_TIMINGS if directory is None else directory)
    return {p.stem: read_json(p) for p in sorted(directory.glob("*.json")) if p.stat().st_mtime >= since}


def record_times(rows: list[dict], path: Path | None = None) -> None:
    """Merge rows ``{name, baseline, started, seconds, status[, stages]}`` into ``path`` (keyed by name and
    baseline); ``stages`` is where a cell's time went (:func:`finished_stages`' seconds)."""
    path = path or TIMES_FILE
    old = json.loads(path.read_text(encoding="utf-8"))["tasks"] if path.exists() else []
    merged = {(r["name"], r["baseline"]): r for r in [*old, *rows]}
    write_json(path, {"tasks": sorted(merged.values(), key=lambda r: r["started"])})


def require_committed_params() -> None:
    """Refuse a ``params.yaml`` that differs from HEAD's: its values would reach every cell for the keys the grid
    does not set (seen: a ``marginals`` cell run after ``loss_scoring`` cells trained with their loss)."""
    res = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", PARAMS_FILE], check=False)
    if res.returncode == 1:
        raise GridError(
            f"{PARAMS_FILE} differs from the commit: every cell would inherit those values for the keys the grid does "
            f"not set; commit it, or restore it with `git checkout {PARAMS_FILE}`"
        )
    if res.returncode:
        raise GridError(f"`git diff HEAD -- {PARAMS_FILE}` failed (exit {res.returncode}): not a git repository?")


def restore_committed_params() -> None:
    """Put back HEAD's ``params.yaml`` after a workspace cell (its outputs stay; DVC compares them to the next)."""
    subprocess.run(["git", "checkout", "HEAD", "--", PARAMS_FILE], check=True)


def head() -> str:
    """The commit checked out: the baseline of the experiments run here."""
    return subprocess.run(["git", "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()


def set_cell_params(cell: dict, params_file: Path | str = PARAMS_FILE) -> None:
    """Write a cell's dotted params into ``params_file`` (comments kept, validated: ``pipeline.profile``)."""
    profile: dict = {}
    for dotted, value in cell.items():
        *groups, key = dotted.split(".")
        node = profile
        for group in groups:
            node = node.setdefault(group, {})
        node[key] = value
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cell.yaml"
        path.write_text(yaml.safe_dump(profile, sort_keys=False), encoding="utf-8")
        apply_profile(path, params_file)


def resumed_seconds(stage: str) -> float:
    """The earlier runs' time that ``stage``'s last run reported as ``resumed_*_seconds`` among its metrics'
    timings (``timings/<stage>.json``: ``pipeline.io.write_metrics``); 0 without any."""
    path = paths.TIMINGS_DIR / f"{stage}.json"
    data = read_json(path) if path.exists() else {}
    return sum(v for k, v in data.items() if k.startswith("resumed_") and k.endswith("_seconds"))


def run_ahead(name: str, cell: dict, stage: str, baseline: str) -> dict | None:
    """Run ``cell``'s DAG up to ``stage`` here (``dvc repro stage``), restore ``params.yaml``, and record the
    stage's time as the row ``<name>@<stage>`` (module docstring); ``None`` where the stage did not run (DVC found
    it up to date or restored it)."""
    started, since, t0 = datetime.now(UTC).isoformat(timespec="seconds"), time.time(), time.perf_counter()
    set_cell_params(cell)
    try:
        subprocess.run([sys.executable, "-m", "dvc", "repro", stage], check=True)
    finally:
        restore_committed_params()
    seconds = time.perf_counter() - t0
    stages = {s: r["seconds"] for s, r in finished_stages(since).items()}
    if stage not in stages:
        return None
    row = {"name": f"{name}@{stage}", "baseline": baseline, "started": started, "status": "ahead",
           "seconds": round(seconds + resumed_seconds(stage), 1), "stages": stages}  # fmt: skip
    record_times([row])
    return row


def only(items: list[tuple[str, dict]], specs: list[str]) -> list[tuple[str, dict]]:
    """The cells whose params match every ``key=value`` of ``specs``."""
    want = dict(s.split("=", 1) for s in specs)
    return [(n, c) for n, c in items if all(_format(c.get(k)) == v for k, v in want.items())]


def main(argv: Iterable[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["list", "queue", "run", "ahead"])
    ap.add_argument("grid", help="a grid name of grid.yaml")
    ap.add_argument("--shard", help="I/N: only cells whose index is I modulo N")
    ap.add_argument("--only", action="append", default=[], help="key=value: only cells with that value")
    ap.add_argument("--file", type=Path, default=GRID_FILE)
    ap.add_argument("--ignore-results", action="store_true", help="run cells whose params results/ already holds")
    ap.add_argument("--stage", help="ahead: the stage to run the one selected cell's DAG up to")
    args = ap.parse_args(list(argv) if argv is not None else None)
    defaults = committed_params()
    todo = only(shard(cells(args.grid, args.file, defaults), args.shard), args.only)
    if args.action == "list":
        for name, cell in todo:
            print(name, json.dumps(cell))
        print(f"{len(todo)} cells")
        return
    require_committed_params()
    bf16 = sum(uses_bf16(defaults | cell) for _, cell in todo)
    if bf16 and (note := bf16_note()):
        print(f"{note}; {bf16} of these {len(todo)} cells use bf16", file=sys.stderr)
    if args.action == "ahead":
        if not args.stage or len(todo) != 1:
            raise GridError(f"ahead: give --stage and --only values that select one cell ({len(todo)} selected)")
        (name, cell), stage = todo[0], args.stage
        row = run_ahead(name, cell, stage, head())
        print(f"{name}@{stage}: " + (f"{row['seconds']:.0f} s, recorded" if row else "did not run (up to date)"))
        return
    done = existing(exp_show())
    stored = {} if args.ignore_results else collected()
    new = []
    for name, cell in todo:
        if name in done and all(done[name].get(k) == v for k, v in cell.items()):
            print(f"skip {name}: queued, running or finished on this commit")
        elif found := stored.get(params_key(defaults | cell)):
            print(f"skip {name}: results/{found}.json has the same params (--ignore-results runs it)")
        else:
            new.append((name, cell))
    if args.action == "queue":
        for k, (name, cell) in enumerate(new, 1):
            subprocess.run(queue_command(name, cell), check=True)
            print(f"queued {name} ({k})", flush=True)
        print(f"{len(new)} queued, {len(todo) - len(new)} skipped; run them with `dvc queue start -j 1`")
        return
    baseline = head()
    for k, (name, cell) in enumerate(new, 1):
        started, since, t0 = datetime.now(UTC).isoformat(timespec="seconds"), time.time(), time.perf_counter()
        subprocess.run(queue_command(name, cell, queue=False), check=True)
        seconds = round(time.perf_counter() - t0, 1)
        restore_committed_params()
        row = {"name": name, "baseline": baseline, "started": started, "seconds": seconds, "status": "run"}
        row |= {"precision": read_metrics(paths.metrics_file("distill")).get("precision"), "machine": cpu_model()}
        record_times([row | {"stages": {stage: r["seconds"] for stage, r in finished_stages(since).items()}}])
        print(f"[{k}/{len(new)}] {name}: {seconds:.0f} s", flush=True)
    print(f"{len(new)} run, {len(todo) - len(new)} skipped; collect them with `python -m pipeline.experiments.results`")


if __name__ == "__main__":
    run_command(main)
