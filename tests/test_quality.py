"""pipeline.experiments.quality: Δ AP against the MT's chrF, its pooled slope and where it crosses zero."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.experiments import compare, quality
from pipeline.experiments.results import Experiment
from pipeline.plots import quality_chart

#: The true line: Δ AP = SLOPE per 10 chrF points, 0 at chrF ZERO; chrF of each MT level (epochs).
SLOPE, ZERO = 0.02, 40.0
CHRF = {1: 28.0, 3: 34.0, 8: 40.0}


def _exps(rng) -> list[Experiment]:
    """none, parallel, backtranslation and forward at three MT levels; two languages × two root seeds; one
    replicate seed × 80 queries per cell. The arms sit on the true line plus a generator effect per root seed."""
    exps = []
    for lang in ("swh", "tgl"):
        for root in (13, 14):
            base = rng.uniform(0.2, 0.6, 80)
            queries = [f"q{j}" for j in range(80)]
            cells = [("none", 3, 0.0), ("parallel", 3, 0.05)]
            cells += [(arm, level, SLOPE * (chrf - ZERO) / 10 + rng.normal(0, 0.002))
                      for arm in quality.MT_METRICS for level, chrf in CHRF.items()]  # fmt: skip
            for aug, level, shift in cells:
                ap = base + shift + rng.normal(0, 0.01, 80)
                params = {"seed": root, "lang": lang, "aug": aug, "augment.size": 0 if aug == "none" else 1000,
                          "distill.seed": 0, "distill.loss": "ot", "evaluate.scoring": "dense", "mt.epochs": level,
                          "augment.round_trip_keep": 1.0}  # fmt: skip
                score = {"dev_target_genre": {"chrf": CHRF[level] + rng.normal(0, 0.3)}}
                metrics = {"metrics/eval/shifted_genre.json": {"available": True, "student": {"AP": float(ap.mean())}},
                           "metrics/mt.json": score, "metrics/mt_forward.json": score}  # fmt: skip
                per_query = {"shifted_genre": {"desc": dict(zip(queries, map(float, ap), strict=True))}}
                exps.append(Experiment(f"{lang}-{root}-{aug}-{level}", "rev", params, metrics, per_query))
    return exps


def test_the_quality_axis_recovers_the_slope_and_where_it_crosses_zero(tmp_path):
    exps = _exps(np.random.default_rng(0))
    table = compare.summary_table(exps, "desc")
    assert quality.has_levels(table)
    assert not quality.has_levels(table[table["mt_epochs"].isin([0, 3])])
    pts = quality.points(table, {e.name: e for e in exps}, "shifted_genre")
    # per arm with the MT: 2 languages × 2 root seeds × 3 levels; parallel once per language and root seed
    assert pts.groupby("arm").size().to_dict() == {"backtranslation": 12, "forward": 12, "parallel": 4}
    assert pts[pts["arm"] == "parallel"]["chrf"].isna().all()
    fitted = quality.slopes(pts, alpha=0.05).set_index("arm")
    assert list(fitted.index) == ["backtranslation", "forward"]
    for arm in fitted.index:
        assert fitted.loc[arm, "slope_per_10_chrf"] == pytest.approx(SLOPE, abs=0.004)
        assert fitted.loc[arm, "ci_low"] < SLOPE < fitted.loc[arm, "ci_high"]
        assert fitted.loc[arm, "zero_at_chrf"] == pytest.approx(ZERO, abs=2.0)
        assert 1 <= fitted.loc[arm, "df"] <= 2  # the root seed is the unit: Satterthwaite over 2 languages × (2 − 1)
    text = quality.render(pts, fitted.reset_index(), "shifted_genre")
    assert "zero_at_chrf" in text and "backtranslation" in text
    quality_chart(pts, quality.LIMIT, tmp_path / "q.png")
    assert (tmp_path / "q.png").stat().st_size > 0


def test_one_root_seed_per_language_gives_no_slope():
    exps = [e for e in _exps(np.random.default_rng(1)) if e.params["seed"] == 13]
    table = compare.summary_table(exps, "desc")
    pts = quality.points(table, {e.name: e for e in exps}, "shifted_genre")
    assert len(pts) == 14 and quality.slopes(pts, alpha=0.05).empty
    assert "No arm has 2 root seeds" in quality.render(pts, pd.DataFrame(), "shifted_genre")
