"""Stage ``report``: one table of every system × split, with robustness ratios.

Reads ``metrics/baselines/<split>.json`` and ``metrics/eval/<split>.json``; writes ``metrics/report.json`` (the
student's AP per split and every system's robustness), ``reports/summary.md``, the bar chart
``reports/ap_by_split.png`` (AP by system and split; a dvc plot), ``reports/student_ap.csv`` (the student's
AP per split: the data of ``dvc plots diff`` across experiments) and ``reports/training_curves.png`` (the
DVCLive curves of MT, teacher and distill as a static image: ``dvc plots show`` loads its chart library from
the web). Robustness = shifted-split AP / in-domain AP (1.0 = no loss under shift).
"""

from __future__ import annotations

import pandas as pd

from pipeline import paths
from pipeline.evaluation import MEASURE_NAMES, robustness, split_metrics
from pipeline.io import write_metrics, write_text
from pipeline.params import load_params
from pipeline.plots import ap_bar_chart, training_curves
from pipeline.stages import run_stage

SHIFTED = ("shifted_genre", "shifted_register")


def summary(evals: dict[str, dict]) -> tuple[dict, pd.DataFrame]:
    """``{system: {"splits": {split: measures}, "robustness": {shifted: ratio}}}`` and a long table."""
    report: dict = {}
    for split, res in evals.items():
        if not res.get("available"):
            continue
        for system, scores in res.items():
            if isinstance(scores, dict) and "AP" in scores:
                entry = report.setdefault(system, {"splits": {}, "robustness": {}})
                entry["splits"][split] = {m: scores[m] for m in MEASURE_NAMES.values()}
    for entry in report.values():
        in_domain = entry["splits"].get("in_domain")
        for shifted in SHIFTED:
            if in_domain and shifted in entry["splits"]:
                entry["robustness"][shifted] = robustness(entry["splits"][shifted]["AP"], in_domain["AP"])
    table = pd.DataFrame([{"system": s, "split": sp, **m} for s, e in report.items() for sp, m in e["splits"].items()])
    return report, table


def main() -> None:
    params = load_params()
    evals = {split: split_metrics(split) for split in paths.SPLITS}
    report, table = summary(evals)
    robust = {system: entry["robustness"] for system, entry in report.items() if entry["robustness"]}
    # The student's AP per split as AP.<split>: keys no other metrics file has, short `dvc exp show` columns.
    student_ap = {split: m["AP"] for split, m in report.get("student", {"splits": {}})["splits"].items()}
    write_metrics(
        "metrics/report.json",
        {"lang": params.lang, "aug": params.aug, "AP": student_ap, "robustness": robust},
    )
    ap = table.pivot(index="system", columns="split", values="AP") if not table.empty else table
    lines = [
        f"# Summary: lang={params.lang}, aug={params.aug}",
        "",
        "## AP by system and split",
        "",
        ap.to_markdown(floatfmt=".4f") if not table.empty else "(no split available)",
        "",
        "## Robustness (shifted AP / in-domain AP)",
        "",
    ]
    for system, entry in report.items():
        for shifted, ratio in entry["robustness"].items():
            lines.append(f"- {system}, {shifted}: {ratio}")
    lines += ["", "## All measures", "", table.to_markdown(index=False, floatfmt=".4f") if not table.empty else ""]
    write_text("reports/summary.md", "\n".join(lines) + "\n")
    student = table[table["system"] == "student"] if not table.empty else table
    write_text(
        paths.STUDENT_AP_PLOT,
        (student[["split", "AP"]] if not student.empty else pd.DataFrame(columns=["split", "AP"])).to_csv(
            index=False, float_format="%.4f"
        ),
    )
    if not table.empty:
        title = f"AP by system and split: lang={params.lang}, aug={params.aug}"
        ap_bar_chart(table, list(paths.SPLITS), title, paths.REPORTS_DIR / "ap_by_split.png")
    training_curves(paths.LIVE_DIRS, paths.REPORTS_DIR / "training_curves.png")


if __name__ == "__main__":
    run_stage(main)
