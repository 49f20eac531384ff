"""Stage ``synthesize``: an LLM writes target-genre text in the target language; the MT model back-translates it.

Few-shot prompts from the target-genre monolingual pool (never a test book) → ``synth.backend`` generates
lines → the filters of :mod:`pipeline.augment.synthesis` (counted) → the first ``augment.pool.synthetic`` kept lines are
translated into English with the same MT model and decoding as ``backtranslate``. The only difference between
the two augmentations is then whether the target-language side is real or LLM-written. The English side gets
the same language-ID label (``lid``, the same model as ``backtranslate`` trains) and, in ``bitext``, the same
filters (:mod:`pipeline.augment.pools`). Generation time grows with the pool: it is the DAG's longest stage.

Writes the pool ``data/aug/synthetic.tsv`` (:data:`pipeline.augment.pools.POOL_COLUMNS`, ``origin=synthetic``),
``data/synth/generated.tsv`` (every generated line with its verdict), ``data/synth/prompts.tsv`` (the pool
verse ids of each prompt's shots, for audits) and ``metrics/synthesize.json``.

Generation is saved batch by batch in ``data/partial/`` (:class:`pipeline.augment.synthesis.Checkpoint`; git-ignored,
outside the outputs DVC removes before a run): a run that was killed or cut continues where it stopped, a run that
failed for want of kept lines continues when ``synth.max_prompts`` is raised, and the file goes once the stage
succeeds.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from tqdm import tqdm

from pipeline.augment.lid import train_bible_lid
from pipeline.augment.pools import POOL_COLUMNS, write_pools
from pipeline.augment.synthesis import (
    FILTERS,
    Checkpoint,
    FilterConfig,
    LineFilter,
    build_prompt,
    finetune_documents,
    quality,
    synthesize,
)
from pipeline.config import hardware, paths, seeds
from pipeline.config.params import Params, load_params
from pipeline.data import store
from pipeline.data.splits import is_test_id, normalise
from pipeline.io import DataFileError, sha256_file, write_metrics, write_tsv
from pipeline.llm.generate import LocalLM, OpenAIBackend
from pipeline.mt import backtranslate_rows, load_translator
from pipeline.stages import run_stage, skipped_without_bitext

OUT_PATH = paths.AUG_FILES["synthetic"]
GENERATED, GENERATED_COLUMNS = paths.SYNTH_GENERATED, ("line_id", "prompt_id", "verdict", "text")
PROMPTS, PROMPTS_COLUMNS = paths.SYNTH_PROMPTS, ("prompt_id", "shot_ids")
#: The generation checkpoints (see the module's docstring).
CHECKPOINT_DIR = Path("data/partial")


class SynthesisError(DataFileError):
    """Too few generated lines passed the filters."""


def make_backend(params: Params, pool: list[str]):
    cfg = params.synth
    if cfg.backend == "openai":
        return OpenAIBackend(
            cfg.endpoint, cfg.endpoint_model, chat=cfg.chat, timeout=cfg.timeout, retries=cfg.retries
        ), {}
    lm = LocalLM(paths.LLM_DIR)
    info = {"vocab_full": lm.vocab_size}
    if cfg.trim_vocab:
        info["vocab_trimmed"] = lm.trim([*pool, build_prompt([], params.lang, cfg.domain)])  # pool + prompt header
    if cfg.finetune_steps:
        started = time.perf_counter()
        docs = finetune_documents(
            pool, params.lang, cfg.shots, seeds.rng(params.lang_seed, "synthesize", "finetune"), cfg.domain
        )
        losses = lm.finetune(
            docs,
            cfg.finetune_steps,
            lr=cfg.finetune_lr,
            batch_size=cfg.finetune_batch_size,
            max_length=cfg.finetune_max_length,
            train_layers=cfg.finetune_layers,
            seed=seeds.derive(params.lang_seed, "synthesize", "finetune"),
        )
        info.update(
            finetune_seconds=round(time.perf_counter() - started, 1),
            finetune_loss_first=round(losses[0], 4),
            finetune_loss_last=round(losses[-1], 4),
        )
    info["dtype"] = hardware.resolve("synth.dtype", cfg.dtype)  # what ran: auto resolved for this CPU
    lm.cast(info["dtype"])
    return lm, info


def checkpoint_key(params: Params, pool: list[str], dtype: str | None) -> dict:
    """Everything the continuations depend on: the language, the root seed, every ``synth`` setting but
    ``max_prompts`` (raising it continues a checkpoint), the prompt pool, the LLM's files and the dtype that ran."""
    llm = paths.LLM_DIR
    files = sorted(p for p in llm.rglob("*") if p.is_file()) if llm.is_dir() else []
    return {
        "lang": params.lang,
        "seed": params.lang_seed,
        "synth": params.synth.model_dump(mode="json", exclude={"max_prompts"}),
        "pool": hashlib.sha256("\n".join(pool).encode()).hexdigest(),
        "llm": {str(p.relative_to(llm)): sha256_file(p) for p in files},
        "dtype": dtype,
    }


def read_pool() -> tuple:
    """The monolingual target-genre pool the prompts draw from (no test verse, no test text), and the test texts."""
    mono = store.read_file("mono")
    assert not mono["id"].map(is_test_id).any(), "test verse in the monolingual pool"
    pool = list(mono["xx"])
    test = store.test_texts()
    leaked = [t for t in pool if normalise(t) in test]
    assert not leaked, f"test text in the prompt pool: {leaked[0][:60]!r}"
    return mono, pool, test


def generate_lines(params: Params, backend, pool: list[str], line_filter: LineFilter, checkpoint: Checkpoint):
    """Prompt ``backend`` until ``augment.pool.synthetic`` lines pass ``line_filter`` (or ``synth.max_prompts``)."""
    cfg = params.synth
    with tqdm(total=cfg.max_prompts, desc="synthesize", unit="prompt") as bar:
        return synthesize(
            backend,
            pool,
            params.lang,
            target=params.augment.pool.synthetic,
            max_prompts=cfg.max_prompts,
            shots=cfg.shots,
            batch_size=cfg.batch_size,
            samples_per_prompt=cfg.samples_per_prompt,
            line_filter=line_filter,
            rng=seeds.rng(params.lang_seed, "synthesize", "shots"),
            seed=seeds.derive(params.lang_seed, "synthesize", "generate"),
            checkpoint=checkpoint,
            domain=cfg.domain,
            progress=bar,
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            repetition_penalty=cfg.repetition_penalty,
            no_repeat_ngram_size=cfg.no_repeat_ngram_size,
        )


def check_enough(result, removed: dict, params: Params, checkpoint: Checkpoint) -> None:
    """One clear error when fewer lines passed the filters than ``augment.pool.synthetic`` asks for."""
    target, max_prompts = params.augment.pool.synthetic, params.synth.max_prompts
    if len(result.kept) < target:
        raise SynthesisError(
            f"only {len(result.kept)} of augment.pool.synthetic={target} generated lines passed the filters after "
            f"{result.prompts} prompts (synth.max_prompts={max_prompts}); generated {len(result.records)}, "
            f"removed by filter: {removed}. Raise synth.max_prompts (the run continues from the prompts kept in "
            f"{checkpoint.path}), loosen the filters or use a stronger model. "
            f"Sample of rejected lines: {[(r.verdict, r.text[:60]) for r in result.records[:3]]}"
        )


def backtranslate_kept(params: Params, kept) -> tuple[list, dict]:
    """The kept lines back-translated into English like ``backtranslate``'s pool: bitext rows and MT statistics."""
    return backtranslate_rows(
        load_translator(params.mt, paths.MT_DIR, "xx-en"),
        params.backtranslate,
        [f"synth:{params.lang}:{r.line_id:06d}" for r in kept],
        [r.text for r in kept],
        "synthetic",
        "target_genre",
        batch_size=params.mt.batch_size,
        seed=seeds.derive(params.lang_seed, "synthesize"),
        no_repeat_ngram_size=params.mt.no_repeat_ngram_size,
    )


def main() -> None:
    params = load_params()
    cfg = params.synth
    tables = {OUT_PATH: POOL_COLUMNS, GENERATED: GENERATED_COLUMNS, PROMPTS: PROMPTS_COLUMNS}
    if skipped_without_bitext(params, paths.metrics_file("synthesize"), tables=tables):
        return
    mono, pool, test = read_pool()
    started = time.perf_counter()
    lid, lid_info = (None, {})
    if cfg.lid:
        lid, lid_info = train_bible_lid(cfg.lid_verses, seeds.rng(params.lang_seed, "synthesize", "lid"))
    parts = {"lid_seconds": round(time.perf_counter() - started, 1)}  # where the stage's time goes (timings/)
    started = time.perf_counter()
    backend, backend_info = make_backend(params, pool)
    parts["backend_seconds"] = round(time.perf_counter() - started, 1)  # load, trim (and fine-tune) the LM
    line_filter = LineFilter(pool, params.lang, FilterConfig.from_params(cfg), lid, blocked=test)
    checkpoint = Checkpoint.for_key(CHECKPOINT_DIR, checkpoint_key(params, pool, backend_info.get("dtype")))
    result = generate_lines(params, backend, pool, line_filter, checkpoint)
    removed = {f: line_filter.counts.get(f, 0) for f in FILTERS}
    check_enough(result, removed, params, checkpoint)
    kept = result.kept
    write_tsv(GENERATED, [(r.line_id, r.prompt_id, r.verdict, r.text) for r in result.records], GENERATED_COLUMNS)
    mono_ids = list(mono["id"])
    write_tsv(
        PROMPTS, [(i, " ".join(mono_ids[j] for j in shots)) for i, shots in enumerate(result.shots)], PROMPTS_COLUMNS
    )
    started = time.perf_counter()
    rows, mt_stats = backtranslate_kept(params, kept)
    parts["backtranslate_seconds"] = round(time.perf_counter() - started, 1)
    written = write_pools(
        {"synthetic": rows}, mt_stats, params.backtranslate, lid_verses=params.augment.lid_verses, seed=params.lang_seed
    )

    all_lines = [r.text for r in result.records]
    write_metrics(
        paths.metrics_file("synthesize"),
        {
            "model": cfg.model if cfg.backend == "local" else cfg.endpoint_model,
            "backend": cfg.backend,
            "prompts": result.prompts,
            "generated": len(all_lines),
            "new_tokens": result.tokens,
            "tokens_per_second": round(result.tokens / result.seconds, 1),
            "generate_seconds": round(result.seconds, 1),
            "resumed_generate_seconds": round(result.resumed_seconds, 1),  # of which earlier runs' (checkpoint)
            **parts,
            "removed": removed,
            "passed": line_filter.counts.get("passed", 0),
            "kept": len(kept),
            "pass_rate": round(line_filter.counts.get("passed", 0) / max(1, len(all_lines)), 4),
            "quality_generated": quality(all_lines, line_filter, lid, params.lang),
            "quality_kept": quality([r.text for r in kept], line_filter, lid, params.lang),
            "lid": lid_info,
            "en_lid": written["lid"],
            **backend_info,
            "translation": written["translation"],
        },
    )
    checkpoint.remove()


if __name__ == "__main__":
    run_stage(main)
