"""What a person reads: `dvc metrics show` holds numbers only, and the documented `dvc exp show` and the README's
`dvc metrics` command fit 120 columns."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from pipeline.config.paths import SPLITS
from pipeline.io import HEADLINE, headline, split_info

ROOT = Path(__file__).resolve().parents[1]


def _declared_metrics() -> list[str]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    files = []
    for stage in stages.values():
        for entry in stage.get("metrics", []):
            path = next(iter(entry)) if isinstance(entry, dict) else entry
            files += [path.replace("${item.split}", s) for s in SPLITS] if "${item.split}" in path else [path]
    return files


def _leaves(d: dict, prefix: str = ""):
    for k, v in d.items():
        yield from _leaves(v, f"{prefix}{k}.") if isinstance(v, dict) else [(f"{prefix}{k}", v)]


def test_committed_metrics_are_headline_numbers_only():
    """Every declared metrics file holds numbers (no names, hashes, signatures), a screenful each, all headline."""
    files = _declared_metrics()
    assert len(files) == 23 and set(HEADLINE) >= {"eval/*", "baselines/*", "report"}
    for path in files:
        leaves = dict(_leaves(json.loads((ROOT / path).read_text())))
        assert leaves, path
        bad = {k: v for k, v in leaves.items() if not (isinstance(v, int | float) and not isinstance(v, bool))}
        assert not bad, f"{path}: not numbers: {bad}"
        # about as wide as `dvc metrics show <file>` lays it out (the path, a column per key; measured: 2 columns
        # wider than DVC's); a full-HD screen holds about 260 columns
        width = len(path) + sum(4 + max(len(k), len(str(v))) for k, v in leaves.items())
        assert width <= 260, f"{path}: {width} columns wide ({len(leaves)} numbers)"
        numbers, rest = split_info(json.loads((ROOT / path).read_text()), headline(path))
        assert not rest, f"{path}: {rest} are not headline keys"


def _documented(name: str) -> str:
    text = (ROOT / "docs/usage.md").read_text()
    block = re.search(rf"<!-- command: {name} -->\n```bash\n(.+?)\n```", text, re.S)
    assert block and "\n" not in block.group(1), f"docs/usage.md: no one-line command after <!-- command: {name} -->"
    return block.group(1)


def _metrics_project(tmp_path: Path):
    """A git + DVC project in 120 columns that holds the committed metrics files, declared as its metrics (no
    stages: nothing to run), and params.yaml, committed; returns it and a function that runs a command in it."""
    proj = tmp_path / "project"
    proj.mkdir()
    env = {**os.environ, "COLUMNS": "120", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    def run(*cmd):
        res = subprocess.run(cmd, cwd=proj, env=env, capture_output=True, text=True)
        assert res.returncode == 0, f"{cmd}: {res.stdout}\n{res.stderr}"
        return res.stdout

    run("git", "init", "-q")
    run("git", "config", "user.email", "test@localhost")
    run("git", "config", "user.name", "test")
    run("dvc", "init", "-q")
    files = _declared_metrics()
    for path in files:
        (proj / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, proj / path)
    shutil.copy(ROOT / "params.yaml", proj / "params.yaml")
    (proj / "dvc.yaml").write_text(yaml.safe_dump({"metrics": files}))
    run("git", "add", "-A")
    run("git", "commit", "-qm", "baseline")
    return proj, run


def test_documented_exp_show_fits_120_columns(tmp_path):
    """A few experiments that vary `aug` and `distill.seed`: the docs' `dvc exp show` shows exactly those params
    and the student's AP per split, every line within 120 columns, nothing cut ('…')."""
    proj, run = _metrics_project(tmp_path)
    params = (proj / "params.yaml").read_text()
    report = json.loads((proj / "metrics/report.json").read_text())
    for i, (aug, seed) in enumerate([("backtranslation", 0), ("synthetic", 0), ("backtranslation", 1), ("both", 1)]):
        text = re.sub(r"(?m)^aug: \w+", f"aug: {aug}", params)
        text = re.sub(r"(?m)^(  seed: )0( .*)$", rf"\g<1>{seed}\2", text)  # distill.seed
        (proj / "params.yaml").write_text(text)
        report["AP"] = {split: round(0.3 + 0.1 * i + 0.01 * k, 4) for k, split in enumerate(SPLITS)}  # title queries
        (proj / "metrics/report.json").write_text(json.dumps(report))
        run("dvc", "exp", "save", "-q", "-n", f"cell-{i}")
    run("git", "checkout", "-q", "--", ".")
    out = run("bash", "-c", _documented("exp-show").replace("dvc exp show", "dvc exp show --no-pager", 1))
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 120, out
    assert "…" not in out, out
    header = lines[1].split()
    assert header == ["Experiment", "AP.in_domain", "AP.shifted_genre", "AP.shifted_register", "aug", "distill.seed"]
    assert [line.split("[")[1].split("]")[0] for line in lines if "[cell-" in line] == [
        "cell-3",
        "cell-2",
        "cell-1",
        "cell-0",
    ]  # sorted by AP under genre shift, best first


def _readme_metrics_command() -> str:
    """The README's `dvc metrics ...` line of "Commands you will use most", without its comment."""
    text = (ROOT / "README.md").read_text()
    block = text.split("## Commands you will use most", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [line.split("#")[0].strip() for line in block.splitlines() if line.startswith("dvc metrics")]
    assert len(lines) == 1, lines
    return lines[0]


def test_readme_metrics_command_fits_120_columns(tmp_path):
    """The README's metrics command on the committed metrics: one number a line, every line within 120 columns,
    nothing cut, the student's AP per split among them."""
    _, run = _metrics_project(tmp_path)
    out = run(*_readme_metrics_command().split())
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 120, out
    assert "…" not in out, out
    numbers = sum(len(list(_leaves(json.loads((ROOT / path).read_text())))) for path in _declared_metrics())
    assert len(lines) == numbers + 1, f"{len(lines) - 1} rows for {numbers} numbers"  # the header, a row each
    report = [line.split() for line in lines if line.startswith("metrics/report.json")]
    assert [row[1] for row in report if row[1].startswith("AP.")] == [f"AP.{s}" for s in SPLITS]
