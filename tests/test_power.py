"""pipeline.experiments.power: the minimum detectable effect of a design, checked on simulated data with known
variance components, the pooled design arithmetic, the declared design in grid.yaml, and the committed report."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.experiments import designs, grid, power, results
from pipeline.experiments.grid import GridError
from pipeline.experiments.stats import (
    StatsError,
    crossed_test,
    equivalence_reach,
    mde,
    nested_test,
    pooled_test,
    satterthwaite,
)

COMP = {"seed": 0.01**2, "query": 0.09**2, "residual": 0.17**2}


def test_the_mde_is_detected_with_the_stated_power():
    """Data simulated with the known components and a true difference equal to the design's MDE: the crossed test at
    alpha / family rejects in about 80 % of the data sets; at a quarter of the MDE far less often."""
    n_seeds, n_queries, family = 5, 200, 2
    var, df = satterthwaite(power.design_terms(COMP, n_seeds, n_queries))
    target = mde(var, df, alpha=0.05, family=family, power=0.8)
    rng = np.random.default_rng(0)
    hits = {1.0: 0, 0.25: 0}
    for scale in hits:
        for _ in range(300):
            d = power.simulate_null(COMP, n_seeds, n_queries, rng) + scale * target
            hits[scale] += crossed_test(d, np.zeros_like(d))["p"] < 0.05 / family
    assert 0.72 <= hits[1.0] / 300 <= 0.88
    assert hits[0.25] / 300 < 0.2


def test_equivalence_reach_is_declared_with_the_stated_power():
    """With no true difference, TOST at the design's equivalence reach declares equivalence about 80 % of the time."""
    n_seeds, n_queries = 5, 200
    var, df = satterthwaite(power.design_terms(COMP, n_seeds, n_queries))
    reach = equivalence_reach(var, df, alpha=0.05, family=1, power=0.8)
    rng = np.random.default_rng(1)
    declared = 0
    for _ in range(300):
        d = power.simulate_null(COMP, n_seeds, n_queries, rng)
        declared += crossed_test(d, np.zeros_like(d), margin=reach)["p_equivalence"] < 0.05
    assert 0.72 <= declared / 300 <= 0.88


def test_pooled_design_is_the_mean_of_its_languages():
    """Four languages with the same components: the pooled SE is half a language's; an unmeasured pooled language
    takes the measured ones' mean components; the expected SE matches the pooled test on simulated data."""
    measured = pd.DataFrame(
        [
            {
                "lang": lang,
                "size": 400,
                "split": "shifted_genre",
                "seeds": 3,
                "queries": 200,
                "delta": 0.0,
                **{f"var_{k}": v for k, v in COMP.items()},
            }  # fmt: skip
            for lang in ("swh", "tgl")
        ]
    )
    table = power.design_table(measured, pooled=("swh", "tgl", "nya", "ben"), seed_counts=[5], query_counts=[1000],
                               family=2, alpha=0.05, power=0.8)  # fmt: skip
    one = table[table["lang"] == "swh"].iloc[0]
    pooled = table[table["lang"].str.startswith("pooled")].iloc[0]
    assert pooled["lang"] == "pooled (swh tgl measured)"
    assert pooled["se"] == pytest.approx(one["se"] / 2)
    assert pooled["mde"] < one["mde"]
    rng = np.random.default_rng(2)
    ses = [
        pooled_test([crossed_test(power.simulate_null(COMP, 5, 1000, rng), np.zeros((5, 1000))) for _ in range(4)])[
            "se"
        ]
        for _ in range(30)
    ]
    assert np.mean(ses) == pytest.approx(pooled["se"], rel=0.15)


def test_designs_are_declared_beside_the_grids(tmp_path):
    text = (
        "g:\n  - {aug: none}\nreports:\n  r:\n    - {grid: g}\n"
        "designs:\n  d:\n    report: r\n    contrast: backtranslation - synthetic\n    splits: [shifted_genre]\n"
        "    pooled: [swh, tgl]\n    margin: 0.02\n    alpha: 0.05\n    power: 0.8\n    target_mde: 0.02\n"
        "    seeds: 5\n    queries: 1000\n"
    )
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    d = designs.declared(path)["d"]
    assert (d.a, d.b, d.pooled, d.seeds, d.margin) == ("backtranslation", "synthetic", ("swh", "tgl"), 5, 0.02)
    assert grid.cells("g", path, {"aug": "none"}) and "designs" not in grid._read(path)[0]
    for bad, message in (
        ("report: r", r"designs.d.report: no report 'x'"),
        ("margin: 0.02", r"designs.d.margin: expected a float, got 'wide'"),
        ("seeds: 5", r"designs.d.seeds: expected a int, got None"),
        ("queries: 1000", r"designs.d.queries: expected a int, got True"),
    ):
        key = bad.split(":")[0]
        replacement = {"report": "report: x", "margin": "margin: wide", "seeds": "", "queries": "queries: yes"}[key]
        path.write_text(text.replace(bad, replacement))
        with pytest.raises(GridError, match=message):
            designs.declared(path)
    path.write_text(text.replace("margin: 0.02", "margin: 1"))  # YAML's 1 for 1.0
    assert designs.declared(path)["d"].margin == 1.0
    assert (d.roots, d.family) == (1, 1)  # roots left out: the generators fixed
    listed = "contrast: [backtranslation - none, forward - none]"
    several = text.replace("contrast: backtranslation - synthetic", listed)
    path.write_text(several + "    roots: 4\n")
    d = designs.declared(path)["d"]
    assert (d.contrasts, d.roots, d.family) == ((("backtranslation", "none"), ("forward", "none")), 4, 2)
    for bad, message in (
        ("    roots: 0\n", r"designs.d: roots and seeds must be >= 1, got 0 and 5"),
        ("    roots: 2.5\n", r"designs.d.roots: expected a int, got 2.5"),
    ):
        path.write_text(several + bad)
        with pytest.raises(GridError, match=message):
            designs.declared(path)
    path.write_text(several + "    secondary: [backtranslation - synthetic, 'keep: 0.5 - 1.0']\n")
    assert designs.declared(path)["d"].secondary == (("aug", "backtranslation", "synthetic"), ("keep", "0.5", "1.0"))
    path.write_text(several + "    secondary: ['tag: true - false']\n")
    with pytest.raises(GridError, match=r"designs.d.secondary: 'tag: true - false': the axis must be one of"):
        designs.declared(path)
    path.write_text(several.replace("[backtranslation - none, forward - none]", "[backtranslation-none]"))
    with pytest.raises(GridError, match=r"designs.d.contrast: expected 'A - B'"):
        designs.declared(path)


def test_the_declared_design_reaches_its_target_mde():
    """grid.yaml's decisive design: the committed power report says its pooled MDE on the first split, at its seeds
    and queries and every measured size, is at most the declared target."""
    design = designs.declared()["decisive"]
    rows = pd.DataFrame(json.loads(Path("reports/power.json").read_text(encoding="utf-8"))["designs"])
    chosen = rows[
        rows["lang"].str.startswith("pooled")
        & (rows["split"] == design.splits[0])
        & (rows["seeds"] == design.seeds)
        & (rows["queries"] == design.queries)
    ]
    assert len(chosen) >= 1 and (chosen["mde"] <= design.target_mde).all()


def _declaration(grid_text: str, design: designs.Design) -> dict:
    """What a design fixes in grid.yaml: its own entry, its report's selections and the grids they select."""
    raw = yaml.safe_load(grid_text)
    report = raw["reports"][design.report]
    grids = grid.selected_grids(report)
    return {"design": raw["designs"][design.name], "report": report, "grids": {g: raw[g] for g in grids}}


def test_every_result_of_a_design_ran_on_a_commit_that_declared_it():
    """The design before its results: every collected cell of a declared design ran on a commit (its ``baseline``)
    whose grid.yaml already declared that design, its report and its grids exactly as they are now."""
    for design in designs.declared().values():
        cells = set(designs.declared_cells(design))
        exps = [e for e in results.load(results.RESULTS_DIR) if e.name in cells]
        assert all(e.baseline for e in exps), [e.name for e in exps if not e.baseline]
        now = _declaration(Path("grid.yaml").read_text(encoding="utf-8"), design)
        for baseline in sorted({e.baseline for e in exps}):
            then = subprocess.run(["git", "show", f"{baseline}:grid.yaml"], capture_output=True, text=True)
            assert then.returncode == 0, f"commit {baseline} (a result's baseline) is not in this clone: {then.stderr}"
            assert _declaration(then.stdout, design) == now, f"{design.name} changed after cells ran on {baseline}"


@pytest.mark.parametrize(
    ("stem", "args"),
    [
        ("power", []),
        ("power_decisive", ["--report", "decisive", "--seeds", "5", "--queries", "1000"]),
        ("power_augment_help", ["--design", "augment_help"]),
    ],
)
def test_committed_power_report_regenerates_from_results(stem, args, tmp_path):
    """reports/power.{md,json} (the design's projection from earlier grids), reports/power_decisive.{md,json}
    (re-measured on its own cells so far) and reports/power_augment_help.{md,json} (issue 42's design) are what
    `python -m pipeline.experiments.power` writes from results/ with the arguments docs/results.md gives, byte for
    byte."""
    power.main([*args, "--out", str(tmp_path / f"{stem}.md")])
    for name in (f"{stem}.md", f"{stem}.json"):
        assert (tmp_path / name).read_bytes() == Path("reports", name).read_bytes(), f"reports/{name} differs"


NESTED_COMP = {"root": 0.01**2, "seed": 0.01**2, "query": 0.07**2, "residual": 0.17**2}


def test_the_nested_test_keeps_its_level_where_the_one_root_design_does_not():
    """Null data with a generator effect (root SD 0.01 AP), four languages, 3 root seeds x 2 replicate seeds, root
    seeds drawing overlapping query samples: the nested test rejects at about its nominal 5 %; the earlier design
    (one root seed, 6 replicate seeds, the pooled crossed test) well above it."""
    comps = dict.fromkeys(("swh", "tgl", "nya", "ben"), NESTED_COMP)
    rates = power.nested_type_one_error(comps, 3, 2, 200, 1100, sims=400, alpha=0.05, seed=3)
    assert 0.02 <= rates["nested"] <= 0.08
    assert rates["crossed, one root seed"] > 0.15


def test_the_nested_mde_is_detected_with_the_stated_power():
    """The nested design's expected variance (nested_terms) gives an MDE that the nested test detects about 80 %
    of the time on simulated data with that true difference, and its SE matches the simulated tests' mean SE."""
    comps = [NESTED_COMP] * 4
    roots, n_seeds, n_queries, family = 4, 1, 200, 2
    var, df = satterthwaite(power.nested_terms(comps, roots, n_seeds, n_queries))
    assert df == pytest.approx(4 * (roots - 1))
    target = mde(var, df, alpha=0.05, family=family, power=0.8)
    rng = np.random.default_rng(4)
    hits, ses = 0, []
    for _ in range(300):
        data = {
            lang: [m + target for m in power.simulate_nested_null(NESTED_COMP, roots, n_seeds, n_queries, 1100, rng)]
            for lang in ("swh", "tgl", "nya", "ben")
        }
        res = nested_test(data)
        hits += res["p"] < 0.05 / family
        ses.append(res["se"])
    assert 0.7 <= hits / 300 <= 0.9
    assert np.sqrt(np.mean(np.square(ses))) == pytest.approx(np.sqrt(var), rel=0.1)


def test_the_nested_test_by_hand():
    """Two languages, root-seed means known: the effect is the mean of the language means, the SE the root means'
    spread, per language on R - 1 df; one root seed is an error naming the language."""
    data = {
        "swh": [np.full((2, 3), 0.01), np.full((2, 3), 0.03), np.full((2, 3), 0.05)],
        "tgl": [np.full((2, 3), -0.01), np.full((2, 3), 0.01)],
    }
    res = nested_test(data, margin=0.02)
    assert res["delta"] == pytest.approx((0.03 + 0.0) / 2)
    var_swh, var_tgl = np.var([0.01, 0.03, 0.05], ddof=1) / 3, np.var([-0.01, 0.01], ddof=1) / 2
    assert res["se"] == pytest.approx(np.sqrt((var_swh + var_tgl) / 4))
    assert res["per_language"]["swh"]["df"] == 2 and res["per_language"]["tgl"]["df"] == 1
    assert res["per_language"]["swh"]["delta"] == pytest.approx(0.03)
    assert res["var_residual"] == pytest.approx(0, abs=1e-20)
    assert res["var_root"] == pytest.approx(np.mean([4e-4, 2e-4]))
    with pytest.raises(StatsError, match="nya: a nested test needs >= 2 root seeds"):
        nested_test({"nya": [np.zeros((2, 3))]})


def test_a_nested_design_is_projected_from_its_root_seed_means():
    """nested_projection: a language's root-mean variance from its measured root seeds, the unmeasured languages at
    the measured mean, the pooled variance sum(v / R) / L² on Satterthwaite df; the MDE falls with R."""
    design = designs.Design("n", "n", (("backtranslation", "none"),), ("shifted_genre",), ("swh", "tgl", "nya", "ben"),
                         0.02, 0.05, 0.8, 0.02, 1, 1000, 3)  # fmt: skip
    means = pd.DataFrame(
        [{"contrast": "backtranslation − none", "split": "shifted_genre", "lang": lang, "root_seed": r, "mean": m}
         for lang, ms in (("swh", [0.01, 0.03]), ("tgl", [0.00, 0.04])) for r, m in zip((13, 14), ms, strict=True)]
    )  # fmt: skip
    rows = power.nested_projection(means, design, [3, 4, 5]).set_index("roots")
    swh, tgl = np.var([0.01, 0.03], ddof=1), np.var([0.00, 0.04], ddof=1)
    fill = (swh + tgl) / 2  # nya and ben, unmeasured
    var, df = satterthwaite([(v / (3 * 16), 2) for v in (swh, tgl, fill, fill)])
    assert var == pytest.approx((swh + tgl + 2 * fill) / (3 * 16))
    assert rows.loc[3, "se"] == pytest.approx(np.sqrt(var)) and rows.loc[3, "df"] == pytest.approx(df)
    assert rows.loc[3, "mde"] == pytest.approx(mde(var, df, alpha=0.05, family=1, power=0.8))
    assert rows["mde"].is_monotonic_decreasing and rows.loc[3, "measured"] == "swh tgl"


def test_every_result_of_issue_42s_grids_ran_on_a_commit_that_declared_them():
    """Besides the design's own grid (above), the grids it reads secondary answers from (render.augment_help.GRIDS:
    the stopping rule, the quality axis, the controls) and their reports were declared, exactly as now, on the
    commit every one of their results ran on."""
    from pipeline.experiments.render.augment_help import GRIDS

    now = yaml.safe_load(Path("grid.yaml").read_text(encoding="utf-8"))
    declared = {name: (now[name], now["reports"][name]) for name in GRIDS}
    names = {cell: g for g in GRIDS for cell, _ in grid.cells(g)}
    exps = [e for e in results.load(results.RESULTS_DIR) if e.name in names]
    for baseline in sorted({e.baseline for e in exps}):
        assert baseline, "a result of these grids without the commit it ran on"
        then = subprocess.run(["git", "show", f"{baseline}:grid.yaml"], capture_output=True, text=True)
        assert then.returncode == 0, f"commit {baseline} (a result's baseline) is not in this clone: {then.stderr}"
        old = yaml.safe_load(then.stdout)
        for g in {names[e.name] for e in exps if e.baseline == baseline}:
            assert (old.get(g), old.get("reports", {}).get(g)) == declared[g], f"{g} changed after cells ran"
