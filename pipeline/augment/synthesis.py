"""LLM-synthesised target-language text: few-shot prompts, line extraction, filters and quality measures.

The language model writes more lines "in the same language and genre" as ``k`` verses sampled (seeded) from
the target-genre monolingual pool, which never contains a test book. Every generated line then goes through
the filters below, in order; the first that rejects it is counted, so the metrics say what was removed and why:

``empty`` · ``too_short`` / ``too_long`` (words) · ``repetitive`` (a word n-gram loop, as in MT output) ·
``test_text`` (equals, or shares ≥ ``max_copy_overlap`` of its 4-grams with, a test query or document: a small LM
may have memorised the Bible) · ``copy`` (equals a pool or prompt line) · ``near_copy`` (share of its word 4-grams
found in the pool ≥ ``max_copy_overlap``) · ``duplicate`` (of a kept line) ·
``word_validity`` (share of its words in the pool vocabulary < ``min_word_validity``) · ``language``
(the character n-gram language ID says another language).

Generation is checkpointed batch by batch (:class:`Checkpoint`): a run that was killed or cut continues where it
stopped and writes what an uninterrupted run writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.config import languages
from pipeline.data.splits import normalise
from pipeline.mt import is_degenerate

GENRE = "verses of psalms, proverbs and prophecy"
FILTERS = (
    "empty",
    "too_short",
    "too_long",
    "repetitive",
    "test_text",
    "copy",
    "near_copy",
    "duplicate",
    "word_validity",
    "language",
)

_WORD = re.compile(r"\w+", re.UNICODE)
_BULLET = re.compile(r"^\s*(?:\d{1,3}[.):]|[-*•])\s*")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def build_prompt(shots: Sequence[str], lang: str, domain: str | None = None) -> str:
    """A continuation prompt for a base LM: a header, then the shots one per line, then an open line."""
    language = languages.get(lang).name  # the registry's name of the language
    header = f"{language} text: {GENRE}" + (f", about {domain}" if domain else "") + "."
    return header + "\n" + "\n".join(s.strip() for s in shots) + "\n"


def finetune_documents(
    pool: Sequence[str], lang: str, lines: int, rng: np.random.Generator, domain: str | None = None
) -> list[str]:
    """The pool as prompt-shaped documents (header + ``lines`` lines each, shuffled): fine-tuning on these
    teaches the LM to continue a prompt with more lines, not to stop after one."""
    order = rng.permutation(len(pool))
    return [build_prompt([pool[j] for j in order[i : i + lines]], lang, domain) for i in range(0, len(order), lines)]


def sample_shots(n_texts: int, k: int, n_prompts: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Indices of ``k`` distinct pool lines for each of ``n_prompts`` prompts."""
    if k > n_texts:
        raise ValueError(f"synth.shots={k} but the prompt pool has only {n_texts} lines")
    return [rng.choice(n_texts, size=k, replace=False) for _ in range(n_prompts)]


def split_lines(text: str, finished: bool) -> list[str]:
    """The lines of a continuation, bullets/numbers stripped; an unfinished last line (cut by the token
    limit) is dropped, since it is a fragment."""
    parts = text.split("\n")
    if not finished and len(parts) > 0:
        parts = parts[:-1]
    return [_BULLET.sub("", p).strip() for p in parts]


@dataclass
class FilterConfig:
    """Thresholds of :class:`LineFilter`; no defaults here: they come from the ``synth`` params."""

    min_words: int
    max_words: int
    max_copy_overlap: float
    min_word_validity: float

    @classmethod
    def from_params(cls, synth) -> FilterConfig:
        """From the ``synth`` params section (duck-typed)."""
        return cls(synth.min_words, synth.max_words, synth.max_copy_overlap, synth.min_word_validity)


@dataclass
class LineFilter:
    """Stateful filter chain (it remembers kept lines for the duplicate check); counts every rejection."""

    pool: Sequence[str]
    lang: str
    config: FilterConfig
    lid: object | None = None  # a LanguageID; None switches the language filter off
    blocked: Iterable[str] = ()  # test texts: never let one (or a near copy) into training data
    counts: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.pool_norm = {normalise(t) for t in self.pool}
        self.vocab = {w for t in self.pool for w in words(t)}
        self.pool_4grams = {g for t in self.pool for g in ngrams(words(t), 4)}
        self.blocked_norm = {normalise(t) for t in self.blocked}
        self.blocked_4grams = {g for t in self.blocked_norm for g in ngrams(words(t), 4)}
        self.kept_norm: set[str] = set()

    def word_validity(self, line: str) -> float:
        toks = words(line)
        return sum(w in self.vocab for w in toks) / len(toks) if toks else 0.0

    def copy_overlap(self, line: str, reference: set | None = None) -> float:
        grams = ngrams(words(line), 4)
        reference = self.pool_4grams if reference is None else reference
        return sum(g in reference for g in grams) / len(grams) if grams else 0.0

    def reason(self, line: str, prompt_lines: Iterable[str] = ()) -> str | None:
        """The first filter that rejects ``line`` (without the language check, done in batches), or None."""
        cfg = self.config
        n = len(words(line))
        norm = normalise(line)
        if n == 0:
            return "empty"
        if n < cfg.min_words:
            return "too_short"
        if n > cfg.max_words:
            return "too_long"
        if is_degenerate(line):
            return "repetitive"
        if norm in self.blocked_norm or self.copy_overlap(line, self.blocked_4grams) >= cfg.max_copy_overlap:
            return "test_text"
        if norm in self.pool_norm or norm in {normalise(p) for p in prompt_lines}:
            return "copy"
        if self.copy_overlap(line) >= cfg.max_copy_overlap:
            return "near_copy"
        if norm in self.kept_norm:
            return "duplicate"
        if self.word_validity(line) < cfg.min_word_validity:
            return "word_validity"
        return None

    def apply(self, lines: Sequence[str], prompts: Sequence[Sequence[str]]) -> list[str | None]:
        """Verdict per line (None = kept); ``prompts[i]`` are the shots line ``i`` was prompted with."""
        verdicts = [self.reason(line, shots) for line, shots in zip(lines, prompts, strict=True)]
        if self.lid is not None:
            todo = [i for i, v in enumerate(verdicts) if v is None]
            for i, label in zip(todo, self.lid.predict([lines[i] for i in todo]), strict=True):
                if label != self.lang:
                    verdicts[i] = "language"
        for i, line in enumerate(lines):
            if verdicts[i] is None:
                norm = normalise(line)
                if norm in self.kept_norm:  # a duplicate within this batch
                    verdicts[i] = "duplicate"
                self.kept_norm.add(norm)
            self.counts[verdicts[i] or "passed"] += 1
        return verdicts


def distinct_n(lines: Sequence[str], n: int) -> float:
    """Distinct-n (Li et al. 2016): distinct word n-grams / all word n-grams."""
    grams = [g for line in lines for g in ngrams(words(line), n)]
    return round(len(set(grams)) / len(grams), 4) if grams else 0.0


def novelty(lines: Sequence[str], pool_4grams: set) -> float:
    """Share of the lines' word 4-grams that do not occur in the pool."""
    grams = [g for line in lines for g in ngrams(words(line), 4)]
    return round(sum(g not in pool_4grams for g in grams) / len(grams), 4) if grams else 0.0


@dataclass
class Record:
    line_id: int
    prompt_id: int
    text: str
    verdict: str  # "kept" or the filter that rejected it


@dataclass
class SynthesisResult:
    records: list[Record]
    tokens: int
    seconds: float  # generation and filtering, over every run that contributed batches
    prompts: int
    shots: list[list[int]] = field(default_factory=list)  # pool indices of each prompt's shots (for audits)
    resumed_seconds: float = 0.0  # the part of ``seconds`` spent by earlier runs (batches from the checkpoint)

    @property
    def kept(self) -> list[Record]:
        return [r for r in self.records if r.verdict == "kept"]


class CheckpointError(ValueError):
    """A checkpoint that does not continue the synthesis asked for."""


@dataclass
class Checkpoint:
    """The batches a synthesis has generated so far, one JSON line each, appended and synced as each batch ends.

    :func:`synthesize` replays the saved batches (it draws the same shots, checks them against the saved ones and
    filters the saved continuations again) and generates only the rest, so a run that was killed or cut (a stage
    longer than the machine is held) continues where it stopped and ends with what an uninterrupted run ends with.
    The file's name is a digest of ``key``, everything the continuations depend on, so a checkpoint is only read
    by the synthesis that wrote it.
    """

    path: Path

    @classmethod
    def for_key(cls, directory: Path | str, key: dict) -> Checkpoint:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        return cls(Path(directory) / f"synthesize-{digest}.jsonl")

    def load(self) -> list[dict]:
        """The saved batches in order; a last line cut off by a kill is dropped (and cut from the file)."""
        if not self.path.exists():
            return []
        batches, valid = [], 0
        with open(self.path, "rb") as f:
            for raw in f:
                try:
                    batches.append(json.loads(raw))
                except json.JSONDecodeError:
                    break
                valid += len(raw)
        if valid < self.path.stat().st_size:
            os.truncate(self.path, valid)
        return batches

    def append(self, batch: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(batch, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def synthesize(
    backend,
    pool: Sequence[str],
    lang: str,
    *,
    target: int,
    max_prompts: int,
    shots: int,
    batch_size: int,
    samples_per_prompt: int,
    line_filter: LineFilter,
    rng: np.random.Generator,
    seed: int,
    checkpoint: Checkpoint | None,
    domain: str | None = None,
    progress=None,
    **decoding,
) -> SynthesisResult:
    """Prompt ``backend`` in batches of ``batch_size`` prompts, ``samples_per_prompt`` continuations each, until
    ``target`` lines pass the filters or ``max_prompts`` are used. With a ``checkpoint``, the batches it holds are
    replayed instead of generated and every new batch is saved to it."""
    records: list[Record] = []
    all_shots: list[list[int]] = []
    saved = checkpoint.load() if checkpoint is not None else []
    tokens, seconds, resumed_seconds, used, kept = 0, 0.0, 0.0, 0, 0
    while kept < target and used < max_prompts:
        started = time.perf_counter()
        n = min(batch_size, max_prompts - used)
        shot_ids = [[int(i) for i in ids] for ids in sample_shots(len(pool), shots, n, rng)]
        shot_texts = [[pool[i] for i in ids] for ids in shot_ids]
        all_shots.extend(shot_ids)
        if saved:
            batch = saved.pop(0)
            if batch["used"] != used or batch["shots"] != shot_ids:
                raise CheckpointError(
                    f"{checkpoint.path}: the batch saved at prompt {batch['used']} was not drawn by these settings "
                    f"(this run's batch at prompt {used} has other shots); delete the file to start over"
                )
            gens, batch_seconds = batch["gens"], batch["seconds"]
            resumed_seconds += batch_seconds
        else:
            prompts = [build_prompt(s, lang, domain) for s in shot_texts]
            out = backend.generate(prompts, samples=samples_per_prompt, seed=seed + used, **decoding)
            if len(out) != n * samples_per_prompt:
                raise ValueError(
                    f"the backend returned {len(out)} continuations for {n} prompts x {samples_per_prompt}"
                )
            gens = [{"text": g.text, "finished": g.finished, "new_tokens": g.new_tokens} for g in out]
            batch_seconds = None
        lines, origins = [], []
        for k, gen in enumerate(gens):
            tokens += gen["new_tokens"]
            for line in split_lines(gen["text"], gen["finished"]):
                lines.append(line)
                origins.append(k // samples_per_prompt)  # the prompt it continues
        verdicts = line_filter.apply(lines, [shot_texts[j] for j in origins])
        for line, j, verdict in zip(lines, origins, verdicts, strict=True):
            verdict = verdict or ("kept" if kept < target else "surplus")
            kept += verdict == "kept"
            records.append(Record(len(records), used + j, line, verdict))
        if batch_seconds is None:  # generated by this run: saved before the next batch starts
            batch_seconds = round(time.perf_counter() - started, 3)
            if checkpoint is not None:
                checkpoint.append({"used": used, "shots": shot_ids, "seconds": batch_seconds, "gens": gens})
        seconds += batch_seconds
        used += n
        if progress is not None:
            progress.update(n)
            progress.set_postfix(kept=kept, tok_s=f"{tokens / max(seconds, 1e-9):.1f}")
    return SynthesisResult(records, tokens, seconds, used, all_shots, resumed_seconds)


def quality(lines: Sequence[str], line_filter: LineFilter, lid=None, lang: str | None = None) -> dict:
    """Quality measures of a set of lines (all generated, or kept)."""
    lines = [x for x in lines if x.strip()]
    out = {
        "lines": len(lines),
        "distinct_1": distinct_n(lines, 1),
        "distinct_2": distinct_n(lines, 2),
        "novelty_4gram": novelty(lines, line_filter.pool_4grams),
        "word_validity": round(float(np.mean([line_filter.word_validity(x) for x in lines])), 4) if lines else 0.0,
        "words_mean": round(float(np.mean([len(words(x)) for x in lines])), 2) if lines else 0.0,
    }
    if lid is not None and lines:
        out["lid_pass_rate"] = round(float(np.mean([p == lang for p in lid.predict(lines)])), 4)
    return out
