"""Stages ``evaluate_baselines`` and ``evaluate``: TREC runs and AP / nDCG@10 / R@100 on every split × query form.

Systems: ``zeroshot`` (the encoder on both sides), ``teacher`` (the English teacher on both sides), ``teacher_en``
(the teacher on the documents' English originals: the monolingual ceiling), ``student`` (teacher queries, student
documents), and the NMT baselines ``nmt_bm25`` / ``nmt_teacher`` over documents translated into English (see
:func:`pipeline.retrieval.search.system_runs`); ``evaluate.scoring`` is ``dense`` (cosine of mean-pooled embeddings) or
``maxsim`` (ColBERT-style late interaction over token states).

One run covers every split and both query forms (``title``, ``desc``): each model encodes each distinct document
once, however many splits hold it (the topical test's splits share the distractor books), and each query form is
searched against the same document representations. The systems that do not depend on the bitext are evaluated by
``evaluate_baselines`` (``runs/baselines/<split>/<form>/<system>.run``, ``metrics/baselines/<split>.json``), so an
``aug`` switch re-runs only the student's evaluation: ``evaluate`` writes ``runs/student/<split>/<form>/student.run``
and ``metrics/eval/<split>.json``. Names, flags and ``ir_measures`` signatures go to the ``.info.json`` file beside
each metrics file (:func:`pipeline.io.write_metrics`).

Usage: ``python -m pipeline.stages.evaluate [--baselines]``. A split the language cannot serve (e.g. ``in_domain``
for a UDHR-only language, ``topics`` on the known-item test) is skipped by design: its metrics file says
``"available": false`` and why.
"""

from __future__ import annotations

import argparse
import logging

from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.data import store
from pipeline.io import DataFileError, atomic_path, read_tsv, write_metrics, write_text
from pipeline.retrieval import trec
from pipeline.retrieval.evaluation import evaluate_run
from pipeline.retrieval.search import BASELINES, SplitTexts, system_runs
from pipeline.stages import SKIPPED, run_stage

log = logging.getLogger(__name__)


def _rows(df) -> list[tuple[str, str]]:
    return list(df.itertuples(index=False, name=None))


def split_texts(split: str, with_nmt: bool) -> tuple[SplitTexts, store.TestCollection]:
    """The texts the systems search on ``split`` (with the translated documents if ``with_nmt`` and they exist)."""
    coll = store.read_collection(split)
    nmt_docs = None
    nmt_path = paths.NMT_DIR / f"{split}.tsv"
    if with_nmt and nmt_path.exists():
        nmt = read_tsv(nmt_path, ("docid", "text"))
        if list(nmt["docid"]) != list(coll.docs["docid"]):
            raise DataFileError(f"{nmt_path}: document ids differ from {split}/docs.tsv; re-run translate_docs")
        nmt_docs = _rows(nmt)
    docs_en = _rows(coll.docs_en) if coll.docs_en is not None else None
    queries = {form: _rows(df) for form, df in coll.queries.items()}
    return SplitTexts(queries, _rows(coll.docs), docs_en, nmt_docs), coll


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baselines", action="store_true", help="evaluate the systems that do not use the bitext")
    args = parser.parse_args()
    params = load_params()
    info = store.manifest()
    available = [s for s in paths.SPLITS if s in info["splits"]]
    model_dirs = {"encoder": paths.ENCODER_DIR, "teacher": paths.TEACHER_DIR}
    systems: tuple[str, ...] = BASELINES
    if not args.baselines:
        systems = ("student",)
        if not (paths.STUDENT_DIR / SKIPPED).exists():
            model_dirs["student"] = paths.STUDENT_DIR
    texts, colls = {}, {}
    for split in available:
        texts[split], colls[split] = split_texts(split, with_nmt=args.baselines)
    runs, encoded = system_runs(
        model_dirs,
        texts,
        scoring=params.evaluate.scoring,
        depth=params.evaluate.depth,
        batch_size=params.encoder.batch_size,
        max_length=params.encoder.max_length,
        systems=systems,
        bm25={"k1": params.evaluate.bm25_k1, "b": params.evaluate.bm25_b},
    )
    log.info("texts encoded once per model: %s", encoded)
    results = {}
    with atomic_path(paths.runs_dir(baselines=args.baselines), is_dir=True) as tmp:
        for split in paths.SPLITS:
            if split not in available:
                reason = info["unavailable"].get(split, "not prepared")
                log.warning("skipping %s: %s", split, reason)
                write_text(tmp / split / SKIPPED, reason + "\n")
                results[split] = {"split": split, "lang": params.lang, "available": False, "reason": reason}
                continue
            results[split] = _score(split, runs[split], colls[split].qrels_path, tmp, params)
    for split, metrics in results.items():
        write_metrics(paths.eval_metrics(split, baselines=args.baselines), metrics)


def _score(split: str, runs: dict[str, dict], qrels_path, runs_root, params) -> dict:
    """Write the split's runs under ``runs_root`` and score them: ``{system: {form: measures}}`` with the split's
    name, language, test and query forms."""
    metrics: dict = {
        "split": split,
        "lang": params.lang,
        "available": True,
        "collection": params.prepare.collection,
        "query_forms": list(runs),
    }
    for form, by_system in runs.items():
        for system, run in by_system.items():
            path = runs_root / split / form / f"{system}.run"
            trec.write_run(path, run, tag=f"{system}-{form}")
            scores = evaluate_run(qrels_path, path, params.evaluate.depth)
            metrics.setdefault(system, {})[form] = scores
            log.info("%s %s %s AP=%.4f", split, form, system, scores["AP"])
    return metrics


if __name__ == "__main__":
    run_stage(main)
