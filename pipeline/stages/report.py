"""Stage ``report``: one table of every system × split × query form, with robustness ratios.

Reads ``metrics/baselines/<split>.json`` and ``metrics/eval/<split>.json``; writes ``metrics/report.json`` (the
student's AP per split and query form, and every system's robustness), ``reports/summary.md``, the bar chart
``reports/ap_by_split.png`` (AP by system, split and query form; a dvc plot), ``reports/student_ap.csv`` (the
student's AP per split and form: the data of ``dvc plots diff`` across experiments) and
``reports/training_curves.png`` (the DVCLive curves of MT, teacher and distill as a static image: ``dvc plots show``
loads its chart library from the web). Robustness = shifted-split AP / in-domain AP with the same query form (1.0 =
no loss under shift).
"""

from __future__ import annotations

import pandas as pd

from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.io import write_metrics, write_text
from pipeline.plots import ap_bar_chart, training_curves
from pipeline.retrieval.evaluation import MEASURE_NAMES, robustness, split_metrics
from pipeline.stages import run_stage


def summary(evals: dict[str, dict]) -> tuple[dict, pd.DataFrame]:
    """``{system: {"splits": {split: {form: measures}}, "robustness": {form: {shifted: ratio}}}}`` and a long table
    (system, split, form, measures)."""
    report: dict = {}
    rows = []
    for split, res in evals.items():
        if not res.get("available"):
            continue
        for system, by_form in res.items():
            if not isinstance(by_form, dict):
                continue
            for form in paths.QUERY_FORMS:
                scores = by_form.get(form)
                if isinstance(scores, dict) and "AP" in scores:
                    measures = {m: scores[m] for m in MEASURE_NAMES.values()}
                    entry = report.setdefault(system, {"splits": {}, "robustness": {}})
                    entry["splits"].setdefault(split, {})[form] = measures
                    rows.append({"system": system, "split": split, "form": form, **measures})
    for entry in report.values():
        in_domain = entry["splits"].get("in_domain", {})
        for shifted in paths.SHIFTED:
            for form, measures in entry["splits"].get(shifted, {}).items():
                if form in in_domain:
                    entry["robustness"].setdefault(form, {})[shifted] = robustness(
                        measures["AP"], in_domain[form]["AP"]
                    )
    return report, pd.DataFrame(rows, columns=["system", "split", "form", *MEASURE_NAMES.values()])


def form_key(name: str, form: str) -> str:
    """``name`` for the primary query form (title), ``name_<form>`` for another: ``AP``, ``AP_desc``."""
    return name if form == paths.QUERY_FORMS[0] else f"{name}_{form}"


def summary_text(params, table: pd.DataFrame, report: dict) -> str:
    lines = [f"# Summary: lang={params.lang}, aug={params.aug}, test={params.prepare.collection}", ""]
    if table.empty:
        return "\n".join([*lines, "(no split available)", ""])
    for form in paths.QUERY_FORMS:
        sub = table[table["form"] == form]
        if not sub.empty:
            ap = sub.pivot(index="system", columns="split", values="AP")
            ap = ap[[s for s in paths.SPLITS if s in ap.columns]]
            lines += [f"## AP by system and split, {form} queries", "", ap.to_markdown(floatfmt=".4f"), ""]
    lines += ["## Robustness (shifted AP / in-domain AP, same query form)", ""]
    for system, entry in report.items():
        for form, ratios in entry["robustness"].items():
            lines += [f"- {system}, {form}, {shifted}: {ratio}" for shifted, ratio in ratios.items()]
    lines += ["", "## All measures", "", table.to_markdown(index=False, floatfmt=".4f")]
    return "\n".join(lines) + "\n"


def main() -> None:
    params = load_params()
    evals = {split: split_metrics(split) for split in paths.SPLITS}
    report, table = summary(evals)
    # The student's AP per split as AP.<split> with title queries (the primary form), AP_desc.<split> with desc
    # queries: keys no other metrics file has, short `dvc exp show` columns; the same for the robustness ratios.
    numbers: dict = {"lang": params.lang, "aug": params.aug, "collection": params.prepare.collection}
    for form in paths.QUERY_FORMS:
        student = report.get("student", {"splits": {}})["splits"]
        numbers[form_key("AP", form)] = {split: m[form]["AP"] for split, m in student.items() if form in m}
        numbers[form_key("robustness", form)] = {
            system: entry["robustness"][form] for system, entry in report.items() if entry["robustness"].get(form)
        }
    write_metrics(paths.metrics_file("report"), numbers)
    write_text("reports/summary.md", summary_text(params, table, report))
    labelled = table.assign(split=table["split"] + ", " + table["form"])
    student = labelled[labelled["system"] == "student"]
    write_text(paths.STUDENT_AP_PLOT, student[["split", "AP"]].to_csv(index=False, float_format="%.4f"))
    if not table.empty:
        title = f"AP by system, split and query form: lang={params.lang}, aug={params.aug}"
        groups = [f"{s}, {f}" for s in paths.SPLITS for f in paths.QUERY_FORMS if f"{s}, {f}" in set(labelled["split"])]
        ap_bar_chart(labelled, groups, title, paths.REPORTS_DIR / "ap_by_split.png")
    training_curves(paths.LIVE_DIRS, paths.REPORTS_DIR / "training_curves.png")


if __name__ == "__main__":
    run_stage(main)
