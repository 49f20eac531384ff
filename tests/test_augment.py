"""Augmentation pools: writing them, the filters (the same for every origin), the draw, the parallel pool, the tag."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

from pipeline.augment.lid import train_bible_lid
from pipeline.augment.pools import (
    ENGLISH,
    ORIGINS,
    POOL_COLUMNS,
    POOL_STAGE,
    TAG,
    AugmentFilter,
    copy_share,
    draw_augmentation,
    pool_metrics,
    read_augmentation,
    sample_kept,
    tag_augmentation,
    write_pools,
)
from pipeline.augment.round_trip import BACK, COLUMNS, keep_best, read_scores, score_pool
from pipeline.config import paths, seeds
from pipeline.config.conditions import AUG_FILTERS, AUG_FILTERS_ALWAYS
from pipeline.data.splits import BITEXT_COLUMNS, normalise
from pipeline.io import DataFileError, read_tsv, write_tsv
from pipeline.mt import backtranslation_metrics

ROOT = Path(__file__).resolve().parents[1]
TEST_QUERY = "Blessed is the man who does not walk in the counsel of the wicked"
SEED_XX = "Mwanzo Mungu aliumba mbingu na nchi"

#: (en, xx, the language ID's label for the English side, the verdict with every filter on)
ROWS = [
    ("The LORD is my shepherd, I shall lack nothing", "Bwana ndiye mchungaji wangu sitapungukiwa", "eng", "kept"),
    ("", "Hunilaza katika malisho ya majani mabichi", "eng", "empty"),
    (TEST_QUERY, "Heri mtu yule asiyekwenda katika shauri la wasio haki", "eng", "test_text"),
    ("and the the the the land of the land of the land", "Mwanangu usisahau sheria yangu", "eng", "degenerate"),
    ("My son", "Mwanangu usisahau sheria yangu bali moyo wako uzishike amri zangu daima", "eng", "length_ratio"),
    ("Kumcha Bwana ni chanzo cha maarifa", "Kumcha Bwana ni chanzo cha maarifa bali", "eng", "copy"),
    ("Moyo wangu umejaa furaha, O God", "Moyo wangu umejaa furaha kwa sababu ya wokovu", "swh", "copy"),
    ("My heart rejoices in your salvation", "Nafsi yangu inafurahi kwa wokovu wako", "swh", "language"),
    ("The LORD is my shepherd", "Bwana ndiye mchungaji wangu sitapungukiwa", "eng", "duplicate"),
    ("In the beginning God created", SEED_XX, "eng", "duplicate"),
    ("Praise the LORD, all you nations", "Enyi mataifa yote, msifuni Bwana", "eng", "kept"),
]


def _pool(origin: str = "backtranslation", rows=ROWS) -> pd.DataFrame:
    return pd.DataFrame(
        [(f"{origin}:{i}", en, xx, origin, "target_genre", lang) for i, (en, xx, lang, _) in enumerate(rows)],
        columns=POOL_COLUMNS,
    )


def _filter(active=AUG_FILTERS, round_trip_keep=1.0) -> AugmentFilter:
    return AugmentFilter(
        frozenset(active),
        3.0,
        target="swh",
        round_trip_keep=round_trip_keep,
        blocked=frozenset({normalise(TEST_QUERY)}),
        seed_targets=frozenset({normalise(SEED_XX)}),
    )


@pytest.mark.parametrize("origin", ["backtranslation", "synthetic", "parallel"])
def test_each_filter_removes_its_fixture_row_whatever_the_origin(origin):
    verdicts = _filter().verdicts(_pool(origin), origin)
    assert verdicts == [r[3] for r in ROWS]
    removed = pool_metrics(_filter(), verdicts, _pool(origin).iloc[[0, 10]], "en")
    assert removed == {
        "pool": 11,
        "removed": {
            "empty": 1,
            "test_text": 1,
            "degenerate": 1,
            "length_ratio": 1,
            "copy": 2,
            "language": 1,
            "duplicate": 2,
        },
        "kept_in_pool": 2,
        "entered": 2,
        "degenerate_rate_entered": 0.0,
    }


def test_empty_and_test_text_are_always_on_the_rest_switch_off():
    verdicts = _filter(active=()).verdicts(_pool(), "backtranslation")
    assert [v for v in verdicts if v != "kept"] == ["empty", "test_text"]
    metrics = pool_metrics(_filter(active=()), verdicts, _pool().iloc[:1], "en")
    assert list(metrics["removed"]) == list(AUG_FILTERS_ALWAYS) and metrics["kept_in_pool"] == 9
    only_loops = _filter(active=("degenerate",)).verdicts(_pool(), "backtranslation")
    assert only_loops.count("degenerate") == 1 and only_loops.count("kept") == 8
    with pytest.raises(ValueError, match="unknown augmentation filter"):
        AugmentFilter(frozenset({"loops"}), 3.0, target="swh", round_trip_keep=1.0)


def test_forward_pools_are_checked_on_their_machine_written_target_side():
    """Forward translation's MT output is the target side: loops, copies and the language are looked for there
    (the language ID's label is the target side's, and must be the target language)."""
    rows = [
        ("The LORD is my shepherd, I shall lack nothing", "Bwana ndiye mchungaji wangu sitapungukiwa", "swh", "kept"),
        ("My son, do not forget my law ever", "ya nchi ya nchi ya nchi ya nchi ya nchi", "swh", "degenerate"),
        ("Praise the LORD, all you nations", "Praise the LORD, all you nations sasa", "swh", "copy"),
        ("My heart rejoices in your salvation", "Nafsi yangu inafurahi kwa wokovu wako", "eng", "language"),
        ("and the the the the land of the land of the land", "Mwanangu usisahau sheria yangu daima", "swh", "kept"),
    ]
    verdicts = _filter().verdicts(_pool("forward", rows), "forward")
    assert verdicts == [r[3] for r in rows]
    metrics = pool_metrics(_filter(), verdicts, _pool("forward", rows).iloc[[1, 4]], "xx")
    assert metrics["degenerate_rate_entered"] == 0.5  # the loop of the target side, not the English one
    # read as back-translation, the same rows are judged on their English side
    assert _filter().verdicts(_pool("backtranslation", rows), "backtranslation") == [
        "language",
        "language",
        "copy",
        "kept",
        "degenerate",
    ]


def test_copy_share():
    assert copy_share("Kumcha Bwana ni chanzo", "kumcha bwana ni chanzo cha maarifa") == 1.0
    assert copy_share("David's psalm of praise", "Zaburi ya Daudi") == 0.0
    assert copy_share("", "x") == 0.0


def test_replicate_seeds_resample_the_augmentation_among_kept_rows():
    rows = [(f"English verse number {i} of the pool", f"mstari wa {i} wa dimbwi", "eng", "kept") for i in range(200)]
    rows[7] = ("the the the the the", "mstari wa saba", "eng", "degenerate")
    pool = _pool(rows=rows)
    verdicts = _filter().verdicts(pool, "backtranslation")

    def draw(replicate: int):
        rng = seeds.rng(13, "bitext", "backtranslation", str(replicate))
        return sample_kept(pool, verdicts, 40, rng, "backtranslation")

    first, again, second = draw(0), draw(0), draw(1)
    assert list(first["id"]) == list(again["id"])  # deterministic per seed
    assert set(first["id"]) != set(second["id"])  # another replicate seed, another augmentation sample
    assert len(first) == len(second) == 40 and "backtranslation:7" not in set(first["id"]) | set(second["id"])


def test_too_few_kept_rows_is_one_clear_error():
    pool = _pool()
    match = r"only 2 of the pool's 11 pass the filters .*'degenerate': 1.*augment\.pool"
    with pytest.raises(DataFileError, match=match):
        sample_kept(pool, _filter().verdicts(pool, "backtranslation"), 3, seeds.rng(0, "x"), "backtranslation")


def test_tag_marks_the_target_side_of_augmentation_rows_only():
    df = pd.DataFrame(
        [
            ("bible:1.1.1", "In the beginning", "Hapo mwanzo", "seed", "source"),
            ("bible:19.23.1", "The LORD is my shepherd", "Bwana ndiye mchungaji wangu", "backtranslation", "g"),
            ("synth:swh:000001", "Praise him", "Msifuni", "synthetic", "g"),
            ("bible:19.1.1", "Blessed is the man", "Heri mtu yule", "parallel", "g"),
        ],
        columns=["id", "en", "xx", "origin", "domain"],
    )
    tagged = tag_augmentation(df)
    assert tagged["xx"][0] == "Hapo mwanzo" and tagged["en"].tolist() == df["en"].tolist()
    assert tagged["xx"][1:].tolist() == [f"{TAG} {x}" for x in df["xx"][1:]]
    assert not df["xx"].str.contains(TAG, regex=False).any()  # the input is left as it was


def test_the_tag_never_reaches_evaluation():
    """Only `distill` reads the training bitext: the evaluation stages neither depend on it nor name it."""
    from test_stage_deps import closure, stage_module, stages

    for name, stage in stages().items():
        if name.startswith("evaluate") or name == "report":
            assert not any(str(d).startswith("data/bitext") for d in stage["deps"]), name
            for path in closure(stage_module(stage["cmd"])) - {Path("pipeline/config/paths.py")}:  # it names every path
                text = (ROOT / path).read_text(encoding="utf-8")
                assert "paths.BITEXT_FILE" not in text and "tag_augmentation" not in text, (name, path)
    readers = [
        name for name, stage in stages().items() if any(str(d).startswith("data/bitext") for d in stage.get("deps", []))
    ]
    assert readers == ["distill"]


def test_the_pool_english_is_read_only_for_the_parallel_and_forward_augmentations():
    """The WEB English of the pool verses (mono_en) never reaches MT training or synthesis prompts: only the stages
    that write the parallel pool and translate it into the forward pool read it."""
    allowed = {"pipeline/data/splits.py", "pipeline/data/store.py", "pipeline/stages/prepare.py"}
    pool_stages = {"pipeline/stages/backtranslate.py", "pipeline/stages/forward_translate.py"}
    users = {str(p.relative_to(ROOT)) for p in (ROOT / "pipeline").rglob("*.py") if "mono_en" in p.read_text("utf-8")}
    assert users == allowed | pool_stages
    for stage in pool_stages:
        assert len(re.findall(r"read_file\(\"mono_en\"\)", (ROOT / stage).read_text("utf-8"))) == 1, stage


def test_parallel_without_pool_english_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_tsv("data/aug/parallel.tsv", [], POOL_COLUMNS)  # what backtranslate writes for a file corpus
    with pytest.raises(DataFileError, match="no English side .*file corpus"):
        read_augmentation("parallel")
    write_tsv("data/aug/backtranslation.tsv", [("x:1", "en", "xx", "backtranslation", "d", "eng")], POOL_COLUMNS)
    assert len(read_augmentation("backtranslation")) == 1


def test_every_pool_has_a_file_and_a_stage():
    assert ORIGINS == ("backtranslation", "synthetic", "parallel", "forward")  # `both`: back-translation first
    assert set(ORIGINS) == set(POOL_STAGE) == set(paths.AUG_FILES)


def test_write_pools_labels_the_machine_written_side_writes_each_pool_and_measures_the_translation(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    rows = [
        (
            "bible:19.23.1",
            "The LORD is my shepherd; I shall not want.",
            "Bwana ndiye mchungaji",
            "backtranslation",
            "g",
        ),
        ("bible:19.23.2", "Bwana ndiye mchungaji wangu, sitapungukiwa na kitu.", "Hunilaza", "backtranslation", "g"),
    ]
    parallel = [("bible:19.23.1", "The LORD is my shepherd, I shall lack nothing.", rows[0][2], "parallel", "g")]
    decoding, stats = SimpleNamespace(method="beam", beam=2, topk=10), {"seconds": 1.23456}
    forward = [("bible:19.23.1", parallel[0][1], "Bwana ndiye mchungaji wangu, sitapungukiwa na kitu.", "forward", "g")]
    pools = {"backtranslation": rows, "parallel": parallel, "forward": forward}
    written = write_pools(pools, stats, decoding, lid_verses=100, seed=13)
    assert written["translation"] == backtranslation_metrics(decoding, rows, stats)  # the first pool's
    assert written["lid"] == train_bible_lid(100, seeds.rng(13, "augment", "lid"))[1]  # one seed for every pool stage
    pool = read_tsv(paths.AUG_FILES["backtranslation"], POOL_COLUMNS)
    assert pool[list(BITEXT_COLUMNS)].values.tolist() == [list(r) for r in rows]
    assert pool["lid"][0] == ENGLISH and pool["lid"][1] != ENGLISH
    assert read_tsv(paths.AUG_FILES["parallel"], POOL_COLUMNS)["lid"].tolist() == [ENGLISH]
    assert read_tsv(paths.AUG_FILES["forward"], POOL_COLUMNS)["lid"].tolist() == ["swh"]  # its target side
    assert not paths.AUG_FILES["synthetic"].exists()


def test_every_pool_stage_writes_through_write_pools():
    for stage in ("backtranslate", "synthesize", "forward_translate"):
        text = (ROOT / f"pipeline/stages/{stage}.py").read_text("utf-8")
        assert text.count("write_pools(") == 1 and '"augment", "lid"' not in text, stage


def test_draw_takes_size_from_aug_s_pools_and_counts_every_pool(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for origin in ("backtranslation", "synthetic"):
        rows = [(f"{origin}:{i}", f"English line {i}", f"mstari {i}", origin, "g", ENGLISH) for i in range(30)]
        write_tsv(paths.AUG_FILES[origin], rows, POOL_COLUMNS)
    filters = _filter(active=())
    parts, metrics = draw_augmentation("both", filters, 10, seed=13, replicate=2, round_trip=None)
    assert [p["origin"].unique().tolist() for p in parts] == [["backtranslation"], ["synthetic"]]
    for part, origin in zip(parts, ("backtranslation", "synthetic"), strict=True):
        pool = read_augmentation(origin)
        expected = sample_kept(pool, filters.verdicts(pool, origin), 5, seeds.rng(13, "bitext", origin, "2"), origin)
        assert part.equals(expected[list(BITEXT_COLUMNS)])
    assert list(metrics) == ["backtranslation", "synthetic"] and metrics["synthetic"]["entered"] == 5
    parts, metrics = draw_augmentation("none", filters, 10, seed=13, replicate=2, round_trip=None)
    assert parts == [] and {m["entered"] for m in metrics.values()} == {0}  # counted, not drawn
    with pytest.raises(DataFileError, match="`backtranslate` stage writes"):
        draw_augmentation("parallel", filters, 10, seed=13, replicate=2, round_trip=None)
    with pytest.raises(DataFileError, match="`forward_translate` stage writes"):
        draw_augmentation("forward", filters, 10, seed=13, replicate=2, round_trip=None)
    write_tsv(paths.AUG_FILES["forward"], [], POOL_COLUMNS)  # a file corpus: no English for the pool verses
    with pytest.raises(DataFileError, match="aug forward: .* has no rows: .*no English side.*forward exists only"):
        draw_augmentation("forward", filters, 10, seed=13, replicate=2, round_trip=None)


def test_language_filter_with_the_bible_lid():
    """The LID the pool stages train: English for English text, another label for an untranslated copy."""
    lid, info = train_bible_lid(100, seeds.rng(13, "augment", "lid"))
    assert ENGLISH in info["languages"]
    labels = lid.predict(
        [
            "The LORD is my shepherd; I shall not want. He makes me lie down in green pastures.",
            "Bwana ndiye mchungaji wangu, sitapungukiwa na kitu. Katika malisho ya majani mabichi hunilaza.",
        ]
    )
    assert labels[0] == ENGLISH and labels[1] != ENGLISH


def test_pool_sizes_leave_room_for_the_grid_size():
    for path in ("params.yaml", "profiles/tiny.yaml"):
        augment = yaml.safe_load((ROOT / path).read_text())["augment"]
        assert min(augment["pool"].values()) > augment["size"], path


def test_keep_best_keeps_the_best_share_of_the_kept_rows():
    verdicts = ["kept", "empty", "kept", "kept", "kept", "copy"]
    scores = [10.0, 99.0, 50.0, 30.0, 50.0, 99.0]
    assert keep_best(verdicts, scores, 0.5) == ["round_trip", "empty", "kept", "round_trip", "kept", "copy"]
    assert keep_best(verdicts, scores, 0.6) == ["round_trip", "empty", "kept", "kept", "kept", "copy"]  # ceil(2.4)
    assert keep_best(verdicts, scores, 1.0) == verdicts


def test_the_remedy_ranks_machine_made_pools_by_round_trip_chrf(tmp_path, monkeypatch):
    """augment.round_trip_keep < 1: each machine-made pool keeps its best-scored share (counted as round_trip);
    the parallel control, made by no machine, keeps every row; the scores come from the round_trip stage's file."""
    monkeypatch.chdir(tmp_path)
    for origin in ("backtranslation", "parallel"):
        rows = [(f"{origin}:{i}", f"English line {i}", f"mstari {i}", origin, "g", ENGLISH) for i in range(20)]
        write_tsv(paths.AUG_FILES[origin], rows, POOL_COLUMNS)
    with pytest.raises(DataFileError, match="`round_trip` stage writes"):
        read_scores()
    write_tsv(paths.AUG_ROUND_TRIP / "backtranslation.tsv", [(f"backtranslation:{i}", i) for i in range(20)], COLUMNS)
    filters = _filter(active=(), round_trip_keep=0.25)
    parts, metrics = draw_augmentation("backtranslation", filters, 4, seed=13, replicate=0, round_trip=read_scores())
    best = {f"backtranslation:{i}" for i in range(15, 20)}  # ceil(0.25 * 20) = 5 kept, the best scores; 4 drawn
    assert len(parts[0]) == 4 and set(parts[0]["id"]) <= best
    assert metrics["backtranslation"]["removed"]["round_trip"] == 15 and metrics["backtranslation"]["kept_in_pool"] == 5
    assert metrics["parallel"]["removed"]["round_trip"] == 0 and metrics["parallel"]["kept_in_pool"] == 20


def test_score_pool_translates_the_machine_side_back_and_scores_it_against_its_source():
    """Back-translation: the English side goes back (en-xx) against the target side; forward: the target side back
    (xx-en) against the English side. A translator that returns its input scores chrF 100 on a copy."""

    class Echo:
        def translate(self, texts, method, **kwargs):
            return list(texts), {}

    pool = _pool("forward", [("the same words", "the same words", "swh", "kept"), ("abc", "xyz", "swh", "kept")])
    scored = score_pool(Echo(), pool, "forward", beam=1, batch_size=2, ngram=0)
    assert [c for _, c in scored] == [100.0, 0.0]
    assert BACK == {"backtranslation": "en-xx", "synthetic": "en-xx", "forward": "xx-en"}
