"""pipeline.experiments.stats: the two-level bootstrap (effect, CI, p) and the Holm adjustment."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pipeline.experiments.stats import StatsError, holm, two_level_bootstrap


def test_bootstrap_known_answers():
    rng = np.random.default_rng(0)
    b = rng.uniform(0, 1, (3, 50))
    # a constant difference: the effect exactly, a zero-width interval, the smallest p the resamples allow
    res = two_level_bootstrap(b + 0.1, b, resamples=999)
    assert res["delta"] == pytest.approx(0.1) and res["ci_low"] == pytest.approx(0.1)
    assert res["ci_high"] == pytest.approx(0.1) and res["p"] == pytest.approx(1 / 1000)
    assert (res["seeds"], res["queries"]) == (3, 50)
    # no difference at all: p = 1
    same = two_level_bootstrap(b, b, resamples=999)
    assert same["delta"] == 0 and same["p"] == 1
    # reproducible, and a real per-query shift is found
    a = np.clip(b + 0.1 + rng.normal(0, 0.05, b.shape), 0, 1)
    res = two_level_bootstrap(a, b)
    assert res == two_level_bootstrap(a, b) and res["p"] < 0.01 and res["ci_low"] > 0.05
    # one seed: the ordinary paired bootstrap over queries, whose CI is about the t-interval's
    one = two_level_bootstrap(a[:1], b[:1])
    d = a[0] - b[0]
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    assert one["ci_low"] == pytest.approx(d.mean() - half, abs=0.01)
    assert one["ci_high"] == pytest.approx(d.mean() + half, abs=0.01)
    with pytest.raises(StatsError):
        two_level_bootstrap(a[:, :1], b[:, :1])
    with pytest.raises(StatsError):
        two_level_bootstrap(a, b[:2])


def test_bootstrap_counts_seed_variance_that_a_query_level_test_ignores():
    """Seeds disagree (+0.2, -0.15, +0.2) with tiny query noise: averaged over seeds, every query shows +0.083,
    which a test across queries calls certain; resampling seeds makes the interval cover 0."""
    rng = np.random.default_rng(1)
    b = rng.uniform(0.2, 0.6, (3, 100))
    a = b + np.array([[0.2], [-0.15], [0.2]]) + rng.normal(0, 0.01, b.shape)
    over_queries = stats.ttest_rel(a.mean(axis=0), b.mean(axis=0)).pvalue
    res = two_level_bootstrap(a, b)
    assert over_queries < 1e-50
    assert res["ci_low"] < 0 < res["ci_high"] and res["p"] > 0.05


def test_bootstrap_interval_covers_a_known_mean_and_p_holds_its_level():
    """Simulated per-query differences with a known mean (0.05, sd 0.2, 40 queries): the 95 % interval covers the
    mean in about 95 % of the data sets, and with mean 0 about 5 % of the p-values fall below 0.05 (a little
    more: the percentile bootstrap of 40 queries is slightly narrow)."""
    rng = np.random.default_rng(2)
    runs, covered, rejected = 200, 0, 0
    for k in range(runs):
        b = rng.uniform(0.2, 0.6, (1, 40))
        shifted = two_level_bootstrap(b + 0.05 + rng.normal(0, 0.2, b.shape), b, resamples=1000, seed=k)
        covered += shifted["ci_low"] <= 0.05 <= shifted["ci_high"]
        null = two_level_bootstrap(b + rng.normal(0, 0.2, b.shape), b, resamples=1000, seed=k)
        rejected += null["p"] < 0.05
    assert 0.88 <= covered / runs <= 0.99
    assert rejected / runs <= 0.12


def test_holm_matches_the_definition():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> monotone 0.06
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert len(holm([])) == 0


@pytest.mark.parametrize(
    ("p", "adjusted"),
    [
        ([0.2, 0.5, 0.01], [0.4, 0.5, 0.03]),  # 0.01*3, 0.2*2, 0.5*1: already monotone
        ([0.6, 0.7], [1.0, 1.0]),  # 0.6*2 = 1.2: capped at 1, and the larger p not below it
        ([0.04], [0.04]),  # a family of one: unadjusted
    ],
)
def test_holm_known_adjusted_values(p, adjusted):
    got = holm(np.array(p))
    assert isinstance(got, np.ndarray) and got == pytest.approx(adjusted)


def test_crossed_test_recovers_known_components_and_agrees_with_itself():
    """Simulated seeds × queries differences with known seed, query and residual SDs: the components come back, the
    CI excludes 0 exactly when p < 0.05, and TOST calls a zero effect equivalent within a wide margin."""
    from pipeline.experiments.power import simulate_null
    from pipeline.experiments.stats import Crossed, crossed_test

    rng = np.random.default_rng(3)
    comp = {"seed": 0.01**2, "query": 0.09**2, "residual": 0.17**2}
    est = np.array([list(Crossed.of(simulate_null(comp, 8, 400, rng)).components().values()) for _ in range(200)])
    assert np.sqrt(est.mean(axis=0)) == pytest.approx([0.01, 0.09, 0.17], rel=0.1)
    for _ in range(50):
        d = simulate_null(comp, 5, 100, rng) + 0.03
        res = crossed_test(d, np.zeros_like(d), margin=0.02)
        assert (res["ci_low"] > 0 or res["ci_high"] < 0) == (res["p"] < 0.05)
        assert res["ci_low"] < res["delta"] < res["ci_high"]
    big = crossed_test(np.full((3, 10), 0.5), np.full((3, 10), 0.5), margin=0.02)
    assert big["p"] == 1.0 and big["p_equivalence"] == 0.0
    with pytest.raises(StatsError):
        crossed_test(np.zeros((1, 10)), np.zeros((1, 10)))


def test_crossed_test_holds_its_level_and_counts_seed_variance():
    """Null data with a large seed effect: the crossed t rejects at about its nominal rate (a query-level t would
    reject almost always), and its CI covers the true difference about 95 % of the time."""
    from pipeline.experiments.power import type_one_error

    comp = {"seed": 0.02**2, "query": 0.09**2, "residual": 0.17**2}
    rate = type_one_error(comp, 5, 200, sims=400, alpha=0.05, seed=1, bootstrap=False)
    assert 0.02 <= rate <= 0.085


def test_pooled_test_and_outcomes():
    from pipeline.experiments.power import simulate_null
    from pipeline.experiments.stats import OUTCOMES, crossed_test, outcome, pooled_test

    rng = np.random.default_rng(4)
    comp = {"seed": 0.005**2, "query": 0.05**2, "residual": 0.1**2}
    parts = [crossed_test(simulate_null(comp, 5, 300, rng) + shift, np.zeros((5, 300)), margin=0.02)
             for shift in (0.0, 0.0, 0.0, 0.0)]  # fmt: skip
    pooled = pooled_test(parts, margin=0.02)
    assert pooled["delta"] == pytest.approx(np.mean([p["delta"] for p in parts]))
    assert pooled["se"] == pytest.approx(np.sqrt(sum(p["se"] ** 2 for p in parts)) / 4)
    assert pooled["se"] < min(p["se"] for p in parts)
    assert pooled["p_equivalence"] < 0.05 and pooled["Q_df"] == 3 and pooled["tau"] >= 0
    # heterogeneous languages: Q large, tau near the spread of the shifts
    het = [crossed_test(simulate_null(comp, 5, 300, rng) + s, np.zeros((5, 300))) for s in (-0.06, 0.0, 0.06, 0.12)]
    h = pooled_test(het)
    assert h["Q_p"] < 0.001 and h["tau"] == pytest.approx(np.std([-0.06, 0.0, 0.06, 0.12], ddof=1), rel=0.35)
    # the sensitivity analysis with languages random: its HKSJ CI (t on 3 df) is far wider than the declared
    # fixed-language CI when the languages differ, and is that of the t test over the 4 language means when their
    # SEs are equal (then DL's weights are equal too)
    assert h["re_ci_low"] < h["re_delta"] < h["re_ci_high"]
    assert h["re_ci_high"] - h["re_ci_low"] > 5 * (h["ci_high"] - h["ci_low"])
    d = np.array([p["delta"] for p in het])
    half = stats.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert (h["re_ci_low"], h["re_ci_high"]) == pytest.approx((d.mean() - half, d.mean() + half), abs=0.01)
    one = pooled_test(het[:1])
    assert np.isnan(one["re_ci_low"]) and np.isnan(one["Q_p"]) and one["delta"] == het[0]["delta"]
    assert outcome(0.03, 0.01, 0.9) == OUTCOMES[0] and outcome(-0.03, 0.01, 0.9) == OUTCOMES[1]
    assert outcome(0.001, 0.6, 0.01) == OUTCOMES[2] and outcome(0.01, 0.3, 0.3) == OUTCOMES[3]
