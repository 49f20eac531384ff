"""Experiment results as files in git: one compact JSON per experiment under ``results/``.

DVC keeps an experiment in ``refs/exps`` of the repository that ran it; a fresh clone has none. ::

    python -m pipeline.experiments.results [--out results] [--all-commits] [--where key=value ...]

reads every experiment of the current commit (``dvc exp show --json``; ``--all-commits``: of every commit; the
commits themselves are not experiments and are left out) and writes ``results/<name>.json`` per experiment: its
name, commit, the commit it ran on (``baseline``), every param (dotted keys, as declared: ``auto`` stays ``auto``),
every metrics file merged with the info file beside it (signatures, what precision ran), and the student's
per-query AP on each available split and query form (read from the experiment's
``runs/student/<split>/<form>/student.run`` and qrels through ``dvc.api``, rounded to 6 decimals:
``per_query_ap.<split>.<form>``).

Every number of a record is on one test: ``prepare.collection`` (``topical`` or ``known_item``; records from before the
param ran on ``known_item``, and :func:`ran_params` says so) with the query form it is filed under. Records from
before both forms were evaluated hold one form, ``prepare.query_form``'s, flat: ``per_query_ap.<split>`` and
``metrics/eval/<split>.json: student.AP``; :func:`from_record` and :meth:`Experiment.student` read both layouts.

``python -m pipeline.experiments.compare --results results/`` then needs no experiment refs. A file is rewritten only
when its content changes, so collecting twice is a no-op.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipeline.cli import run_command
from pipeline.config.hardware import AUTO
from pipeline.config.paths import QUERY_FORMS, SPLITS, run_file
from pipeline.errors import PipelineError
from pipeline.io import info_file, merge, write_text
from pipeline.retrieval.evaluation import per_query_ap

RESULTS_DIR = Path("results")
#: The precision params that may be ``auto``, and where a run's metrics say what ran.
RAN = {"train.precision": ("metrics/distill.json", "precision"), "synth.dtype": ("metrics/synthesize.json", "dtype")}
#: Params that commits before them did not have, and the value those commits ran with: the test they evaluated on,
#: and the one query form they evaluated.
BEFORE = {"prepare.collection": "known_item", "prepare.query_form": "desc", "mt.engine": "fairseq"}
#: Params renamed since records were written: old name -> today's (records keep the name they ran under).
RENAMED = {"distill.sinkhorn_iters": "distill.sinkhorn_max_iter"}


class ResultsError(PipelineError):
    pass


@dataclass
class Experiment:
    name: str
    rev: str
    params: dict  # flattened, dotted keys
    metrics: dict  # metrics file path -> its data
    query_ap: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # split -> form -> query -> AP
    baseline: str = ""  # the commit the experiment ran on (empty for a commit, and in results collected before it)
    machine: str = ""  # the CPU that ran it, as ``grid run`` recorded it (empty where it did not)

    def eval(self, split: str) -> dict:
        return self.metrics.get(f"metrics/eval/{split}.json") or {}

    def splits(self) -> list[str]:
        """Splits where the student was evaluated."""
        return [s for s in SPLITS if self.eval(s).get("available") and "student" in self.eval(s)]

    def forms(self, split: str) -> list[str]:
        """The query forms the student was evaluated with on ``split`` (one, flat, before both forms were)."""
        student = self.eval(split).get("student") or {}
        if "AP" in student:
            return [self.params.get("prepare.query_form", BEFORE["prepare.query_form"])]
        return [f for f in QUERY_FORMS if f in student]

    def student(self, split: str, form: str) -> dict:
        """The student's measures on ``split`` with ``form`` queries."""
        if form not in self.forms(split):
            raise ResultsError(f"{self.name}: no {form} queries on {split} (it has {self.forms(split)})")
        student = self.eval(split)["student"]
        return student if "AP" in student else student[form]

    @property
    def collection(self) -> str:
        """The test its numbers are on (``prepare.collection``)."""
        return self.params.get("prepare.collection", BEFORE["prepare.collection"])

    @property
    def mt_engine(self) -> str:
        """What decoded its MT model's translations (``mt.engine``; fairseq before CTranslate2 was the default)."""
        return self.params.get("mt.engine", BEFORE["mt.engine"])


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def parse_exp_show(rows: list[dict], commits: bool = True, unfinished: bool = False) -> list[Experiment]:
    """Experiments (and, with ``commits``, their baseline commits) from ``dvc exp show --json``; the workspace
    is skipped, and so are queued, running and failed experiments unless ``unfinished``."""
    found = []

    def add(entry: dict, name: str | None, baseline: str = "") -> None:
        data = entry.get("data") or {}
        params = ((data.get("params") or {}).get("params.yaml") or {}).get("data")
        if not params:
            return
        metrics = {path: m.get("data") or {} for path, m in sorted((data.get("metrics") or {}).items())}
        found.append(Experiment(name or entry["rev"][:7], entry["rev"], flatten(params), metrics, baseline=baseline))

    for row in rows:
        if row.get("rev") == "workspace":
            continue
        if commits:
            add(row, row.get("name"))
        for exp in row.get("experiments") or []:
            state = (exp.get("executor") or {}).get("state")
            if state not in (None, "success") and not unfinished:
                continue
            for rev in exp.get("revs") or []:
                add(rev, rev.get("name"), row["rev"])
    return found


def exp_show(all_commits: bool = False) -> list[dict]:
    cmd = [sys.executable, "-m", "dvc", "exp", "show", "--json", *(["-A"] if all_commits else [])]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def _read_rev(path: str, rev: str) -> str:
    """The text of ``path`` at commit ``rev``; FileNotFoundError if it has no such file."""
    import dvc.api
    from dvc.exceptions import PathMissingError

    try:
        return dvc.api.read(path, rev=rev)
    except PathMissingError as exc:
        raise FileNotFoundError(path) from exc


def per_query(rev: str, split: str, form: str, reader=None) -> dict[str, float]:
    """Per-query AP of the student of one experiment (commit ``rev``) on one split with ``form`` queries (a commit
    from before both forms were evaluated: its one run, ``runs/<split>/student.run``)."""
    reader = reader or _read_rev
    with tempfile.TemporaryDirectory() as tmp:
        qrels, run = Path(tmp) / "qrels.txt", Path(tmp) / "student.run"
        qrels.write_text(reader(f"data/prepared/{split}/qrels.txt", rev))
        try:
            run.write_text(reader(str(run_file(split, form, "student")), rev))
        except FileNotFoundError:
            run.write_text(reader(f"runs/{split}/student.run", rev))
        return per_query_ap(qrels, run)


def with_info(exp: Experiment, reader=None) -> Experiment:
    """``exp`` with each metrics file merged with the info file beside it (names, signatures and what ran, e.g.
    ``train.precision`` auto resolved: :func:`pipeline.io.write_metrics`), read from its commit; commits from
    before the info files have none."""
    reader = reader or _read_rev
    for path, data in exp.metrics.items():
        try:
            info = json.loads(reader(str(info_file(path)), exp.rev))
        except FileNotFoundError:
            continue
        exp.metrics[path] = merge(data, info)
    return exp


#: Where ``grid run`` records each cell's wall time, CPU and precision (``pipeline.experiments.grid``).
GRID_TIMES = Path("benchmarks/results/grid_times.json")


def machines(times: Path = GRID_TIMES) -> dict[tuple[str, str], str]:
    """(experiment name, commit) -> the CPU that ``grid run`` recorded for it (the last row of each)."""
    rows = json.loads(times.read_text(encoding="utf-8"))["tasks"] if times.exists() else []
    return {(r["name"], r["baseline"]): r["machine"] for r in rows if r.get("machine")}


def with_machine(exp: Experiment, known: dict[tuple[str, str], str]) -> Experiment:
    """``exp`` with the CPU that ran it, from :func:`machines` (unchanged where it has none)."""
    found = known.get((exp.name, exp.baseline))
    return replace(exp, machine=found) if found else exp


def ran_params(exp: Experiment) -> Experiment:
    """``exp`` with every ``auto`` precision param replaced by what ran (its stage's metrics say), so that cells are
    grouped by what ran, never by the word ``auto``, with the test it ran on (``prepare.collection``, which
    commits before the param did not have: :data:`BEFORE`) and every param under today's name (:data:`RENAMED`);
    an error naming the experiment if its metrics do not say what ran."""
    ran = {"prepare.collection": exp.collection} | {RENAMED.get(k, k): v for k, v in exp.params.items()}
    for key, (metrics_file, field_name) in RAN.items():
        if ran.get(key) == AUTO:
            value = (exp.metrics.get(metrics_file) or {}).get(field_name)
            if value is None:
                raise ResultsError(f"{exp.name}: {key} is auto and {metrics_file} does not say what ran ({field_name})")
            ran[key] = value
    return replace(exp, params=ran)


def with_query_ap(exp: Experiment, reader=None) -> Experiment:
    """``exp`` with the per-query AP of every split and query form it was evaluated on (read from its commit)."""
    for split in exp.splits():
        for form in exp.forms(split):
            if form not in exp.query_ap.get(split, {}):
                exp.query_ap.setdefault(split, {})[form] = per_query(exp.rev, split, form, reader)
    return exp


def to_record(exp: Experiment) -> dict:
    return {
        "name": exp.name,
        "rev": exp.rev,
        **({"baseline": exp.baseline} if exp.baseline else {}),
        **({"machine": exp.machine} if exp.machine else {}),
        "params": dict(sorted(exp.params.items())),
        "metrics": exp.metrics,
        "per_query_ap": {
            s: {f: {q: round(v, 6) for q, v in sorted(exp.query_ap[s][f].items())} for f in exp.forms(s)}
            for s in exp.splits()
        },
    }


def from_record(record: dict, source: str) -> Experiment:
    missing = [k for k in ("name", "rev", "params", "metrics", "per_query_ap") if k not in record]
    if missing:
        raise ResultsError(f"{source}: missing key(s) {missing}")
    exp = Experiment(
        record["name"],
        record["rev"],
        record["params"],
        record["metrics"],
        baseline=record.get("baseline", ""),
        machine=record.get("machine", ""),
    )
    for split, ap in record["per_query_ap"].items():
        flat = any(not isinstance(v, dict) for v in ap.values())  # one form, from before both were evaluated
        exp.query_ap[split] = {exp.forms(split)[0]: ap} if flat else ap
    return exp


def load(directory: Path | str) -> list[Experiment]:
    """Every ``<name>.json`` of ``directory``, sorted by name."""
    directory = Path(directory)
    files = sorted(directory.glob("*.json"))
    if not files:
        raise ResultsError(
            f"{directory}: no experiment results (*.json); run `python -m pipeline.experiments.results` first"
        )
    exps = []
    for f in files:
        try:
            exps.append(from_record(json.loads(f.read_text(encoding="utf-8")), str(f)))
        except json.JSONDecodeError as exc:
            raise ResultsError(f"{f}: not valid JSON ({exc})") from None
    return exps


def _clashes(path: Path, params: dict) -> list[str]:
    """The params in which the result already at ``path`` differs from ``params`` (none if there is no file)."""
    if not path.exists():
        return []
    old = from_record(json.loads(path.read_text(encoding="utf-8")), str(path)).params
    return sorted(k for k in old.keys() | params.keys() if old.get(k) != params.get(k))


def write(exps: Iterable[Experiment], directory: Path | str) -> list[Path]:
    """One file per experiment; returns the files whose content changed.

    A grid names its cells by the values that vary in the grid, so the same name run again after a default
    changed (e.g. ``train.precision``) is another experiment: a file whose params differ is never overwritten,
    and nothing is written when one clashes (rename the experiment with ``dvc exp rename``)."""
    records = [(Path(directory) / f"{e.name}.json", to_record(e)) for e in exps]
    for path, record in records:
        if clash := _clashes(path, record["params"]):
            raise ResultsError(
                f"{path} holds another experiment of that name (params differ: {', '.join(clash)}); "
                "rename one with `dvc exp rename` or move the file"
            )
    changed = []
    for path, record in records:
        text = json.dumps(record, indent=1, sort_keys=False) + "\n"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            write_text(path, text)
            changed.append(path)
    return changed


def main(argv: Iterable[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=RESULTS_DIR)
    ap.add_argument("--all-commits", action="store_true", help="experiments of every commit (dvc exp show -A)")
    ap.add_argument("--where", action="append", default=[], help="dotted.param=value (repeatable)")
    ap.add_argument("--exp-json", help="read this `dvc exp show --json` output instead of running it")
    args = ap.parse_args(list(argv) if argv is not None else None)
    where = dict(w.split("=", 1) for w in args.where)
    rows = json.loads(Path(args.exp_json).read_text()) if args.exp_json else exp_show(args.all_commits)
    exps = [e for e in parse_exp_show(rows, commits=False) if all(str(e.params.get(k)) == v for k, v in where.items())]
    names = [e.name for e in exps]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ResultsError(f"experiment names occur twice: {duplicated}; rename with `dvc exp rename`")
    known = machines()
    changed = write((with_machine(with_query_ap(with_info(e)), known) for e in exps), args.out)
    print(f"{len(exps)} experiments; {len(changed)} file(s) written under {args.out}/")


if __name__ == "__main__":
    run_command(main)
