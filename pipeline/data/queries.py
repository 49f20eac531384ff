"""English queries in the forms every split is evaluated with (:data:`pipeline.config.paths.QUERY_FORMS`).

``desc`` is the whole English text (a BBE verse, a UDHR paragraph, an external collection's query); ``title`` is a
few of its content words in their original order, the short keyword query of CLEF/NeuCLIR title topics and of
MATERIAL. Both forms of a query share its id, so they share its judgments.
"""

from __future__ import annotations


def title_query(text: str, n_words: int, rng) -> str:
    """``n_words`` content words of ``text`` drawn with ``rng``, in their original order (all of them, stopwords
    dropped, when it has no more; the text itself when it has none)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS  # here: sklearn takes a second to import

    words = [w.strip(".,;:!?\"'()[]") for w in text.split()]
    content = [i for i, w in enumerate(words) if w and w.lower() not in ENGLISH_STOP_WORDS and len(w) > 2]
    if len(content) <= n_words:
        return " ".join(words[i] for i in content) or text
    chosen = sorted(rng.choice(content, size=n_words, replace=False).tolist())
    return " ".join(words[i] for i in chosen)


def both_forms(desc: list[tuple[str, str]], n_words: int, rng) -> dict[str, list[tuple[str, str]]]:
    """``{"title": …, "desc": desc}``: each title drawn from its ``desc`` text with ``rng``, in ``desc``'s order."""
    return {"title": [(qid, title_query(text, n_words, rng)) for qid, text in desc], "desc": list(desc)}
