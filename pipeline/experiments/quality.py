"""The generator-quality axis (issue 42): how much an augmentation helps as a function of the MT that made it.

A report whose cells put an arm at several MT levels (``mt.epochs``: grid ``mt_quality`` beside ``augment_help``)
gets, per arm whose pool the MT alone makes (:data:`MT_METRICS`), one point per language × root seed × level: the
MT's chrF on the target-genre dev set (the direction that made the pool) and Δ AP (arm − none, the mean over the
root seed's replicate seeds and queries). The slope of Δ AP on chrF is fitted per language and root seed (least
squares over the levels) and pooled with the design's test, the root seed the unit
(:func:`~pipeline.experiments.stats.nested_test`, each root seed's slope its one number); where the pooled line
crosses zero is the chrF at which the arm stops hurting. ``parallel`` − none, real English on both sides, is the
limit of a perfect MT.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.experiments.conditions import uses
from pipeline.experiments.contrasts import root_pairs
from pipeline.experiments.results import Experiment
from pipeline.experiments.stats import holm, nested_test

#: The arms whose machine-made side the pipeline's MT alone writes, and the metrics file of the model that wrote it
#: (``train_mt``: xx-en for back-translation, en-xx for forward translation).
MT_METRICS = {"backtranslation": "metrics/mt.json", "forward": "metrics/mt_forward.json"}
#: The MT score the axis is drawn on: chrF on the held-out target-genre verses.
SCORE = ("dev_target_genre", "chrf")
#: The perfect-MT limit drawn beside the arms.
LIMIT = "parallel"


def has_levels(table: pd.DataFrame) -> bool:
    """Whether an arm of :data:`MT_METRICS` has several MT levels in ``table``."""
    arms = table[table["aug"].isin(list(MT_METRICS))]
    return bool(len(arms) and (arms.groupby(["lang", "root_seed", "aug"])["mt_epochs"].nunique() > 1).any())


def points(table: pd.DataFrame, exps: dict[str, Experiment], split: str) -> pd.DataFrame:
    """Per arm (:data:`MT_METRICS` and :data:`LIMIT`) × language × root seed × MT level on ``split``: the MT's
    :data:`SCORE` (none for the limit) and Δ AP (arm − none) over the root seed's seeds and queries; the remedy's
    cells are left out."""
    rows = []
    sub = table[(table["split"] == split) & (table["keep"] == 1.0)]
    for lang, by_lang in sub.groupby("lang", sort=True):
        no_mt = np.array([not uses(a, "mt_epochs") for a in by_lang["aug"]], dtype=bool)  # none, parallel
        for arm in (*MT_METRICS, LIMIT):
            levels = sorted(set(by_lang.loc[by_lang["aug"] == arm, "mt_epochs"]))
            for level in levels:
                level_rows = by_lang[(by_lang["mt_epochs"] == level) | no_mt]
                for root, ma, mb in root_pairs(level_rows, "aug", arm, "none", exps, split):
                    cell = level_rows[(level_rows["aug"] == arm) & (level_rows["root_seed"] == root)]
                    score = _score(exps[cell["exp"].iloc[0]], arm)
                    rows.append({"arm": arm, "lang": lang, "root_seed": root, "mt_epochs": level, "chrf": score,
                                 "delta": float((ma - mb).mean())})  # fmt: skip
    return pd.DataFrame(rows)


def _score(exp: Experiment, arm: str) -> float:
    if arm not in MT_METRICS:
        return float("nan")
    data = exp.metrics.get(MT_METRICS[arm]) or {}
    return float(data.get(SCORE[0], {}).get(SCORE[1], float("nan")))


def slopes(pts: pd.DataFrame, *, alpha: float) -> pd.DataFrame:
    """Per arm of :data:`MT_METRICS`: the pooled slope of Δ AP on chrF (per 10 chrF points) with its CI and p (the
    root seed the unit; Holm over the arms), the pooled intercept, and the chrF where the pooled line crosses zero
    (the measured range beside it)."""
    rows = []
    for arm, g in pts[pts["arm"].isin(list(MT_METRICS))].groupby("arm", sort=False):
        fits: dict[str, list[tuple[float, float]]] = {}
        for (lang, _), r in g.groupby(["lang", "root_seed"], sort=True):
            if r["mt_epochs"].nunique() >= 2 and r["chrf"].notna().all():
                slope, intercept = np.polyfit(r["chrf"] / 10, r["delta"], 1)
                fits.setdefault(lang, []).append((float(slope), float(intercept)))
        by_language = {lang: [np.array([[s]]) for s, _ in f] for lang, f in fits.items() if len(f) >= 2}
        if not by_language:
            continue
        res = nested_test(by_language, alpha=alpha)
        intercept = float(np.mean([np.mean([i for _, i in fits[lang]]) for lang in by_language]))
        crossing = -intercept / res["delta"] * 10 if res["delta"] else float("nan")
        rows.append({"arm": arm, "languages": " ".join(by_language), "slope_per_10_chrf": res["delta"],
                     "ci_low": res["ci_low"], "ci_high": res["ci_high"], "df": res["df"], "p": res["p"],
                     "intercept": intercept, "zero_at_chrf": crossing,
                     "chrf_measured": f"{g['chrf'].min():.1f}–{g['chrf'].max():.1f}"})  # fmt: skip
    out = pd.DataFrame(rows)
    if not out.empty:
        out["p_holm"] = holm(out["p"])
    return out


def render(pts: pd.DataFrame, fitted: pd.DataFrame, split: str) -> str:
    """The quality axis as markdown: the points (mean over root seeds per level) and the pooled slopes."""
    mean = (
        pts.groupby(["arm", "lang", "mt_epochs"], sort=True)
        .agg(roots=("delta", "size"), chrf=("chrf", "mean"), delta=("delta", "mean"))
        .reset_index()
    )
    lines = [
        f"# The generator-quality axis ({split})",
        "",
        "Δ AP = arm − none (mean over the root seeds' replicate seeds and queries), against the chrF on the "
        "target-genre dev set of the MT model that made the arm's pool (`mt.epochs` the level; `parallel`, real "
        "English, the limit of a perfect MT).",
        "",
        mean.to_markdown(index=False, floatfmt=".4f"),
        "",
        "Slope of Δ AP per 10 chrF points, pooled over the languages (equal weights) with the root seed as the unit "
        "(the nested test on each root seed's least-squares slope), Holm over the arms; `zero_at_chrf`: where the "
        "pooled line crosses 0 (outside the measured range: an extrapolation).",
        "",
        fitted.to_markdown(index=False, floatfmt=".4f")
        if not fitted.empty
        else "No arm has 2 root seeds with 2 levels yet.",
        "",
    ]
    return "\n".join(lines)
