"""The whole DAG through `dvc repro` / `dvc exp run` on the tiny profile, in a throw-away copy of the project."""

import json
import os
import re
import signal
import subprocess
import time

import numpy as np
import pytest
import yaml

from pipeline.config import paths
from pipeline.config.paths import QUERY_FORMS, SPLITS
from pipeline.io import read_json, read_metrics
from pipeline.retrieval.encoders import load_encoder

#: The metrics files of the baselines' evaluation: one per split, all written by one run of evaluate_baselines.
BASELINE_METRICS = [f"metrics/baselines/{s}.json" for s in SPLITS]
#: The chain every grid cell re-runs, and the stages it must not re-run.
DOWNSTREAM = {"bitext", "distill", "evaluate", "report"}
UPSTREAM = {
    "prepare",
    "train_mt",
    "backtranslate",
    "forward_translate",
    "round_trip",
    "translate_docs",
    "llm",
    "synthesize",
    "teacher",
    "encoder",
    "evaluate_baselines",
}


def _dvc(proj, env, *args):
    res = subprocess.run(["dvc", *args], cwd=proj, env=env, capture_output=True, text=True)
    assert res.returncode == 0, f"dvc {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}"
    return res.stdout


def _dvc_to_kill(proj, env, *args):
    """``dvc *args`` started in a session of its own, which ``os.killpg`` stops with the stage it runs."""
    return subprocess.Popen(
        ["dvc", *args], cwd=proj, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def _set_params(proj, **changes):
    params = yaml.safe_load((proj / "params.yaml").read_text())
    for dotted, value in changes.items():
        *path, last = dotted.split(".")
        node = params
        for key in path:
            node = node[key]
        node[last] = value
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _ran(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


# The tests below continue from the README's run command (conftest.readme_run: the whole tiny DAG in a plain
# shell, run once per session), each in its own copy of that project, so that pytest-xdist's workers share them out.


def test_a_copy_of_the_readme_run_changes_only_itself(readme_run, tmp_path):
    """The tests below change copies of the shared README run: its big immutable files are linked, the rest
    copied, so a change to a copy (params, a stage re-run) never reaches the original or another copy."""
    proj = readme_run.copy(tmp_path / "project")
    weights = next((proj / "models/student").glob("*.safetensors"))
    original = readme_run.project / weights.relative_to(proj)
    assert weights.stat().st_ino == original.stat().st_ino  # linked, not copied
    before = (readme_run.project / "params.yaml").read_text()
    _set_params(proj, aug="both")
    (proj / "metrics/report.json").write_text("{}")
    assert (readme_run.project / "params.yaml").read_text() == before
    assert read_metrics(readme_run.project / "metrics/report.json")["robustness"]


@pytest.mark.long
def test_dvc_repro_tiny(readme_run, tmp_path):
    proj, env, out = readme_run.copy(tmp_path / "project"), readme_run.env, readme_run.result.stdout
    assert readme_run.result.returncode == 0, readme_run.result.stderr[-3000:]
    assert {
        "prepare",
        "encoder",
        "train_mt",
        "backtranslate",
        "forward_translate",
        "round_trip",
        "translate_docs",
        "llm",
        "synthesize",
        "bitext",
        "teacher",
        "distill",
        "report",
    } <= _ran(out)
    mt = read_metrics(proj / "metrics/mt.json")
    # Every source dev verse scored, BLEU strictly inside (0, 100): 0 is output with no usable n-gram (the tiny
    # model loops, but on English words), 100 a dev set seen in training.
    dev = mt["dev_source"]
    assert dev["sentences"] == len(_read(proj, "data/prepared/dev/source.tsv")) and 0 < dev["bleu"] < 100, dev
    assert "nrefs:1" in dev["bleu_signature"]
    assert (proj / "dvclive/mt/plots/metrics/train_loss.tsv").exists()
    _check_backtranslation_is_pool_only(proj)
    _check_forward_translation(proj)
    _check_synthesis(proj)
    for split in SPLITS:  # every split in both query forms (topics: titles only), each system
        res = {
            **read_metrics(proj / "metrics/baselines" / f"{split}.json"),
            **read_metrics(proj / "metrics/eval" / f"{split}.json"),
        }
        forms = ["title"] if split == "topics" else list(QUERY_FORMS)
        assert res["available"] and res["collection"] == "topical" and res["query_forms"] == forms
        for system in ("zeroshot", "teacher", "teacher_en", "student", "nmt_bm25", "nmt_teacher"):
            assert set(res[system]) == set(forms), (split, system)
            for form in forms:
                assert 0.0 <= res[system][form]["AP"] <= 1.0
                assert (proj / paths.run_file(split, form, system)).exists()
                assert (
                    res[system][form]["signature"]["judged_queries"]
                    == res["student"][form]["signature"]["judged_queries"]
                )
    report = read_metrics(proj / "metrics/report.json")
    assert set(report["robustness"]["student"]) == {"shifted_genre", "shifted_register"}
    assert set(report["AP"]) == set(SPLITS) and set(report["AP_desc"]) == set(SPLITS) - {"topics"}
    assert (proj / "dvclive/distill/plots/metrics/train/ot.tsv").exists()
    for png in ("reports/ap_by_split.png", "reports/training_curves.png"):
        assert (proj / png).read_bytes()[:4] == b"\x89PNG"
    shown = json.loads(_dvc(proj, env, "metrics", "show", "--json"))
    numbers = [v for f in shown[""]["data"].values() for v in _leaves(f["data"])]
    assert numbers and all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers), numbers
    assert "metrics/baselines/in_domain.json" in shown[""]["data"]  # the baselines are metrics too
    assert _ran(_dvc(proj, env, "repro")) == set()  # nothing changed → nothing runs
    assert not list((readme_run.project / "data/partial").glob("*"))  # synthesis done: no checkpoint left

    # Same params and seed, forced to run again: every metrics file is the same byte for byte (wall-clock numbers
    # such as training time and tokens/s go to the git-ignored timings/, see pipeline.io.write_metrics). Forced
    # here: the chain every grid cell re-runs (bitext -> distill -> evaluate -> report), on which the replicate-seed
    # statistics rest. The upstream stages' determinism is tested where it is made: MT training
    # (test_mt::test_training_twice_gives_the_same_model), seeded LLM batches (test_synth), teacher and student
    # training (test_training::test_distill_is_deterministic).
    first = {p.relative_to(proj): p.read_bytes() for p in sorted((proj / "metrics").rglob("*.json"))}
    assert len(first) >= 20 and (proj / "timings/mt.json").exists()
    assert _ran(_dvc(proj, env, "repro", "--force", "--downstream", "bitext")) == DOWNSTREAM
    second = {p.relative_to(proj): p.read_bytes() for p in sorted((proj / "metrics").rglob("*.json"))}
    assert second.keys() == first.keys()
    assert not [str(n) for n in first if first[n] != second[n]], "metrics differ between two identical runs"


@pytest.mark.long
def test_aug_switch_reruns_only_the_training_chain(readme_run, tmp_path):
    proj, env = readme_run.copy(tmp_path / "project"), readme_run.env
    # With aug=none every pool is still filtered and counted; no row enters.
    pools = read_metrics(proj / "metrics/bitext.json")["augmentation"]
    assert set(pools) == {"backtranslation", "synthetic", "forward", "parallel"}
    assert all(p["entered"] == 0 and p["kept_in_pool"] > 0 for p in pools.values())

    # The aug switch re-runs only bitext -> distill -> evaluate -> report; both augmentations stay cached.
    for aug in ("backtranslation", "synthetic", "both", "forward", "parallel"):
        _set_params(proj, aug=aug)
        dry = _ran(_dvc(proj, env, "repro", "--dry"))  # stages whose own deps/params changed
        assert "bitext" in dry and not dry & UPSTREAM, (aug, dry)
    _set_params(proj, aug="none")
    out = _dvc(proj, env, "exp", "run", "-S", "aug=both")
    assert _ran(out) == DOWNSTREAM
    bitext = read_metrics(proj / "metrics/bitext.json")
    assert bitext["aug"] == "both" and bitext["seed_filtered"]["test_text"] == 0
    assert bitext["rows_by_origin"]["backtranslation"] == 16 and bitext["rows_by_origin"]["synthetic"] == 16
    for origin, pool in (("backtranslation", 64), ("synthetic", 40)):
        counts = bitext["augmentation"][origin]
        assert counts["pool"] == pool and counts["entered"] == 16 and counts["kept_in_pool"] >= 16
        assert set(counts["removed"]) == {"empty", "test_text", "length_ratio", "copy", "duplicate"}
        assert counts["kept_in_pool"] + sum(counts["removed"].values()) == pool
    assert '"both"' in _dvc(proj, env, "exp", "show", "--json")


@pytest.mark.long
def test_param_changes_rerun_what_they_change(readme_run, tmp_path):
    proj, env = readme_run.copy(tmp_path / "project"), readme_run.env
    # Another replicate seed draws another augmentation sample (test_augment: from the same filtered pools), and
    # augment.size within the pool changes only the sample: both re-run bitext and nothing upstream. The parallel
    # control and the tag are checked on the bitext stage's own output (which stages they re-run is the same
    # dependency check as the aug values' above).
    for change in ({"distill.seed": 1}, {"augment.size": 24}, {"augment.round_trip_keep": 0.5}):
        _set_params(proj, **change)
        dry = _ran(_dvc(proj, env, "repro", "--dry"))
        assert {"bitext", "distill"} <= dry and not dry & UPSTREAM, (change, dry)
    _set_params(proj, **{"augment.round_trip_keep": 1.0})
    _set_params(proj, aug="parallel", **{"distill.seed": 0, "bitext.tag": True})
    assert _stage(proj, env, "bitext").returncode == 0
    bitext = read_metrics(proj / "metrics/bitext.json")
    assert bitext["rows_by_origin"]["parallel"] == 24 and bitext["augmentation"]["parallel"]["entered"] == 24
    _check_parallel_and_tag(proj)
    _set_params(proj, aug="forward", **{"bitext.tag": False})  # real English, the target side machine-written
    assert _stage(proj, env, "bitext").returncode == 0
    assert "round_trip" not in read_metrics(proj / "metrics/bitext.json")["augmentation"]["forward"]["removed"]
    train, pool = _read(proj, "data/bitext/train.tsv"), _read(proj, "data/aug/forward.tsv").set_index("id")
    rows = train[train["origin"] == "forward"]
    assert len(rows) == 24 and (rows["xx"].values == pool.loc[rows["id"], "xx"].values).all()
    assert (rows["en"].values == pool.loc[rows["id"], "en"].values).all()
    # The remedy: each machine-made pool keeps its best half by round-trip chrF; the parallel control all it kept.
    _set_params(proj, aug="none", **{"augment.round_trip_keep": 0.5})
    assert _stage(proj, env, "bitext").returncode == 0
    pools = read_metrics(proj / "metrics/bitext.json")["augmentation"]
    for origin in ("backtranslation", "synthetic", "forward"):
        kept, dropped = pools[origin]["kept_in_pool"], pools[origin]["removed"]["round_trip"]
        assert kept == -(-(kept + dropped) // 2), (origin, pools[origin])  # ceil(half)
    assert pools["parallel"]["removed"]["round_trip"] == 0
    _set_params(proj, aug="none", **{"distill.seed": 0, "augment.size": 32, "bitext.tag": False})
    _set_params(proj, **{"augment.round_trip_keep": 1.0})

    # Another decoding method re-runs back- and forward translation, not the MT models (each method: test_mt).
    method = yaml.safe_load((proj / "params.yaml").read_text())["backtranslate"]["method"]
    _set_params(proj, **{"backtranslate.method": "sampling" if method != "sampling" else "beam"})
    dry = _ran(_dvc(proj, env, "repro", "--dry"))
    assert {"backtranslate", "forward_translate"} <= dry and "train_mt" not in dry, dry
    _set_params(proj, **{"backtranslate.method": method})

    # LLM output that the filters remove entirely: one clear error with the counts, the old output untouched.
    before = (proj / "data/aug/synthetic.tsv").read_bytes()
    _set_params(proj, **{"synth.min_words": 1, "synth.max_words": 1, "synth.max_prompts": 8})
    res = _stage(proj, env, "synthesize")
    assert res.returncode == 2 and "passed the filters" in res.stderr and "'too_long'" in res.stderr
    assert "Traceback" not in res.stderr and (proj / "data/aug/synthetic.tsv").read_bytes() == before
    # Its generations stay in the checkpoint the error names, for a run with a higher synth.max_prompts.
    kept = re.search(r"data/partial/synthesize-[0-9a-f]{16}\.jsonl", res.stderr)
    assert kept and len((proj / kept.group()).read_text().splitlines()) == 1, res.stderr  # 8 prompts: one batch


@pytest.mark.long
def test_training_stages_relaunch_under_torchrun(readme_run, tmp_path):
    proj, env = readme_run.copy(tmp_path / "project"), readme_run.env
    # Data parallel: teacher and distill re-launch themselves under torchrun (2 gloo processes on CPU). The
    # global batches are the same; only dropout masks differ with the split, so the curves agree in shape.
    # One process: the curves right after the README run (the same params: aug none, seed 0).
    curves = {stage: _curve(readme_run.committed[_curve_file(stage)]) for stage in ("teacher", "distill")}
    _set_params(proj, **{"train.nproc": 2})
    assert _ran(_dvc(proj, env, "repro", "distill")) == {"teacher", "distill"}
    for stage, one in curves.items():
        two = _curve((proj / _curve_file(stage)).read_text())
        assert len(two) == len(one) and two != one, stage
        np.testing.assert_allclose(two, one, rtol=0.2, err_msg=stage)


@pytest.mark.long
def test_killed_stage_leaves_no_half_written_output(readme_run, tmp_path):
    proj, env = readme_run.copy(tmp_path / "project"), readme_run.env
    # Killed mid-way: `dvc repro` stopped by SIGKILL inside distill leaves no half-written output (DVC removes a
    # stage's outs before running it; each appears by a rename once complete); the next `dvc repro` completes.
    _set_params(proj, **{"distill.steps": 40})
    started = time.time()
    proc = _dvc_to_kill(proj, env, "repro", "distill")
    curve = proj / "dvclive/distill/plots/metrics/train/loss.tsv"
    while not (curve.exists() and curve.stat().st_mtime > started and len(curve.read_text().splitlines()) > 3):
        assert proc.poll() is None and time.time() - started < 300, "distill ended or never started training"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    student, metrics = proj / "models/student", proj / "metrics/distill.json"
    assert not student.exists() or load_encoder(student)
    assert not metrics.exists() or json.loads(metrics.read_text())["steps"] == 6
    out = _dvc(proj, env, "repro", "distill")
    assert "distill" in _ran(out)
    assert read_metrics(proj / "metrics/distill.json")["steps"] == 40
    assert not [p.name for p in (proj / "models").iterdir() if p.name.startswith(".")]


@pytest.mark.long
def test_killed_synthesis_continues_from_its_checkpoint(readme_run, tmp_path):
    proj, env = readme_run.copy(tmp_path / "project"), readme_run.env
    # synthesize killed after its first saved batch: the next run replays the saved batches (data/partial/) and
    # ends with the pool, generated lines and metrics of the README run's uninterrupted synthesis.
    outs = ["data/aug/synthetic.tsv", "data/synth/generated.tsv", "metrics/synthesize.json"]
    wrote = {p: (proj / p).read_bytes() for p in outs}
    proc = _dvc_to_kill(proj, env, "repro", "--force", "--single-item", "synthesize")
    started, partial = time.time(), proj / "data/partial"
    while not any(p.read_bytes().count(b"\n") for p in partial.glob("*.jsonl")):
        assert proc.poll() is None and time.time() - started < 300, "synthesize ended or never saved a batch"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (proj / "data/aug/synthetic.tsv").exists()  # DVC removed the outputs before the run
    assert _ran(_dvc(proj, env, "repro", "synthesize")) == {"synthesize"}
    assert {p: (proj / p).read_bytes() for p in outs} == wrote
    assert json.loads((proj / "timings/synthesize.json").read_text())["resumed_generate_seconds"] > 0
    assert not list(partial.glob("*"))  # removed once the stage succeeded


@pytest.mark.long
def test_udhr_only_language_skips_the_bible_splits(readme_run, tmp_path):
    proj, env = readme_run.copy(tmp_path / "project"), readme_run.env
    # A UDHR-only language: Bible splits and the student are skipped by design; the teacher is reused.
    _set_params(proj, lang="som")
    out = _dvc(proj, env, "repro")
    assert "teacher" not in _ran(out)
    for split in ("in_domain", "shifted_genre", "topics"):
        skipped = read_metrics(proj / "metrics/eval" / f"{split}.json")
        assert skipped["available"] is False and ("UDHR-only" in skipped["reason"] or "Bible" in skipped["reason"])
    register = read_metrics(proj / "metrics/eval/shifted_register.json")
    baselines = read_metrics(proj / "metrics/baselines/shifted_register.json")
    assert register["available"] and baselines["available"] and "teacher" in baselines
    assert "student" not in register and "nmt_bm25" not in baselines


def _leaves(d):
    for v in d.values():
        yield from _leaves(v) if isinstance(v, dict) else [v]


def _read(proj, path):
    import pandas as pd

    return pd.read_csv(proj / path, sep="\t", dtype=str, keep_default_na=False, quoting=3)


def _check_parallel_and_tag(proj):
    """aug=parallel: pool verses with their WEB English; bitext.tag: the marker on augmentation rows only, in the
    training bitext only (test collections and the documents the evaluation encodes never carry it)."""
    from pipeline.augment.pools import TAG

    train = _read(proj, "data/bitext/train.tsv")
    aug = train["origin"] == "parallel"
    assert (
        train.loc[aug, "xx"].str.startswith(TAG + " ").all()
        and not train.loc[~aug, "xx"].str.contains(TAG, regex=False).any()
    )
    assert not train["en"].str.contains(TAG, regex=False).any()
    web = _read(proj, "data/prepared/mono/target_genre_en.tsv").set_index("id")["en"]
    assert (train.loc[aug, "en"] == web[train.loc[aug, "id"]].values).all()
    for split in SPLITS:
        for name in ("docs.tsv", *(f"queries/{f}.tsv" for f in QUERY_FORMS if f == "title" or split != "topics")):
            assert not _read(proj, f"data/prepared/{split}/{name}")["text"].str.contains(TAG, regex=False).any()


def _curve_file(stage):
    return f"dvclive/{stage}/plots/metrics/train/loss.tsv"


def _curve(text):
    return [float(row.split("\t")[-1]) for row in text.splitlines()[1:]]


def _test_text(proj) -> set[str]:
    """The normalised text of every query (each form) and document of every written test collection."""
    from pipeline.data import splits, store

    text = set()
    for split in store.manifest(proj / "data")["splits"]:
        coll = store.read_collection(split, proj / "data")
        text.update(coll.docs["text"].map(splits.normalise))
        for queries in coll.queries.values():
            text.update(queries["text"].map(splits.normalise))
    return text


def _check_backtranslation_is_pool_only(proj):
    """The back-translated file holds target-genre pool verses only: no test book, no test text."""
    import pandas as pd

    from pipeline.data import bible, books, splits

    bt = pd.read_csv(proj / "data/aug/backtranslation.tsv", sep="\t", dtype=str, keep_default_na=False, quoting=3)
    assert len(bt) == 64 and set(bt["origin"]) == {"backtranslation"} and "lid" in bt.columns
    parallel = pd.read_csv(proj / "data/aug/parallel.tsv", sep="\t", dtype=str, keep_default_na=False, quoting=3)
    assert set(parallel["origin"]) == {"parallel"} and set(parallel["id"]) <= set(bt["id"]) and len(parallel) >= 60
    assert {bible.parse_verse_id(i)[0] for i in bt["id"]} <= books.TARGET_GENRE_POOL_BOOKS
    test_text = _test_text(proj)
    assert not set(bt["xx"].map(splits.normalise)) & test_text


def _check_forward_translation(proj):
    """Forward pairs: the back-translation pool's verses, real (WEB) English, the target side written by the en->xx
    model (trained like the xx->en one, scored on the target side of the dev sets); no test text."""
    from pipeline.data import splits

    forward, bt = _read(proj, "data/aug/forward.tsv"), _read(proj, "data/aug/backtranslation.tsv")
    web = _read(proj, "data/prepared/mono/target_genre_en.tsv").set_index("id")["en"]
    real_xx = _read(proj, "data/prepared/mono/target_genre.tsv").set_index("id")["xx"]
    assert set(forward["origin"]) == {"forward"} and set(forward["id"]) <= set(bt["id"]) and len(forward) >= 60
    assert (forward["en"] == web[forward["id"]].values).all()  # real English
    assert (forward["xx"] != real_xx[forward["id"]].values).mean() > 0.9  # machine-written target text
    assert not set(forward["xx"].map(splits.normalise)) & _test_text(proj)
    fwd, back = read_metrics(proj / "metrics/mt_forward.json"), read_metrics(proj / "metrics/mt.json")
    assert fwd["direction"] == "en-xx" and back["direction"] == "xx-en"
    assert fwd["train_pairs"] == back["train_pairs"] and fwd["epochs"] == back["epochs"]  # one recipe
    assert 0 < fwd["dev_source"]["bleu"] < 100 and fwd["dev_source"]["sentences"] == back["dev_source"]["sentences"]
    assert read_json(proj / "models/mt_forward/mt.json")["direction"] == "en-xx"
    assert (proj / "dvclive/mt_forward/plots/metrics/train_loss.tsv").exists()
    round_trip = read_metrics(proj / "metrics/round_trip.json")
    assert round_trip["forward"]["rows"] == len(forward) and round_trip["backtranslation"]["rows"] == len(bt)
    assert round_trip["forward"]["back"] == "xx-en" and 0 <= round_trip["synthetic"]["chrf_mean"] <= 100


def _check_synthesis(proj):
    """Synthetic lines: prompted only with pool verses, filtered (counted), back-translated, never test text."""
    import pandas as pd

    from pipeline.data import bible, books, splits

    def read(path):
        return pd.read_csv(proj / path, sep="\t", dtype=str, keep_default_na=False, quoting=3)

    prompts = read("data/synth/prompts.tsv")
    shot_ids = {i for ids in prompts["shot_ids"] for i in ids.split()}
    assert shot_ids and shot_ids <= set(read("data/prepared/mono/target_genre.tsv")["id"])
    assert {bible.parse_verse_id(i)[0] for i in shot_ids} <= books.TARGET_GENRE_POOL_BOOKS
    test_text = _test_text(proj)  # no test text, distractor verses (books 45-66) included, in a prompt or the pool
    mono = read("data/prepared/mono/target_genre.tsv").set_index("id")["xx"]
    assert not set(mono[sorted(shot_ids)].map(splits.normalise)) & test_text
    assert not set(read("data/aug/synthetic.tsv")["xx"].map(splits.normalise)) & test_text
    syn = read("data/aug/synthetic.tsv")
    assert len(syn) == 40 and set(syn["origin"]) == {"synthetic"} and syn["id"].str.startswith("synth:swh:").all()
    assert not syn["id"].map(splits.is_test_id).any()
    generated = read("data/synth/generated.tsv")
    assert set(syn["xx"]) <= set(generated.loc[generated["verdict"] == "kept", "text"])
    metrics = read_metrics(proj / "metrics/synthesize.json")
    assert metrics["kept"] == 40 and metrics["generated"] == len(generated)
    assert set(metrics["removed"]) >= {"empty", "too_short", "near_copy", "word_validity", "language", "test_text"}
    assert 0 <= metrics["quality_generated"]["lid_pass_rate"] <= 1


def _stage(proj, env, name, *args):
    return subprocess.run(
        ["python", "-m", f"pipeline.stages.{name}", *args], cwd=proj, env=env, capture_output=True, text=True
    )


def test_bad_inputs_fail_stages_with_one_clear_line(tiny_project):
    proj, env = tiny_project
    tiny_prepare = yaml.safe_load((proj / "params.yaml").read_text())["prepare"]
    _set_params(proj, **{"prepare.queries_in_domian": 5})  # what `dvc exp run -S` with a typo would add
    res = _stage(proj, env, "prepare")
    assert res.returncode == 2
    assert "unknown key 'prepare.queries_in_domian'" in res.stderr and "Traceback" not in res.stderr
    assert not (proj / "data/prepared").exists()
    # More queries than a split holds (as a new user would ask for "all of them"): one error with the count, not a
    # silent cut to what there is.
    _set_params(proj, prepare={**tiny_prepare, "queries_shifted_genre": 100000})
    res = _stage(proj, env, "prepare")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "prepare.queries_shifted_genre=100000" in res.stderr and "at most 1136" in res.stderr, res.stderr
    assert not (proj / "data/prepared").exists()

    _set_params(proj, prepare=tiny_prepare)
    assert _stage(proj, env, "prepare").returncode == 0
    _set_params(proj, aug="backtranslation")
    res = _stage(proj, env, "bitext")
    assert res.returncode == 2 and "backtranslate" in res.stderr and "Traceback" not in res.stderr
    assert not (proj / "data/bitext").exists()

    res = _stage(proj, env, "distill")  # no teacher yet
    assert res.returncode == 2 and "models/teacher" in res.stderr

    _set_params(proj, aug="both", **{"augment.size": 33})
    res = _stage(proj, env, "bitext")
    assert res.returncode == 2 and "augment.size=33 must be even" in res.stderr and "Traceback" not in res.stderr
    _set_params(proj, aug="none", **{"augment.size": 32, "synth.backend": "openai"})
    res = _stage(proj, env, "synthesize")
    assert res.returncode == 2 and "synth.endpoint" in res.stderr


def test_malformed_inputs_are_one_clear_error_per_stage(tiny_project):
    """Each stage, given a corrupted input file, stops with one line naming the file and writes nothing."""
    proj, env = tiny_project
    assert _stage(proj, env, "prepare").returncode == 0
    assert _stage(proj, env, "encoder").returncode == 0
    pristine = {
        p: p.read_bytes() for d in ("data/prepared", "data/english") for p in (proj / d).rglob("*") if p.is_file()
    }

    def fails(stage, *args, expect, outs=()):
        res = _stage(proj, env, stage, *args)
        assert res.returncode == 2, (stage, res.stderr[-2000:])
        assert expect in res.stderr and "Traceback" not in res.stderr, (stage, expect, res.stderr[-2000:])
        assert len(res.stderr.strip().splitlines()[-1]) > 20
        for out in outs:
            assert not (proj / out).exists(), (stage, out)
        for path, data in pristine.items():  # put everything back
            path.write_bytes(data)

    prepared = proj / "data/prepared"
    bitext = prepared / "train/bitext_source.tsv"
    lines = bitext.read_bytes().splitlines(keepends=True)
    for direction, out in (("xx-en", "models/mt"), ("en-xx", "models/mt_forward")):
        bitext.write_bytes(b"".join(lines[:5]) + lines[5][: len(lines[5]) // 3])  # cut off mid-row
        fails("train_mt", "--direction", direction, expect="bitext_source.tsv:6:", outs=[out])
    (prepared / "mono/target_genre.tsv").write_bytes(b"verse\ttext\nv1\tx\n")
    fails("backtranslate", expect="missing column(s) ['id', 'xx']", outs=["data/aug/backtranslation.tsv"])
    (prepared / "mono/target_genre.tsv").write_bytes(b"id\txx\n")
    fails("synthesize", expect="target_genre.tsv has no rows", outs=["data/aug/synthetic.tsv"])
    bitext.write_bytes(b"")
    fails("bitext", expect="bitext_source.tsv is empty", outs=["data/bitext"])
    (proj / "data/english/english_pairs.tsv").write_bytes(b"id\tquery\n1\tq\n")
    fails("teacher", expect="missing column(s) ['passage']", outs=["models/teacher"])
    (prepared / "in_domain/docs.tsv").write_bytes(b"docid\ttext\nd1\tcaf\xe9\n")
    fails("evaluate", "--baselines", expect="docs.tsv is not UTF-8", outs=["runs/baselines", *BASELINE_METRICS])
    (prepared / "shifted_genre/qrels.txt").write_bytes(b"q1 0 nowhere 1\n")
    fails("evaluate", "--baselines", expect="qrels.txt: document 'nowhere' is not in", outs=["runs/baselines"])
    a_doc = (prepared / "shifted_genre/docs.tsv").read_text().splitlines()[1].split("\t")[0]
    (prepared / "shifted_genre/qrels.txt").write_text(f"no-such-query 0 {a_doc} 1\n")
    fails("evaluate", "--baselines", expect="qrels.txt: query 'no-such-query' is not in", outs=["runs/baselines"])
    (proj / "data/nmt").mkdir(parents=True)
    (proj / "data/nmt/in_domain.tsv").write_text("docid\ttext\nnot-a-doc\tThe words\n")
    fails("evaluate", "--baselines", expect="document ids differ from in_domain/docs.tsv", outs=["runs/baselines"])
