"""A test collection in memory: what ``splits`` builds and ``external`` and ``corpora`` read.

It has a module of its own so that the builders (:mod:`pipeline.data.splits`, :mod:`pipeline.data.bible_collections`)
and the readers of collections from files (:mod:`pipeline.data.external`, :mod:`pipeline.data.corpora`) import it
without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.config.paths import QUERY_FORMS


@dataclass
class Collection:
    """One test collection: English queries in one or more forms, target-language documents, graded TREC qrels.

    ``queries`` maps a query form (:data:`pipeline.config.paths.QUERY_FORMS`: ``title``, a few content words;
    ``desc``, the whole text) to ``(qid, text)`` rows; every form has the same query ids. ``docs_en`` holds the
    documents' English originals where the source has them (Bible verses, UDHR paragraphs): the input of the
    English–English ceiling.
    """

    name: str
    queries: dict[str, list[tuple[str, str]]]
    docs: list[tuple[str, str]]
    qrels: list[tuple[str, str, int]]
    info: dict = field(default_factory=dict)
    docs_en: list[tuple[str, str]] | None = None

    def query_ids(self) -> list[str]:
        return [q for q, _ in next(iter(self.queries.values()), [])]

    def validate(self) -> None:
        unknown = sorted(set(self.queries) - set(QUERY_FORMS))
        if unknown:
            raise ValueError(f"split {self.name!r}: unknown query form(s) {unknown}; expected some of {QUERY_FORMS}")
        if not self.query_ids() or not self.docs:
            raise ValueError(
                f"split {self.name!r} is empty after filtering ({len(self.query_ids())} queries, "
                f"{len(self.docs)} documents)"
            )
        query_ids = set(self.query_ids())
        for form, rows in self.queries.items():
            if [q for q, _ in rows] != self.query_ids():
                raise ValueError(f"split {self.name!r}: the {form} queries do not have the same ids as the others")
        doc_ids = {d for d, _ in self.docs}
        if self.docs_en is not None and [d for d, _ in self.docs_en] != [d for d, _ in self.docs]:
            raise ValueError(f"split {self.name!r}: the English documents do not match the documents one to one")
        for qid, docid, _ in self.qrels:
            if docid not in doc_ids:
                raise ValueError(f"split {self.name!r}: qrels name document {docid!r} absent from the collection")
            if qid not in query_ids:
                raise ValueError(f"split {self.name!r}: qrels name query {qid!r} absent from the queries")
