"""A test collection in memory: what ``splits`` builds and ``external`` and ``corpora`` read.

It has a module of its own so that the builders (:mod:`pipeline.data.splits`) and the readers of collections
from files (:mod:`pipeline.data.external`, :mod:`pipeline.data.corpora`) import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Collection:
    """One test collection: English queries, target-language documents, graded TREC qrels."""

    name: str
    queries: list[tuple[str, str]]
    docs: list[tuple[str, str]]
    qrels: list[tuple[str, str, int]]
    info: dict = field(default_factory=dict)

    def validate(self) -> None:
        if not self.queries or not self.docs:
            raise ValueError(
                f"split {self.name!r} is empty after filtering ({len(self.queries)} queries, "
                f"{len(self.docs)} documents)"
            )
        doc_ids = {d for d, _ in self.docs}
        query_ids = {q for q, _ in self.queries}
        for qid, docid, _ in self.qrels:
            if docid not in doc_ids:
                raise ValueError(f"split {self.name!r}: qrels name document {docid!r} absent from the collection")
            if qid not in query_ids:
                raise ValueError(f"split {self.name!r}: qrels name query {qid!r} absent from the queries")
