"""pipeline.experiments.compare and .results: selection, contrasts and Holm families, declared reports, results
files (the statistics themselves: test_stats.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config.params import load_params
from pipeline.config.paths import SPLITS
from pipeline.experiments import cells, compare, contrasts, grid, results
from pipeline.experiments.compare import CompareError, select
from pipeline.experiments.results import parse_exp_show
from pipeline.experiments.stats import holm

QRELS = "q1 0 d1 1\nq2 0 d2 1\nq3 0 d3 1\nq4 0 d4 1\n"


def _run(good: set[str]) -> str:
    """A run where the queries in ``good`` find their document first (AP 1), the others second (AP 0.5)."""
    lines = []
    for q in ("q1", "q2", "q3", "q4"):
        rel, other = f"d{q[1]}", "dx"
        first, second = (rel, other) if q in good else (other, rel)
        lines += [f"{q} Q0 {first} 1 2.0 t", f"{q} Q0 {second} 2 1.0 t"]
    return "\n".join(lines) + "\n"


def _exp(name, aug, seed, ap, lang="swh", lr=5e-5, size=400, synth="gemma3-270m", root=13, mt=3, keep=1.0):
    params = {
        "seed": root,
        "lang": lang,
        "aug": aug,
        "mt": {"epochs": mt},
        "augment": {"size": size, "round_trip_keep": keep},
        "synth": {"model": synth},
        "distill": {"seed": seed, "loss": "ot", "lr": lr},
        "evaluate": {"scoring": "dense"},
    }
    evals = {
        f"metrics/eval/{s}.json": {"data": {"available": True, "student": {"AP": ap}}}
        for s in ("in_domain", "shifted_genre", "shifted_register")
    }
    return {"rev": f"rev-{name}", "name": name, "data": {"params": {"params.yaml": {"data": params}}, "metrics": evals}}


def _exp_show(*exps):
    base = _exp("base", "none", 0, 0.5)
    return [{"rev": "workspace", "data": {}}, {**base, "experiments": [{"revs": [e]} for e in exps]}]


def test_parse_and_select_rejects_confounded_experiments():
    rows = _exp_show(_exp("a", "backtranslation", 0, 0.6), _exp("b", "synthetic", 0, 0.55, lr=1e-4))
    exps = parse_exp_show(rows)
    assert [e.name for e in exps] == ["base", "a", "b"]
    assert [e.name for e in parse_exp_show(rows, commits=False)] == ["a", "b"]
    assert [e.baseline for e in exps] == ["", "rev-base", "rev-base"]  # an experiment's commit is the row it is under
    with pytest.raises(CompareError, match="distill.lr"):
        select(exps, {})
    assert [e.name for e in select(exps, {"distill.lr": "5e-05"})] == ["base", "a"]
    # the comparison's axes may vary: condition, replicate seed, root seed
    axes = [_exp("c", "synthetic", 1, 0.5, size=1000), _exp("d", "none", 2, 0.5)]
    axes[1]["data"]["params"]["params.yaml"]["data"]["seed"] = 14
    assert len(select(parse_exp_show(_exp_show(*axes)), {})) == 3

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
    # `grid` selects by the grid that named the experiment (pipeline.experiments.grid: NAME-values), e.g. bf16 cells
    # apart from the float32 ones of another grid.
    named = [_exp("answer-none-0", "none", 0, 0.5), _exp("dose-none-0", "none", 0, 0.5, lr=1e-4)]
    assert [e.name for e in select(parse_exp_show(_exp_show(*named)), {"grid": "answer"})] == ["answer-none-0"]
    # a|b matches either value
    named.append(_exp("loss-none-1", "none", 1, 0.5))
    got = select(parse_exp_show(_exp_show(*named)), {"grid": "answer|loss"})
    assert [e.name for e in got] == ["answer-none-0", "loss-none-1"]
    # several selections: an experiment matching any of them (a declared report's list)
    got = select(parse_exp_show(_exp_show(*named)), {"grid": "answer"}, {"grid": "loss", "distill.seed": "1"})
    assert [e.name for e in got] == ["answer-none-0", "loss-none-1"]
    with pytest.raises(CompareError, match=r"no experiment matches \{'grid': 'x'\} or \{'grid': 'y'\}"):
        select(parse_exp_show(_exp_show(*named)), {"grid": "x"}, {"grid": "y"})
    # a key that is no param of any experiment (a typo) is named, rather than matching nothing
    with pytest.raises(CompareError, match=r"selection key\(s\) \['distill.sed'\]: no param"):
        select(parse_exp_show(_exp_show(*named)), {"grid": "answer"}, {"distill.sed": "1"})


def test_queued_running_and_failed_experiments_are_left_out():
    rows = _exp_show(_exp("done", "synthetic", 0, 0.5), _exp("busy", "synthetic", 1, 0.5))
    rows[1]["experiments"][1]["executor"] = {"state": "running"}
    assert [e.name for e in parse_exp_show(rows, commits=False)] == ["done"]
    assert [e.name for e in parse_exp_show(rows, commits=False, unfinished=True)] == ["done", "busy"]
    rows[1]["experiments"][0]["executor"] = {"state": "success"}
    assert [e.name for e in parse_exp_show(rows, commits=False)] == ["done"]


def test_aug_none_ignores_the_size_and_counts_once():
    rows = _exp_show(_exp("n400", "none", 0, 0.5), _exp("n0", "none", 0, 0.5, size=0))
    kept = select(parse_exp_show(rows), {})
    assert [e.name for e in kept] == ["base"]  # base, n400 and n0 are one cell: none, 0 rows, seed 0
    assert compare.summary_table(kept, "desc")["size"].unique().tolist() == [0]


def test_the_mt_and_the_remedy_are_conditions_of_the_arms_that_use_them():
    """mt.epochs and augment.round_trip_keep are condition columns where an aug uses them (a machine-made pool):
    none and parallel are one cell whatever the MT, and an arm at another MT level, or with the remedy, pairs with
    that one none."""
    good = {"no": {"q1"}, "pa": {"q1", "q2"}, "no8": {"q1"}, "bt1": {"q1", "q3"}, "bt": {"q2"}, "rt": {"q2", "q3"}}
    runs = {f"rev-{n}": g for n, g in good.items()}
    specs = [("no", "none", 0, 0.5), ("pa", "parallel", 0, 0.6), ("no8", "none", 0, 0.5, {"mt": 8}),
             ("bt1", "backtranslation", 0, 0.6, {"mt": 1}), ("bt", "backtranslation", 0, 0.5),
             ("rt", "backtranslation", 0, 0.7, {"keep": 0.5})]  # fmt: skip
    exps = select(_results_fixture(runs, specs), {})
    assert sorted(e.name for e in exps) == ["bt", "bt1", "no", "pa", "rt"]  # no8 is no's cell
    table = compare.summary_table(exps, "desc")
    cond = table.drop_duplicates("exp").set_index("exp")[["mt_epochs", "keep"]]
    assert cond.loc[["no", "pa", "bt1", "rt"]].values.tolist() == [[0, 1.0], [0, 1.0], [1, 1.0], [3, 0.5]]
    per_query = {e.name: e for e in exps}
    declared = (
        contrasts.Contrast("s", "aug", "backtranslation", "none", tuple(SPLITS)),
        contrasts.Contrast("s", "keep", "0.5", "1.0", tuple(SPLITS)),
        contrasts.Contrast("s", "mt_epochs", "1", "3", tuple(SPLITS)),
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(contrasts, "declared_contrasts", lambda: declared)
        tests = contrasts.contrasts(
            table, per_query, test=lambda a, b, seed: {"delta": float((a - b).mean()), "p": 0.5}
        )
    got = {(r.contrast, r.mt_epochs, r.keep) for r in tests[tests.split == "in_domain"].itertuples()}
    # bt − none at both MT levels and with the remedy (none: one cell); 0.5 − 1.0 within bt; 1 − 3 epochs within bt
    assert got == {("backtranslation − none", 1, 1.0), ("backtranslation − none", 3, 1.0),
                   ("backtranslation − none", 3, 0.5), ("0.5 − 1.0", 3, 0.5), ("1 − 3", 1, 1.0)}  # fmt: skip


def test_a_setting_may_differ_between_languages_but_not_within_one():
    def nya(name, aug, seed, synth="smollm2"):
        return _exp(name, aug, seed, 0.5, lang="nya", synth=synth)

    exps = parse_exp_show(_exp_show(_exp("s", "synthetic", 0, 0.5), nya("n0", "none", 0), nya("n1", "synthetic", 0)))
    kept = select(exps, {})
    assert len(kept) == 4
    settings = compare.stratum_settings(kept)
    assert settings.to_dict("records") == [
        {"lang": "nya", "synth.model": "smollm2"},
        {"lang": "swh", "synth.model": "gemma3-270m"},
    ]
    table = compare.summary_table(kept, "desc")
    text = compare.render(table, compare.grouped(table), pd.DataFrame(), compare.robustness(table), settings)
    assert "# Settings per stratum" in text
    with pytest.raises(CompareError, match=r"synth.model \(lang nya, root_seed 13\)"):
        select(parse_exp_show(_exp_show(nya("n0", "none", 0), nya("n1", "synthetic", 0, synth="x"))), {})


def test_a_setting_may_differ_between_root_seeds_but_not_within_one():
    """A root seed run in another precision (e.g. float32 on a CPU without bf16 kernels) is a stratum setting."""

    def rooted(name, aug, seed, root, synth="gemma3-270m"):
        return _exp(name, aug, seed, 0.5, synth=synth, root=root)

    exps = parse_exp_show(_exp_show(rooted("a", "none", 0, 15, "x"), rooted("b", "synthetic", 0, 15, "x")))
    kept = select(exps, {})
    assert compare.stratum_settings(kept).to_dict("records") == [
        {"lang": "swh", "root_seed": "13", "synth.model": "gemma3-270m"},
        {"lang": "swh", "root_seed": "15", "synth.model": "x"},
    ]
    mixed = _exp_show(rooted("a", "none", 0, 15, "x"), rooted("b", "synthetic", 0, 15))
    with pytest.raises(CompareError, match=r"synth.model \(lang swh, root_seed 15\)"):
        select(parse_exp_show(mixed), {})


def _results_fixture(reader_runs: dict[str, set[str]], specs: list[tuple]) -> list[results.Experiment]:
    def reader(path, rev):
        return QRELS if path.endswith("qrels.txt") else _run(reader_runs[rev])

    exps = parse_exp_show(_exp_show(*(_exp(*s[:3], s[3], **(s[4] if len(s) > 4 else {})) for s in specs)), False)
    return [results.with_query_ap(e, reader) for e in exps]


def test_contrasts_pair_seeds_and_queries_and_adjust_per_family():
    runs = {
        "rev-bt0": {"q1", "q2", "q3"},
        "rev-bt1": {"q1", "q2", "q3", "q4"},
        "rev-sy0": {"q1", "q2"},
        "rev-sy1": {"q1"},
        "rev-no0": {"q1"},
        "rev-no1": {"q1", "q2"},
        "rev-bk0": {"q1", "q2", "q3", "q4"},  # 1000 rows
        "rev-bk1": {"q1", "q2", "q3", "q4"},
    }
    specs = [
        ("bt0", "backtranslation", 0, 0.8),
        ("bt1", "backtranslation", 1, 0.9),
        ("sy0", "synthetic", 0, 0.7),
        ("sy1", "synthetic", 1, 0.6),
        ("no0", "none", 0, 0.6),
        ("no1", "none", 1, 0.7),
        ("bk0", "backtranslation", 0, 1.0, {"size": 1000}),
        ("bk1", "backtranslation", 1, 1.0, {"size": 1000}),
    ]
    exps = _results_fixture(runs, specs)
    table = compare.summary_table(exps, "desc")
    tests = compare.contrasts(table, {e.name: e for e in exps})
    by = {(r.family, r.split, r.contrast, r.size): r for r in tests.itertuples()}
    # primary: bt − synthetic at 400 rows on the two shifted splits only (no synthetic at 1000)
    primary = tests[tests.family == "primary"]
    assert sorted(primary.split) == ["shifted_genre", "shifted_register"] and set(primary["size"]) == {400}
    assert (primary.family_size == 2).all()
    # secondary: bt − none at 400 and at 1000 rows (none is the 0-row point of every size), synthetic − none
    r = by[("secondary", "in_domain", "backtranslation − none", 1000)]
    bt = np.array([[1, 1, 1, 1], [1, 1, 1, 1]])
    no = np.array([[1, 0.5, 0.5, 0.5], [1, 1, 0.5, 0.5]])
    assert r.delta == pytest.approx((bt - no).mean()) and (r.seeds, r.queries) == (2, 4)
    secondary = tests[tests.family == "secondary"]
    assert len(secondary) == 9 and (secondary.family_size == 9).all()
    assert np.allclose(secondary.p_holm, holm(secondary.p))
    assert (tests.p_holm >= tests.p).all()


def test_auto_precision_is_grouped_by_what_ran():
    """Two cells declared `auto` that ran bf16 and fp32 are two settings, never one called 'auto'."""
    exps = []
    for name, ran in (("a", "bf16"), ("b", "fp32")):
        params = {"lang": "swh", "seed": 13, "aug": "none", "distill.seed": 0, "train.precision": "auto"}
        metrics = {"metrics/distill.json": {"precision": ran}}
        exps.append(results.ran_params(results.Experiment(name, "r", params, metrics)))
    assert [e.params["train.precision"] for e in exps] == ["bf16", "fp32"]
    with pytest.raises(compare.CompareError, match="train.precision"):
        compare.select(exps, {"lang": "swh"})  # varies within a stratum: refused, as an explicit value would be
    explicit = results.Experiment("c", "r", {"train.precision": "fp32", "lang": "swh"}, {})
    assert results.ran_params(explicit).params["train.precision"] == "fp32"
    unsaid = results.Experiment("d", "r", {"train.precision": "auto"}, {"metrics/distill.json": {}})
    with pytest.raises(results.ResultsError, match="d: train.precision is auto"):
        results.ran_params(unsaid)


def test_main_from_exp_show_and_from_results_agree(tmp_path, monkeypatch):
    runs = {"rev-base": {"q1"}, "rev-bt0": {"q1", "q2", "q3"}, "rev-bt1": {"q1", "q2", "q3", "q4"},
            "rev-sy0": {"q1", "q2"}, "rev-no1": {"q1", "q2"}, "rev-bk0": {"q1", "q2", "q3", "q4"}}  # fmt: skip

    def reader(path, rev):
        if path.endswith(".info.json"):  # beside each metrics file: names, signatures (pipeline.io.write_metrics)
            if path != "metrics/eval/in_domain.info.json":
                raise FileNotFoundError(path)
            return json.dumps({"student": {"signature": {"run": rev}}})
        return QRELS if path.endswith("qrels.txt") else _run(runs[rev])

    monkeypatch.setattr(results, "_read_rev", reader)
    rows = _exp_show(
        _exp("bt0", "backtranslation", 0, 0.8),
        _exp("bt1", "backtranslation", 1, 0.9),
        _exp("sy0", "synthetic", 0, 0.7),
        _exp("no1", "none", 1, 0.7),
        _exp("bk0", "backtranslation", 0, 0.95, size=1000),
    )
    monkeypatch.setattr(results, "exp_show", lambda all_commits=False: rows)
    live = tmp_path / "live" / "comparison.md"
    compare.main(["--out", str(live)])
    text = live.read_text()
    assert "0.8500 ± 0.0707" in text  # backtranslation, 400 rows, over seeds 0 and 1
    assert "backtranslation − none" in text and "backtranslation − synthetic" in text and "p (Holm)" in text
    assert live.with_suffix(".png").stat().st_size > 1000 and live.with_name("comparison_by_size.png").exists()
    per_seed = pd.read_csv(live.with_suffix(".csv"))
    assert {"exp", "seed", "split", "AP", "size"} <= set(per_seed.columns) and len(per_seed) == 6 * 3

    # results files: the commits are not experiments, so the live comparison above had one more (base)
    exp_json = tmp_path / "exps.json"
    exp_json.write_text(json.dumps(rows))
    out = tmp_path / "results"
    results.main(["--exp-json", str(exp_json), "--out", str(out)])
    assert sorted(p.name for p in out.iterdir()) == ["bk0.json", "bt0.json", "bt1.json", "no1.json", "sy0.json"]
    record = json.loads((out / "bt1.json").read_text())
    assert record["params"]["distill.seed"] == 1 and record["baseline"] == "rev-base"  # the commit it ran on
    assert results.load(out)[1].baseline == "rev-base"
    assert record["per_query_ap"]["in_domain"] == {"desc": {"q1": 1.0, "q2": 1.0, "q3": 1.0, "q4": 1.0}}
    assert record["metrics"]["metrics/eval/in_domain.json"]["student"] == {"AP": 0.9, "signature": {"run": "rev-bt1"}}
    before = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    results.main(["--exp-json", str(exp_json), "--out", str(out)])
    assert before == {p: p.stat().st_mtime_ns for p in out.iterdir()}  # collecting again changes nothing

    # from the files, twice: byte-identical outputs, and no experiment refs needed
    monkeypatch.setattr(results, "exp_show", lambda all_commits=False: pytest.fail("read refs"))
    monkeypatch.setattr(results, "_read_rev", lambda *a: pytest.fail("read refs"))
    first, second = tmp_path / "a" / "comparison.md", tmp_path / "b" / "comparison.md"
    for where in (first, second):
        compare.main(["--results", str(out), "--where", "lang=swh", "--out", str(where)])
    for name in ("comparison.md", "comparison.csv", "comparison_tests.csv", "comparison.png", "comparison_by_size.png"):
        assert (first.parent / name).read_bytes() == (second.parent / name).read_bytes(), name


def test_results_never_overwrite_another_experiment_of_the_same_name(tmp_path):
    """A grid cell's name survives a change of default (e.g. train.precision): collecting the re-run must not
    replace the old cell's file, and writes nothing at all when one file clashes."""

    def exp(name, precision):
        params = {"aug": "none", "train.precision": precision}
        return results.Experiment(name, "rev", params, {}, {})

    results.write([exp("cell-0", "fp32")], tmp_path)
    before = (tmp_path / "cell-0.json").read_bytes()
    with pytest.raises(results.ResultsError, match=r"cell-0.json holds another experiment.*train.precision"):
        results.write([exp("cell-1", "bf16"), exp("cell-0", "bf16")], tmp_path)
    assert (tmp_path / "cell-0.json").read_bytes() == before and not (tmp_path / "cell-1.json").exists()
    assert results.write([exp("cell-0", "fp32")], tmp_path) == []  # the same experiment again: a no-op


def test_results_errors_name_the_file(tmp_path):
    with pytest.raises(results.ResultsError, match="no experiment results"):
        results.load(tmp_path)
    (tmp_path / "x.json").write_text('{"name": "x"}')
    with pytest.raises(results.ResultsError, match=r"x.json: missing key"):
        results.load(tmp_path)


@pytest.mark.parametrize("report", sorted(compare.declared_reports()))
def test_committed_reports_regenerate_from_committed_results(report, tmp_path, monkeypatch):
    """In a clone without experiment refs, every declared report is rewritten from results/ byte for byte."""
    monkeypatch.setattr(results, "exp_show", lambda all_commits=False: pytest.fail("read experiment refs"))
    monkeypatch.setattr(results, "_read_rev", lambda *a: pytest.fail("read experiment refs"))
    ours = {report, f"{report}_tests", f"{report}_by_size", f"{report}_answer", f"{report}_forest"}
    committed = sorted(p for p in Path("reports").glob(f"{report}*") if p.stem in ours)  # not optical_fp32.*
    try:
        select(results.load("results"), *compare.declared_reports()[report])
    except CompareError as err:  # a declared grid that has not run yet: nothing to regenerate, nothing committed
        assert "no experiment matches" in str(err) and committed == [], (report, committed)
        return
    assert {p.name for p in committed} >= {f"{report}.md", f"{report}.csv", f"{report}_tests.csv", f"{report}.png"}
    # the answer is what `python -m pipeline.experiments.compare --results results/` writes, as the README says
    argv = ["--results", "results"] if report == compare.DEFAULT_REPORT else ["--report", report]
    compare.main([*argv, "--out", str(tmp_path / f"{report}.md")])
    for path in committed:
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), f"{path} differs from its regeneration"


def test_each_language_is_charted_at_its_own_augmentation_size(tmp_path, monkeypatch):
    """A language run at a smaller augment.size (nya: 100 rows, others 400) keeps its augmented bars, and one size
    per language is not a dose–response."""
    seen = {}
    monkeypatch.setattr(compare, "panels_bar_chart", lambda bars, *a: seen.setdefault("bars", bars))
    exps = [
        _exp("s", "backtranslation", 0, 0.6),
        _exp("n", "backtranslation", 0, 0.4, lang="nya", size=100),
        _exp("n0", "none", 0, 0.3, lang="nya"),
    ]
    table = compare.summary_table(select(parse_exp_show(_exp_show(*exps)), {}), "desc")
    assert compare.plot(table, compare.grouped(table), tmp_path / "c.png") == [tmp_path / "c.png"]
    bars = seen["bars"]
    assert sorted(set(zip(bars["lang"], bars["aug"].astype(str), bars["size"], strict=True))) == [
        ("nya", "backtranslation", 100),
        ("nya", "none", 0),
        ("swh", "backtranslation", 400),
        ("swh", "none", 0),
    ]


def test_reports_are_read_from_the_grid_file(tmp_path):
    """grid.yaml declares the reports (pipeline.experiments.grid.reports); --report names one of them, and the
    default of --results alone must be among them."""
    declared = compare.declared_reports()
    assert declared == grid.reports(grid.GRID_FILE) and compare.DEFAULT_REPORT in declared
    assert all(
        isinstance(s, tuple) and all(isinstance(v, str) for w in s for v in w.values()) for s in declared.values()
    )
    path = tmp_path / "grid.yaml"
    path.write_text("g:\n  - {aug: none}\nreports:\n  other:\n    - {grid: g}\n")
    with pytest.raises(CompareError, match=r"grid.yaml: reports: no 'comparison' \(the report --results alone"):
        compare.declared_reports(path)
    with pytest.raises(CompareError, match=r"grid.yaml: no report 'nope' in reports: \(declared: \["):
        compare.main(["--report", "nope", "--out", str(tmp_path / "x.md")])


def test_contrasts_are_read_from_the_grid_file(tmp_path):
    """grid.yaml declares the contrast families; the first contrast is the primary one, on the shifted splits; a
    malformed entry is one error naming it."""
    from pipeline.experiments.contrasts import declared_contrasts, families

    declared = declared_contrasts()
    assert families(declared) == ["primary", "secondary", "control", "optical"]
    primary = declared[0]
    assert (primary.axis, primary.a, primary.b, primary.splits) == (
        "aug", "backtranslation", "synthetic", ("shifted_genre", "shifted_register"),
    )  # fmt: skip
    assert all(c.splits == tuple(SPLITS) for c in declared if c.family == "optical")
    path = tmp_path / "grid.yaml"
    for body, match in [
        ("", r"grid.yaml: no contrasts:"),
        ("contrasts:\n  f: {aug: a - b}\n", r"contrasts.f: expected a non-empty list of mappings"),
        ("contrasts:\n  f:\n    - {size: 1 - 2}\n", r"contrasts.f\[0\]: expected one axis of \['aug', 'loss'"),
        ("contrasts:\n  f:\n    - {aug: a-b}\n", r"contrasts.f\[0\].aug: expected 'A - B', got 'a-b'"),
        ("contrasts:\n  f:\n    - {aug: a - b, splits: [x]}\n", r"contrasts.f\[0\].splits: expected a list of"),
    ]:
        path.write_text("g:\n  - {aug: none}\n" + body)
        with pytest.raises(grid.GridError, match=match):
            declared_contrasts(path)


def _cell(name: str, params: dict, queries: list[str], ap) -> results.Experiment:
    """A record of both shifted splits with the same per-query AP (``desc`` queries) on each."""
    per_query = dict(zip(queries, map(float, ap), strict=True))
    metrics = {f"metrics/eval/{s}.json": {"available": True, "student": {"AP": float(np.mean(ap))}}
               for s in ("shifted_genre", "shifted_register")}  # fmt: skip
    ap_by_split = {s: {"desc": per_query} for s in ("shifted_genre", "shifted_register")}
    return results.Experiment(name, "rev", params, metrics, ap_by_split)


def _design_exps(shift: dict[str, float], noise: float, rng) -> list:
    """Back-translation and synthesis cells (4 replicate seeds × 100 queries per split) whose per-query AP differ by
    ``shift[lang]`` plus noise."""

    exps = []
    base = rng.uniform(0.2, 0.8, (len(shift), 100))
    for li, (lang, delta) in enumerate(shift.items()):
        for aug in ("backtranslation", "synthetic"):
            for seed in range(4):
                ap = base[li] + (delta if aug == "backtranslation" else 0.0) + rng.normal(0, noise, 100)
                params = {"seed": 13, "lang": lang, "aug": aug, "augment.size": 1000, "distill.seed": seed,
                          "distill.loss": "ot", "evaluate.scoring": "dense"}  # fmt: skip
                exps.append(_cell(f"d-{lang}-{aug}-{seed}", params, [f"q{j}" for j in range(100)], ap))
    return exps


def test_design_answer_pools_languages_and_ends_in_one_of_four_outcomes():
    from pipeline.experiments.designs import Design
    from pipeline.experiments.stats import crossed_test, pooled_test

    design = Design("d", "d", (("backtranslation", "synthetic"),), ("shifted_genre", "shifted_register"),
                    ("swh", "tgl", "nya", "ben"), 0.02, 0.05, 0.8, 0.02, 4, 100, 1)  # fmt: skip
    rng = np.random.default_rng(5)
    for shift, noise, want in (
        ({"swh": 0.06, "tgl": 0.05, "nya": 0.07}, 0.05, "backtranslation better"),
        ({"swh": -0.06, "tgl": -0.05, "nya": -0.07}, 0.05, "synthetic better"),
        ({"swh": 0.0, "tgl": 0.0, "nya": 0.0}, 0.01, "equivalent within ±0.02"),
        ({"swh": 0.0, "tgl": 0.0, "nya": 0.0}, 0.4, "inconclusive"),
    ):
        exps = _design_exps(shift, noise, rng)
        by_name = {e.name: e for e in exps}
        answer = compare.design_answer(compare.summary_table(exps, "desc"), by_name, design)
        pooled = answer[answer["pooled"]]
        assert list(pooled["split"]) == ["shifted_genre", "shifted_register"]
        assert set(pooled["outcome"]) == {want}, (want, pooled[["delta", "p_holm", "p_equivalence_holm"]])
        assert (pooled["languages"] == "swh tgl nya").all() and (pooled["family_size"] == 2).all()
        mine = answer[~answer["pooled"]]
        assert len(mine) == 6 and (mine["family_size"] == 6).all()
        # the pooled row is pooled_test over the per-language crossed tests
        table = compare.summary_table(exps, "desc")
        parts = []
        for lang in ("swh", "tgl", "nya"):
            sub = table[(table["lang"] == lang) & (table["split"] == "shifted_genre")]
            a, b = (
                cells.seed_query_matrix(sub[sub["aug"] == x], by_name, "shifted_genre")
                for x in ("backtranslation", "synthetic")
            )
            parts.append(crossed_test(a.to_numpy(), b.to_numpy(), margin=0.02))
        want_pooled = pooled_test(parts, margin=0.02)
        got = pooled.iloc[0]
        assert got["delta"] == pytest.approx(want_pooled["delta"]) and got["se"] == pytest.approx(want_pooled["se"])
        assert (got["ci_low"] > 0 or got["ci_high"] < 0) == (got["p"] < 0.05)
        assert got["re_ci_low"] == pytest.approx(want_pooled["re_ci_low"])  # the sensitivity analysis beside it
        text = compare.render_answer(answer, design, 24, 24)
        assert "All 24 declared cells have run" in text and "languages random" in text
        assert f"{got['re_delta']:+.4f} [{got['re_ci_low']:+.4f}, {got['re_ci_high']:+.4f}]" in text


def test_design_report_is_interim_until_every_declared_cell_ran():
    """The declared design's report says it is not the answer while cells are missing; a contrast with one seed
    has no seed variance and is left out, not tested."""
    from pipeline.experiments.designs import Design

    design = Design("d", "d", (("backtranslation", "synthetic"),), ("shifted_genre",), ("swh",), 0.02, 0.05, 0.8,
                    0.02, 4, 100, 1)  # fmt: skip
    exps = _design_exps({"swh": 0.05}, 0.05, np.random.default_rng(6))
    answer = compare.design_answer(compare.summary_table(exps, "desc"), {e.name: e for e in exps}, design)
    assert "Interim: 8 of the 20 declared cells" in compare.render_answer(answer, design, 8, 20)
    assert set(compare.interim(answer, 8, 20)["outcome"]) == {"interim"}  # no outcome before every cell ran
    assert compare.interim(answer, 20, 20)["outcome"].equals(answer["outcome"])
    assert "Interim" not in compare.render_answer(answer, design, 20, 20)
    assert compare.crossed_t(np.zeros((1, 5)), np.ones((1, 5)), 0) is None
    one_seed = [e for e in exps if e.params["distill.seed"] == 0]
    table = compare.summary_table(one_seed, "desc")
    tests = compare.contrasts(table, {e.name: e for e in one_seed}, compare.crossed_t)
    assert tests.empty


def _nested_exps(shift: dict[str, float], root_sd: float, rng, remedy: float | None = None) -> list:
    """aug none and two augmentations under 3 root seeds per language (2 replicate seeds × 60 queries each, a query
    sample of its own per root seed): each augmentation's per-query AP is none's plus ``shift[lang]`` plus a
    generator effect of SD ``root_sd`` per root seed and augmentation, plus noise. With ``remedy``, also
    backtranslation with the remedy on (round-trip keep 0.5), ``remedy`` above backtranslation."""

    arms = [("none", 1.0), ("backtranslation", 1.0), ("forward", 1.0)] + ([("backtranslation", 0.5)] if remedy else [])
    exps = []
    for lang, delta in shift.items():
        for root in (13, 14, 15):
            base = rng.uniform(0.2, 0.8, 60)
            queries = [f"q{root}-{j}" for j in range(60)]
            plain = delta + rng.normal(0, root_sd)
            for aug, keep in arms:
                generator = {"none": 0.0, "forward": delta + rng.normal(0, root_sd)}.get(aug, plain)
                generator += remedy if keep < 1 else 0.0
                for seed in range(2):
                    ap = base + generator + rng.normal(0, 0.05, 60)
                    params = {"seed": root, "lang": lang, "aug": aug, "augment.size": 0 if aug == "none" else 400,
                              "distill.seed": seed, "distill.loss": "ot", "evaluate.scoring": "dense",
                              "mt.epochs": 3, "augment.round_trip_keep": keep}  # fmt: skip
                    exps.append(_cell(f"n-{lang}-{root}-{aug}-{keep}-{seed}", params, queries, ap))
    return exps


def test_a_design_tests_its_secondary_contrasts_beside_the_primary_ones():
    """Secondary contrasts (forward − backtranslation, the remedy − plain backtranslation) are nested tests of their
    own family; the remedy's cells change no primary row (the primary arms are the plain ones); the markdown lists
    every contrast."""
    from pipeline.experiments.designs import Design

    args = ("n", "n", (("backtranslation", "none"),), ("shifted_genre", "shifted_register"), ("swh", "tgl"),
            0.02, 0.05, 0.8, 0.02, 2, 60, 3)  # fmt: skip
    design = Design(*args, secondary=(("aug", "forward", "backtranslation"), ("keep", "0.5", "1.0")))
    exps = _nested_exps({"swh": 0.05, "tgl": 0.05}, 0.005, np.random.default_rng(3), remedy=0.1)
    table = compare.summary_table(exps, "desc")
    answer = compare.design_answer(table, {e.name: e for e in exps}, design)
    pooled = answer[answer["pooled"]].set_index(["contrast", "split"])
    assert set(answer["family"]) == {"primary (pooled)", "secondary (pooled)", "by language"}
    secondary = answer[answer["family"] == "secondary (pooled)"]
    assert len(secondary) == 4 and (secondary["family_size"] == 4).all()
    assert pooled.loc[("keep 0.5 − 1.0", "shifted_genre"), "delta"] == pytest.approx(0.1, abs=0.03)
    assert pooled.loc[("keep 0.5 − 1.0", "shifted_genre"), "outcome"] == "keep 0.5 better"
    plain = [e for e in exps if e.params["augment.round_trip_keep"] == 1.0]
    without = compare.design_answer(compare.summary_table(plain, "desc"), {e.name: e for e in plain}, Design(*args))
    primary = answer[answer["family"] == "primary (pooled)"].reset_index(drop=True)
    assert primary["delta"].tolist() == without[without["pooled"]]["delta"].tolist()
    text = compare.render_answer(answer, design, 10, 20)
    assert "Interim: 10 of the 20" in text and "keep 0.5 − 1.0" in text and "forward − backtranslation" in text


def test_a_design_with_root_seeds_tests_every_contrast_on_root_seed_means():
    """roots > 1: each primary contrast (A − none) per split is the nested test over the languages' root seeds, the
    family is contrasts × splits, per-language rows beside; a clear effect is found, a null one is not."""
    from pipeline.experiments.designs import Design
    from pipeline.experiments.stats import nested_test

    design = Design("n", "n", (("backtranslation", "none"), ("forward", "none")), ("shifted_genre", "shifted_register"),
                    ("swh", "tgl", "nya", "ben"), 0.02, 0.05, 0.8, 0.02, 2, 60, 3)  # fmt: skip
    exps = _nested_exps({"swh": 0.08, "tgl": 0.07, "nya": 0.09}, 0.01, np.random.default_rng(7))
    by_name = {e.name: e for e in exps}
    table = compare.summary_table(exps, "desc")
    answer = compare.design_answer(table, by_name, design)
    pooled = answer[answer["pooled"]]
    assert list(zip(pooled["contrast"], pooled["split"], strict=True)) == [
        ("backtranslation − none", "shifted_genre"), ("forward − none", "shifted_genre"),
        ("backtranslation − none", "shifted_register"), ("forward − none", "shifted_register"),
    ]  # fmt: skip
    assert (pooled["family_size"] == 4).all() and (pooled["languages"] == "swh tgl nya").all()
    assert set(pooled["outcome"]) == {"backtranslation better", "forward better"}
    mine = answer[~answer["pooled"]]
    assert len(mine) == 12 and (mine["family_size"] == 12).all() and (mine["df"] == 2).all()
    want = {}
    for lang in ("swh", "tgl", "nya"):
        want[lang] = []
        for root in (13, 14, 15):
            a, b = (
                cells.seed_query_matrix(
                    table[(table["lang"] == lang) & (table["split"] == "shifted_genre") & (table["root_seed"] == root)
                          & (table["aug"] == aug)], by_name, "shifted_genre",
                ).to_numpy()
                for aug in ("backtranslation", "none")
            )  # fmt: skip
            want[lang].append(a - b)
    got = pooled.iloc[0]
    expected = nested_test(want, margin=0.02)
    assert got["delta"] == pytest.approx(expected["delta"]) and got["se"] == pytest.approx(expected["se"])
    null = compare.design_answer(
        compare.summary_table(exps := _nested_exps(dict.fromkeys(("swh", "tgl"), 0.0), 0.01,
                                                   np.random.default_rng(8)), "desc"),
        {e.name: e for e in exps}, design,
    )  # fmt: skip
    assert "backtranslation better" not in set(null[null["pooled"]]["outcome"])


def _topical_record(name: str, aug: str, seed: int, title_ap: float, desc_ap: float) -> dict:
    """A results record in the layout of both query forms: metrics and per-query AP per split and form."""
    ap = {"title": title_ap, "desc": desc_ap}
    metrics = {
        f"metrics/eval/{s}.json": {
            "available": True,
            "collection": "topical",
            "student": {f: {"AP": ap[f]} for f in (("title",) if s == "topics" else ("title", "desc"))},
        }
        for s in ("in_domain", "shifted_genre", "shifted_register", "topics")
    }
    per_query = {
        s: {f: {"q1": ap[f], "q2": ap[f]} for f in (("title",) if s == "topics" else ("title", "desc"))}
        for s in ("in_domain", "shifted_genre", "shifted_register", "topics")
    }
    params = {"seed": 13, "lang": "swh", "aug": aug, "augment.size": 400, "distill.seed": seed, "distill.loss": "ot",
              "evaluate.scoring": "dense", "prepare.collection": "topical", "mt.engine": "ctranslate2"}  # fmt: skip
    return {"name": name, "rev": f"rev-{name}", "params": params, "metrics": metrics, "per_query_ap": per_query}


def test_records_carry_their_test_and_query_form_and_reports_say_which(tmp_path):
    """A record of both query forms reads per form; one from before (flat, desc only, no prepare.collection) reads as
    the known-item test's desc; a report compares title where every experiment has it, and says so first."""
    new = results.from_record(_topical_record("t0", "none", 0, 0.3, 0.6), "t0")
    assert new.forms("shifted_genre") == ["title", "desc"] and new.forms("topics") == ["title"]
    assert new.student("shifted_genre", "desc") == {"AP": 0.6} and new.collection == "topical"
    assert new.query_ap["shifted_genre"]["title"] == {"q1": 0.3, "q2": 0.3}
    with pytest.raises(results.ResultsError, match="no desc queries on topics"):
        new.student("topics", "desc")
    flat = {"name": "o", "rev": "r", "params": {"prepare.query_form": "desc"},
            "metrics": {"metrics/eval/in_domain.json": {"available": True, "student": {"AP": 0.5}}},
            "per_query_ap": {"in_domain": {"q1": 0.5}}}  # fmt: skip
    old = results.from_record(flat, "o")
    assert old.forms("in_domain") == ["desc"] and old.query_ap == {"in_domain": {"desc": {"q1": 0.5}}}
    assert old.collection == "known_item" and results.ran_params(old).params["prepare.collection"] == "known_item"
    assert old.mt_engine == "fairseq" and new.mt_engine == "ctranslate2"  # records from before CTranslate2: fairseq
    renamed = results.ran_params(results.Experiment("o", "r", {"distill.sinkhorn_iters": 1000}, {})).params
    assert renamed["distill.sinkhorn_max_iter"] == 1000 and "distill.sinkhorn_iters" not in renamed
    today = results.flatten(load_params().model_dump())
    assert set(results.RENAMED.values()) <= set(today) and not set(results.RENAMED) & set(today)
    assert results.to_record(new)["per_query_ap"] == _topical_record("t0", "none", 0, 0.3, 0.6)["per_query_ap"]

    directory = tmp_path / "results"
    directory.mkdir()
    for seed in (0, 1):
        for aug, ap in (("none", 0.3), ("backtranslation", 0.4)):
            record = _topical_record(f"{aug}-{seed}", aug, seed, ap + 0.01 * seed, 0.6)
            (directory / f"{aug}-{seed}.json").write_text(json.dumps(record))
    out = tmp_path / "reports" / "x.md"
    compare.main(["--results", str(directory), "--where", "lang=swh", "--out", str(out)])
    assert out.read_text().startswith("All numbers below: student AP on the `topical` test")
    assert "`title` queries; MT decoded by `ctranslate2` (`mt.engine`)" in out.read_text().splitlines()[0]
    table = pd.read_csv(out.with_suffix(".csv"))
    assert set(table["form"]) == {"title"} and set(table["split"]) == {"in_domain", "shifted_genre",
                                                                        "shifted_register", "topics"}  # fmt: skip
    compare.main(["--results", str(directory), "--where", "lang=swh", "--out", str(out), "--query-form", "desc"])
    assert set(pd.read_csv(out.with_suffix(".csv"))["form"]) == {"desc"}
    assert compare.report_form([old]) == "desc" and compare.report_form([new]) == "title"


def test_a_record_carries_the_cpu_that_ran_it(tmp_path):
    """results: the CPU of ``grid run``'s row for the experiment's name and commit goes into its record; a record
    without one is written as before."""
    times = tmp_path / "grid_times.json"
    rows = [{"name": "a", "baseline": "c1", "machine": "CPU X"}, {"name": "a", "baseline": "c0", "machine": "CPU Y"}]
    times.write_text(json.dumps({"tasks": rows}))
    known = results.machines(times)
    exp = results.Experiment("a", "rev", {"aug": "none"}, {}, baseline="c1")
    assert results.with_machine(exp, known).machine == "CPU X"
    assert results.with_machine(results.Experiment("b", "rev", {}, {}, baseline="c1"), known).machine == ""
    record = results.to_record(results.with_machine(exp, known))
    assert record["machine"] == "CPU X" and results.from_record(record, "x").machine == "CPU X"
    assert "machine" not in results.to_record(exp)


def test_the_augment_help_answer_on_desc_queries_regenerates(tmp_path, monkeypatch):
    """Issue 42's design answers on title queries and reports desc beside it (docs/results.md):
    reports/augment_help_desc.* is `compare --report augment_help --query-form desc`, byte for byte."""
    monkeypatch.setattr(results, "exp_show", lambda all_commits=False: pytest.fail("read experiment refs"))
    committed = sorted(Path("reports").glob("augment_help_desc*"))
    assert {p.name for p in committed} >= {"augment_help_desc.md", "augment_help_desc.csv"}
    compare.main(["--report", "augment_help", "--query-form", "desc", "--out", str(tmp_path / "augment_help_desc.md")])
    for path in committed:
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), f"{path} differs from its regeneration"
