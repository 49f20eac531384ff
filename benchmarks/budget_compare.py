"""Before and after a change to the default run's cost: stage times and quality, from two committed default runs.

Reads, at two git revisions, ``benchmarks/results/pipeline_times.json`` (stage wall seconds, the switch, the machine)
and the default run's metrics (``metrics/*.json``, written by ``dvc repro``): MT BLEU/chrF on both dev sets, the
synthetic pool's pass rate and kept-line word validity, the teacher's dev AP, the student's dev AP and its AP on
every test split. Both runs must come from the same CPU model (an error otherwise: times from two machines do not
compare). Prints a table and writes ``benchmarks/results/budget_compare.json`` (a change's record; the docs give today's
numbers, git the earlier ones). ::

    python -m benchmarks.budget_compare --before 0418fdd [--after HEAD]

A single run per side: the quality columns say whether a saving moved a number beyond the run-to-run noise that
``docs/results.md`` measures for the student (replicate seeds), not more.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "budget_compare.json"
TIMES = "benchmarks/results/pipeline_times.json"
#: quality column -> (metrics file, dotted key)
QUALITY = {
    "mt BLEU source dev": ("metrics/mt.json", "dev_source.bleu"),
    "mt chrF source dev": ("metrics/mt.json", "dev_source.chrf"),
    "mt BLEU genre dev": ("metrics/mt.json", "dev_target_genre.bleu"),
    "mt chrF genre dev": ("metrics/mt.json", "dev_target_genre.chrf"),
    "synthetic pass rate": ("metrics/synthesize.json", "pass_rate"),
    "synthetic kept word validity": ("metrics/synthesize.json", "quality_kept.word_validity"),
    "teacher dev AP": ("metrics/teacher.json", "dev_en_en.teacher.AP"),
    "student dev AP": ("metrics/distill.json", "dev_en_xx.student.AP"),
    "student AP in_domain": ("metrics/report.json", "AP.in_domain"),
    "student AP shifted_genre": ("metrics/report.json", "AP.shifted_genre"),
    "student AP shifted_register": ("metrics/report.json", "AP.shifted_register"),
}


def read_at(rev: str, path: str) -> dict:
    text = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(text.stdout)


def dotted(data: dict, key: str):
    for part in key.split("."):
        data = data[part]
    return data


def side(rev: str) -> dict:
    times = read_at(rev, TIMES)
    sha = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, check=True, capture_output=True, text=True)
    return {
        "rev": sha.stdout.strip(),
        "machine": times["machine"],
        "stages": {s["stage"]: s["seconds"] for s in times["stages"]},
        "total_seconds": times["total_seconds"],
        "switch_seconds": times["switch"]["seconds"],
        "readme_seconds": times.get("repro_seconds"),
        "quality": {name: dotted(read_at(rev, path), key) for name, (path, key) in QUALITY.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="the revision of the earlier default run")
    ap.add_argument("--after", default="HEAD")
    ap.add_argument("--json", type=Path, default=OUT)
    args = ap.parse_args()
    before, after = side(args.before), side(args.after)
    cpu = [m.split(";")[0].split(",")[0] for m in (before["machine"], after["machine"])]
    if cpu[0] != cpu[1]:
        raise SystemExit(f"the runs come from different CPUs ({cpu[0]!r}, {cpu[1]!r}): their times do not compare")
    print(f"{'':32s} {before['rev']:>10s} {after['rev']:>10s}")
    for stage in after["stages"]:
        print(f"{stage:32s} {before['stages'].get(stage, float('nan')):10.1f} {after['stages'][stage]:10.1f}")
    for key in ("total_seconds", "switch_seconds", "readme_seconds"):
        print(f"{key:32s} {before[key] or float('nan'):10.1f} {after[key] or float('nan'):10.1f}")
    for name in QUALITY:
        print(f"{name:32s} {before['quality'][name]:10.4g} {after['quality'][name]:10.4g}")
    args.json.write_text(json.dumps({"before": before, "after": after}, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.json.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
