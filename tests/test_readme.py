"""The README's front door: its two commands, exactly as written, and the generated tables of the docs."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_command(name: str) -> str:
    return subprocess.run([str(ROOT / ".ci/readme-command"), name], check=True, capture_output=True, text=True).stdout


def test_readme_names_one_run_and_one_test_command():
    assert "dvc repro" in readme_command("run")
    assert "pytest" in readme_command("test")
    assert "readme-command test" in (ROOT / ".ci/run").read_text()  # CI runs the README's test command itself


def test_readme_run_command_finishes_in_a_plain_shell(readme_run):
    """In a fresh copy with no venv on PATH (`python` is another interpreter), the run command builds the DAG."""
    result = readme_run.result
    assert result.returncode == 0, f"README run command failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert "Running stage 'report'" in result.stdout
    assert sorted(readme_run.evals) == ["in_domain", "shifted_genre", "shifted_register", "topics"]
    assert all(json.loads(text)["available"] for text in readme_run.evals.values())
    assert json.loads(readme_run.status) == {}, readme_run.status  # everything up to date afterwards


def test_plain_shell_has_no_venv_on_path(tmp_path):
    """The check above means something only if `python` and `dvc` in that shell are not the venv's."""
    from conftest import plain_shell_env

    path = plain_shell_env(tmp_path)["PATH"]
    venv_bin = Path(sys.executable).parent
    for name in ("python", "python3", "dvc"):
        found = shutil.which(name, path=path)
        assert found is None or Path(found).parent != venv_bin, (name, found)


def test_generated_doc_blocks_match_the_files():
    """Every table between `<!-- generated: … -->` markers equals what `python -m pipeline.experiments.docs` renders
    now."""
    from pipeline.experiments.docs import stale_blocks

    assert stale_blocks() == []


@pytest.mark.parametrize(("seconds", "text"), [(3299.6, "55 min 00 s"), (1099.0, "18 min 19 s"), (59.4, "0 min 59 s")])
def test_minutes_rounds_to_the_second_before_splitting(seconds, text):
    from pipeline.experiments.render import minutes

    assert minutes(seconds) == text


def test_answer_components_refuse_cells_of_one_language_that_differ_upstream(tmp_path, monkeypatch):
    """The per-language table shows one row of upstream metrics; two cells that disagree must not be hidden."""
    from pipeline.config import paths
    from pipeline.errors import PipelineError
    from pipeline.experiments import results
    from pipeline.experiments.render import answer as render_answer

    metrics = {
        "metrics/mt.json": {"dev_source": {"bleu": 20.0, "chrf": 40.0}, "dev_target_genre": {"bleu": 10, "chrf": 30}},
        "metrics/backtranslate.json": {"degenerate_rate": 0.01},
        "metrics/synthesize.json": {
            "prompts": 8,
            "generated": 9,
            "kept": 5,
            "pass_rate": 0.6,
            "quality_kept": {"word_validity": 0.9},
        },
        "metrics/bitext.json": {
            "augmentation": {"backtranslation": {"kept_in_pool": 7}, "synthetic": {"kept_in_pool": 5}}
        },
    }
    params = {"train.precision": "fp32", "augment.size": 4}
    (tmp_path / "reports").mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "reports" / "comparison.csv").write_text("exp,lang,AP\na,xx,0.5\nb,xx,0.6\n")
    for name in "ab":
        record = {"name": name, "rev": "r", "params": params, "metrics": metrics, "per_query_ap": {}}
        (tmp_path / "results" / f"{name}.json").write_text(json.dumps(record))
    monkeypatch.setattr(paths, "REPORTS_DIR", tmp_path / "reports")
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path / "results")
    assert "| `xx` | fp32 | 20.0 / 40.0 | 10.0 / 30.0 | 1.0% | 8 / 9 / 5 (pass rate 0.60) | 0.90 | 7 / 5 | 4 |" in (
        render_answer.answer_components()
    )
    metrics["metrics/mt.json"]["dev_source"]["bleu"] = 21.0
    changed = {"name": "b", "rev": "r", "params": params, "metrics": metrics, "per_query_ap": {}}
    (tmp_path / "results" / "b.json").write_text(json.dumps(changed))
    with pytest.raises(PipelineError, match="the xx cells of reports/comparison.csv differ upstream"):
        render_answer.answer_components()


def test_grid_times_say_where_a_cells_time_went(tmp_path, monkeypatch):
    """Cells that recorded their stages get the breakdown (evaluations summed over splits, baselines and other
    stages as upstream, the remainder as DVC's); cells from before that record only their wall time."""
    from pipeline.experiments.render import times

    rows = [
        {"name": "g-a", "baseline": "abcdef0", "started": "1", "seconds": 50.0, "status": "run"},
        {"name": "h-a", "baseline": "1234567", "started": "2", "seconds": 100.0, "status": "run", "stages": {
            "bitext": 2.0, "distill": 60.0, "evaluate@x": 10.0, "evaluate@y": 5.0, "evaluate_baselines@x": 8.0,
            "report": 1.0}},
        {"name": "h-b", "baseline": "1234567", "started": "3", "seconds": 90.0, "status": "run", "stages": {
            "bitext": 2.0, "distill": 58.0, "evaluate@x": 9.0, "evaluate@y": 5.0, "report": 1.0}},
    ]  # fmt: skip
    (tmp_path / "grid_times.json").write_text(json.dumps({"tasks": rows}))
    monkeypatch.setattr(times, "BENCHMARK_RESULTS", tmp_path)
    text = times.grid_times()
    assert "| `g` | – | `pipeline.experiments.grid run` | 1 | 1 | 0 min 50 s |" in text  # no record: no precision
    # medians over h's two cells: evaluate 15 and 14, upstream 8 and 0, DVC 14 and 15
    assert "| `h` | – | 2 | 2 | 59 | 14 | 1 | 4 | 14 |" in text and "| `g` | – | 1 |" not in text


def test_grid_times_group_cells_by_grid_and_the_precision_they_ran_in():
    """Every committed cell row says the precision it trained in; the table has one row per grid and precision,
    whatever the commits, and every cell of the file in one of them."""
    from pipeline.experiments.render import times

    rows = json.loads((ROOT / "benchmarks/results/grid_times.json").read_text())["tasks"]
    assert all(r.get("precision") in ("fp32", "bf16") for r in rows if r["status"] == "run")
    table = times.grid_times()
    assert table.count("| `decisive` | fp32 | `pipeline.experiments.grid run` |") == 1
    assert "| `loss_scoring` | fp32 |" in table and "| `loss_scoring` | bf16 |" in table
    first = table.split("\n\n")[0]  # the cells table (then the stages run ahead, the breakdown)
    counted = re.findall(r"^\| `\w+` \| (?:fp32|bf16|–) \| [^|]+ \| (\d+) \| \d+ \|", first, re.M)
    assert sum(map(int, counted)) == len(rows)  # the cells and the stage run ahead


def test_time_left_counts_the_cells_not_run_and_each_new_languages_upstream(tmp_path, monkeypatch):
    from pipeline.experiments.render import answer as render_answer

    cells = {f"g-{aug}-{lang}": {"lang": lang} for lang in ("aa", "bb", "cc") for aug in ("x", "y", "z")}
    ran = ["g-x-aa", "g-y-aa", "g-z-aa"]
    rows = [{"name": n, "baseline": "c", "started": str(i), "seconds": s, "status": "run"}
            for i, (n, s) in enumerate(zip(ran, [1000.0, 100.0, 120.0], strict=True))]  # fmt: skip
    rows.append({"name": "other-cell", "baseline": "c", "started": "9", "seconds": 5.0, "status": "run"})
    (tmp_path / "grid_times.json").write_text(json.dumps({"tasks": rows}))
    monkeypatch.setattr(render_answer, "BENCHMARK_RESULTS", tmp_path)
    text = render_answer._time_left(cells, ran)
    assert "(120 s over 3 cells) the 6 cells left take about 0.2 h" in text
    assert "each of the 2 languages not started (bb cc); aa's took 14 min 40 s beyond a cell." in text


def test_stages_run_ahead_of_their_cells_count_in_their_languages_upstream(tmp_path, monkeypatch):
    """``grid ahead`` rows: listed beside the cell times, not in a cell's breakdown, and part of their language's
    upstream in the time left, also for a language whose cells have not started."""
    from pipeline.experiments.render import answer as render_answer
    from pipeline.experiments.render import times

    cells = {f"g-{aug}-{lang}": {"lang": lang} for lang in ("aa", "bb", "cc") for aug in ("x", "y", "z")}
    ran = ["g-x-aa", "g-y-aa", "g-z-aa"]
    rows = [{"name": n, "baseline": "c", "started": str(i), "seconds": s, "status": "run", "stages": {"distill": 9.0}}
            for i, (n, s) in enumerate(zip(ran, [1000.0, 100.0, 120.0], strict=True))]  # fmt: skip
    rows += [{"name": f"g-x-{lang}@synthesize", "baseline": "c", "started": str(9 + i), "seconds": 600.0,
              "status": "ahead", "stages": {"synthesize": 500.0}} for i, lang in enumerate(("aa", "bb"))]  # fmt: skip
    (tmp_path / "grid_times.json").write_text(json.dumps({"tasks": rows}))
    monkeypatch.setattr(render_answer, "BENCHMARK_RESULTS", tmp_path)
    monkeypatch.setattr(times, "BENCHMARK_RESULTS", tmp_path)
    text = render_answer._time_left(cells, ran)
    assert "(120 s over 3 cells)" in text  # the ahead rows are no cell
    assert "(bb cc) (bb's stages run ahead of its cells took 10 min 00 s); aa's took 24 min 40 s beyond" in text
    table = times.grid_times()
    assert "| `g` | – | `pipeline.experiments.grid ahead` (one stage) | 2 | 1 | 20 min 00 s |" in table
    assert "`g-x-aa@synthesize` 10 min 00 s, `g-x-bb@synthesize` 10 min 00 s" in table
    assert "| `g` | – | 3 |" in table  # the breakdown: the three cells only


def test_answer_status_states_an_outcome_only_when_every_declared_cell_ran(tmp_path, monkeypatch):
    """The README's answer: with one declared cell missing, "not settled" and no outcome; with all of them, each
    shifted split's pooled outcome with its effect, CI, MDE and heterogeneity, and the per-language outcomes."""
    import pandas as pd

    from pipeline.config import paths
    from pipeline.experiments import designs, results
    from pipeline.experiments.render import answer as render_answer

    cells = designs.declared_cells(designs.declared()["decisive"])
    (tmp_path / "reports").mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "benchmarks").mkdir()
    shutil.copy(ROOT / "reports" / "power.json", tmp_path / "reports")
    shutil.copy(ROOT / "reports" / "decisive_tests.csv", tmp_path / "reports")
    (tmp_path / "benchmarks" / "grid_times.json").write_text(json.dumps({"tasks": []}))
    answer = pd.read_csv(ROOT / "reports" / "decisive_answer.csv")
    outcomes = ["backtranslation better", "equivalent within ±0.02"] + ["inconclusive"] * (len(answer) - 2)
    answer.assign(outcome=outcomes).to_csv(tmp_path / "reports" / "decisive_answer.csv", index=False)
    monkeypatch.setattr(paths, "REPORTS_DIR", tmp_path / "reports")
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(render_answer, "BENCHMARK_RESULTS", tmp_path / "benchmarks")
    for name in list(cells)[1:]:
        (tmp_path / "results" / f"{name}.json").write_text("{}")
    text = render_answer.answer_status()
    assert "**Not settled yet**" in text and "better**" not in text and f"{len(cells) - 1} of the {len(cells)}" in text
    (tmp_path / "results" / f"{next(iter(cells))}.json").write_text("{}")
    text = render_answer.answer_status()
    assert "Not settled" not in text and f"{len(cells)} of the {len(cells)} declared cells" in text
    genre, register = answer[answer["pooled"]].itertuples()
    assert f"- **shifted_genre: backtranslation better** — pooled over `{genre.languages}`" in text
    assert f"Δ AP {genre.delta:+.4f} [{genre.ci_low:+.4f}, {genre.ci_high:+.4f}]" in text
    assert f"MDE {genre.mde:.4f}" in text and f"Q = {genre.Q:.1f} on {int(genre.Q_df)} df" in text
    assert "- **shifted_register: equivalent within ±0.02**" in text
    assert "inconclusive (Holm p" in text and ", MDE " in text  # a per-language null states what it could detect
    assert "- **How far it carries:**" in text and "- **Against no augmentation**" in text


def test_answer_scope_and_against_none_follow_the_numbers():
    """The README's qualifiers of the pooled outcome: languages against the pooled direction, the random-effects
    interval, and each augmentation against none after Holm (only contrasts with p (Holm) < 0.05 are named)."""
    import pandas as pd

    from pipeline.experiments.render import answer as render_answer

    row = {"family": "primary (pooled)", "languages": "aa bb", "pooled": True, "Q_p": 0.01}
    answer = pd.DataFrame(
        [
            {**row, "split": "s1", "delta": 0.03, "re_ci_low": -0.01, "re_ci_high": 0.07},
            {**row, "split": "s2", "delta": 0.02, "re_ci_low": 0.01, "re_ci_high": 0.03, "Q_p": 0.5},
            {"family": "by language", "pooled": False, "split": "s1", "languages": "aa", "delta": 0.05},
            {"family": "by language", "pooled": False, "split": "s1", "languages": "bb", "delta": -0.01},
            {"family": "by language", "pooled": False, "split": "s2", "languages": "aa", "delta": 0.02},
            {"family": "by language", "pooled": False, "split": "s2", "languages": "bb", "delta": 0.02},
        ]
    )
    text = render_answer._answer_scope(answer)
    assert (
        "on s1 the languages differ beyond chance (Q p 0.01), `bb` points the other way, and with languages "
        "random the interval includes 0" in text
    )
    assert (
        "on s2 the languages do not differ beyond chance (Q p 0.5), and with languages random the interval "
        "excludes 0" in text
    )
    assert text.endswith("the data do not show it for low-resource languages at large.")
    tests = pd.DataFrame(
        [
            {"family": "secondary", "split": "s1", "lang": "aa", "contrast": "synthetic − none", "delta": -0.04,
             "p_holm": 0.01, "family_size": 4, "size": 1000},
            {"family": "secondary", "split": "s1", "lang": "bb", "contrast": "synthetic − none", "delta": 0.04,
             "p_holm": 0.2, "family_size": 4, "size": 1000},
            {"family": "secondary", "split": "s1", "lang": "bb", "contrast": "parallel − none", "delta": 0.05,
             "p_holm": 0.001, "family_size": 4, "size": 1000},
            {"family": "primary", "split": "s1", "lang": "aa", "contrast": "backtranslation − synthetic",
             "delta": 0.05, "p_holm": 0.001, "family_size": 2, "size": 1000},
            {"family": "secondary", "split": "s2", "lang": "aa", "contrast": "synthetic − none", "delta": -0.04,
             "p_holm": 0.3, "family_size": 4, "size": 1000},
        ]
    )  # fmt: skip
    text = render_answer._against_none(tests, ("s1", "s2"))
    assert "(1,000 rows; secondary family, Holm over 4;" in text
    assert (
        "On s1, synthetic lowers AP in `aa`; parallel raises AP in `bb`. On s2, no aug − none contrast "
        "survives Holm." in text
    )


def test_time_left_once_every_language_started_counts_only_the_cells(tmp_path, monkeypatch):
    from pipeline.experiments.render import answer as render_answer

    cells = {f"g-{aug}-{lang}": {"lang": lang} for lang in ("aa", "bb") for aug in ("x", "y")}
    ran = ["g-x-aa", "g-y-aa", "g-x-bb"]
    rows = [{"name": n, "baseline": "c", "started": str(i), "seconds": s, "status": "run"}
            for i, (n, s) in enumerate(zip(ran, [1000.0, 100.0, 1080.0], strict=True))]  # fmt: skip
    (tmp_path / "grid_times.json").write_text(json.dumps({"tasks": rows}))
    monkeypatch.setattr(render_answer, "BENCHMARK_RESULTS", tmp_path)
    text = render_answer._time_left(cells, ran)
    assert text.endswith("the 1 cells left take about 0.3 h on one machine like the one they ran on "
                         "(docs/performance.md, grid times); every language's upstream stages have run.")  # fmt: skip


def test_augment_help_status_states_outcomes_only_when_the_design_has_run(tmp_path, monkeypatch):
    """The README's second answer: progress per grid and "not settled" while a declared augment_help cell is
    missing; with all of them, each primary contrast's pooled outcome per split, and the quality axis's crossing
    once mt_quality has run too."""
    import pandas as pd

    from pipeline.config import paths
    from pipeline.experiments import designs, grid, results
    from pipeline.experiments.render import augment_help

    (tmp_path / "reports").mkdir()
    (tmp_path / "results").mkdir()
    monkeypatch.setattr(paths, "REPORTS_DIR", tmp_path / "reports")
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path / "results")
    cells = list(designs.declared_cells(designs.declared()["augment_help"]))
    for name in cells[1:]:
        (tmp_path / "results" / f"{name}.json").write_text("{}")
    row = {
        "family": "primary (pooled)",
        "contrast": "forward − none",
        "split": "shifted_genre",
        "languages": "swh tgl",
        "delta": 0.031,
        "ci_low": 0.01,
        "ci_high": 0.05,
        "p_holm": 0.004,
        "mde": 0.02,
        "re_delta": 0.03,
        "re_ci_low": -0.1,
        "re_ci_high": 0.16,
        "outcome": "forward better",
        "collection": "topical",
        "form": "title",
    }
    pd.DataFrame([row]).to_csv(tmp_path / "reports" / "augment_help_answer.csv", index=False)
    slope = {"arm": "backtranslation", "slope_per_10_chrf": 0.012, "ci_low": 0.001, "ci_high": 0.023, "p_holm": 0.04,
             "zero_at_chrf": 47.5, "chrf_measured": "27.9–38.7"}  # fmt: skip
    pd.DataFrame([slope]).to_csv(tmp_path / "reports" / "mt_quality_quality.csv", index=False)
    text = augment_help.augment_help_status()
    assert "**Not settled yet**" in text and "forward better" not in text
    assert f"`augment_help` {len(cells) - 1} of {len(cells)} cells" in text
    (tmp_path / "results" / f"{cells[0]}.json").write_text("{}")
    text = augment_help.augment_help_status()
    assert "- **forward − none, shifted_genre: forward better** — pooled over `swh tgl`" in text
    assert "Δ AP +0.0310 [+0.0100, +0.0500], Holm p 0.004, MDE 0.0200" in text and "`topical` test, `title`" in text
    assert "zero at chrF" not in text  # mt_quality has not run
    for name, _ in grid.cells("mt_quality"):
        (tmp_path / "results" / f"{name}.json").write_text("{}")
    text = augment_help.augment_help_status()
    assert "- **backtranslation against the MT's chrF:** +0.0120 AP per 10 chrF points" in text
    assert "zero at chrF 47.5 (measured 27.9–38.7)" in text
