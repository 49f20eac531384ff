"""pipeline.compare: experiment selection, grouping over seeds and paired significance tests."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from pipeline import compare
from pipeline.compare import CompareError, paired_tests, parse_exp_show, select

QRELS = "q1 0 d1 1\nq2 0 d2 1\nq3 0 d3 1\nq4 0 d4 1\n"


def _run(good: set[str]) -> str:
    """A run where the queries in ``good`` find their document first, the others second."""
    lines = []
    for q in ("q1", "q2", "q3", "q4"):
        rel, other = f"d{q[1]}", "dx"
        first, second = (rel, other) if q in good else (other, rel)
        lines += [f"{q} Q0 {first} 1 2.0 t", f"{q} Q0 {second} 2 1.0 t"]
    return "\n".join(lines) + "\n"


def _exp(name, aug, seed, ap, lang="swh", loss="ot"):
    params = {"seed": 13, "lang": lang, "aug": aug, "distill": {"seed": seed, "loss": loss}}
    evals = {
        f"metrics/eval/{s}.json": {"data": {"available": True, "student": {"AP": ap}}}
        for s in ("in_domain", "shifted_genre", "shifted_register")
    }
    return {"rev": f"rev-{name}", "name": name, "data": {"params": {"params.yaml": {"data": params}}, "metrics": evals}}


def _exp_show(*exps):
    base = _exp("base", "none", 0, 0.5)
    return [{"rev": "workspace", "data": {}}, {**base, "experiments": [{"revs": [e]} for e in exps]}]


def test_parse_and_select_rejects_confounded_experiments():
    rows = _exp_show(_exp("a", "backtranslation", 0, 0.6), _exp("b", "synthetic", 0, 0.55, loss="pooled"))
    exps = parse_exp_show(rows)
    assert [e.name for e in exps] == ["base", "a", "b"]
    with pytest.raises(CompareError, match="distill.loss"):
        select(exps, {})
    assert [e.name for e in select(exps, {"distill.loss": "ot"})] == ["base", "a"]

    # A param that a later commit added (absent from older experiments) does not confound with one value...
    newer = _exp("c", "synthetic", 1, 0.5)
    newer["data"]["params"]["params.yaml"]["data"]["train"] = {"nproc": 1}
    exps = parse_exp_show(_exp_show(_exp("a", "backtranslation", 0, 0.6), newer))
    assert [e.name for e in select(exps, {})] == ["base", "a", "c"]
    # ...but does with two.
    other = _exp("d", "synthetic", 2, 0.5)
    other["data"]["params"]["params.yaml"]["data"]["train"] = {"nproc": 2}
    with pytest.raises(CompareError, match="train.nproc"):
        select(parse_exp_show(_exp_show(newer, other)), {})


def test_a_setting_may_differ_between_languages_but_not_within_one():
    def nya(name, aug, seed, size):
        e = _exp(name, aug, seed, 0.5, lang="nya")
        e["data"]["params"]["params.yaml"]["data"]["augment"] = {"size": size}
        return e

    swh = _exp("s", "synthetic", 0, 0.5)
    swh["data"]["params"]["params.yaml"]["data"]["augment"] = {"size": 400}
    base_swh = _exp_show(swh)[1]
    base_swh["data"]["params"]["params.yaml"]["data"]["augment"] = {"size": 400}
    exps = parse_exp_show(
        [
            base_swh
            | {"experiments": [{"revs": [e]} for e in (swh, nya("n0", "none", 0, 100), nya("n1", "synthetic", 0, 100))]}
        ]
    )
    kept = select(exps, {})
    assert len(kept) == 4
    settings = compare.language_settings(kept)
    assert settings.to_dict("records") == [{"lang": "nya", "augment.size": 100}, {"lang": "swh", "augment.size": 400}]
    assert "# Per-language settings" in compare.render(
        compare.grouped(compare.summary_table(kept)), compare.pd.DataFrame(), None, settings
    )
    with pytest.raises(CompareError, match=r"augment.size \(lang nya\)"):
        select(parse_exp_show(_exp_show(nya("n0", "none", 0, 100), nya("n1", "synthetic", 0, 50))), {})


def test_paired_tests_match_scipy_and_detect_a_shift():
    rng = np.random.default_rng(0)
    b = rng.uniform(0, 1, 60)
    a = np.clip(b + 0.1 + rng.normal(0, 0.05, 60), 0, 1)
    res = paired_tests(a, b)
    assert res["p_t"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert res["d_z"] == pytest.approx((a - b).mean() / (a - b).std(ddof=1))
    assert res["p_t"] < 1e-6 and res["p_perm"] < 0.001 and res["delta"] > 0.05 and res["n_queries"] == 60
    same = paired_tests(b, b)
    assert same["p_t"] == 1.0 and same["p_perm"] == 1.0
    with pytest.raises(CompareError):
        paired_tests(a[:1], b[:1])


def test_main_writes_comparison_from_exp_show(tmp_path, monkeypatch):
    good = {
        "rev-base": {"q1"},
        "rev-bt0": {"q1", "q2", "q3"},
        "rev-bt1": {"q1", "q2", "q3", "q4"},
        "rev-sy0": {"q1", "q2"},
        "rev-no1": {"q1", "q2"},
    }

    def reader(path, rev):
        return QRELS if path.endswith("qrels.txt") else _run(good[rev])

    monkeypatch.setattr(compare, "_read_rev", reader)
    rows = _exp_show(
        _exp("bt0", "backtranslation", 0, 0.8),
        _exp("bt1", "backtranslation", 1, 0.9),
        _exp("sy0", "synthetic", 0, 0.7),
        _exp("no1", "none", 1, 0.7),
    )
    exp_json = tmp_path / "exps.json"
    exp_json.write_text(json.dumps(rows))
    out = tmp_path / "comparison.md"
    compare.main(["--exp-json", str(exp_json), "--out", str(out)])
    text = out.read_text()
    assert "0.8500 ± 0.0707" in text  # backtranslation over seeds 0 and 1
    assert "backtranslation − none" in text and "backtranslation − synthetic" in text
    assert "| swh    | backtranslation |       2 | 1.000 ± 0.000" in text  # robustness: every split has the same AP
    assert out.with_suffix(".png").stat().st_size > 1000 and out.with_suffix(".csv").exists()
    # per-query AP is 1 (found first) or 0.5; bt (seed mean) vs none (seed mean) over 4 queries:
    table = compare.summary_table(select(parse_exp_show(rows), {}))
    qap = {
        (r, s): compare.per_query(r, s, reader)
        for r, s in table[["rev", "split"]].drop_duplicates().itertuples(index=False)
    }
    tests = compare.contrasts(table, qap)
    row = tests[(tests.contrast == "backtranslation − none") & (tests.split == "in_domain")].iloc[0]
    bt = np.array([1.0, 1.0, 1.0, 0.75])  # q4: 0.5 (seed 0) and 1.0 (seed 1)
    no = np.array([1.0, 0.75, 0.5, 0.5])  # base finds q1; no1 finds q1, q2
    assert row["delta"] == pytest.approx((bt - no).mean()) and row["n_queries"] == 4 and row["seeds"] == "2/2"
