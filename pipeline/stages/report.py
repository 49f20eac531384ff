"""Stage ``report``: one table of every system × split, with robustness ratios.

Reads ``metrics/eval/<split>.json``; writes ``metrics/report.json``, ``reports/summary.md``, the bar chart
``reports/ap_by_split.png`` (AP by system and split; a dvc plot) and ``reports/training_curves.png`` (the
DVCLive curves of MT, teacher and distill as a static image: ``dvc plots show`` loads its chart library from
the web). Robustness = shifted-split AP / in-domain AP (1.0 = no loss under shift).
"""

from __future__ import annotations

import pandas as pd

from pipeline import paths
from pipeline.evaluation import MEASURE_NAMES, robustness
from pipeline.io import read_json, write_json, write_text
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
    evals = {split: read_json(paths.eval_metrics(split)) for split in paths.SPLITS}
    report, table = summary(evals)
    write_json("metrics/report.json", {"lang": params.lang, "aug": params.aug, "systems": report})
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
    if not table.empty:
        title = f"AP by system and split: lang={params.lang}, aug={params.aug}"
        ap_bar_chart(table, list(paths.SPLITS), title, paths.REPORTS_DIR / "ap_by_split.png")
    training_curves(paths.LIVE_DIRS, paths.REPORTS_DIR / "training_curves.png")


if __name__ == "__main__":
    run_stage(main)
