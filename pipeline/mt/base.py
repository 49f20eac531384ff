"""What every translator shares: the decoding methods, the length limit, :meth:`Translator.translate`, and reading
a trained model directory (:func:`read_model_dir`).

Decoding follows Edunov et al. (2018), "Understanding Back-Translation at Scale": ``beam`` search,
``sampling`` (unrestricted, or top-k) and ``noised`` beam output (:func:`pipeline.mt.text.add_noise`: word deletion,
filler replacement and a bounded local shuffle). :class:`Translator` does the steps shared by every engine; a
subclass (:mod:`pipeline.mt.translate`, :mod:`pipeline.mt.ct2`) only encodes one sentence (:meth:`Translator._encode`)
and generates one batch (:meth:`Translator._generate`).
"""

from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from pipeline.io import DataFileError, read_json
from pipeline.mt.config import CHECKPOINT, MT_JSON, SPM_MODEL, MTConfig, dict_files
from pipeline.mt.text import add_noise, clean, translation_stats

#: generation length limit of both engines: ``MAX_LEN_A * source_tokens + MAX_LEN_B`` target tokens (also capped by
#: the model's max positions; fairseq's max_len_a / max_len_b); keeps decoding loops short.
MAX_LEN_A = 2.0
MAX_LEN_B = 10
#: Decoding methods after Edunov et al. (2018).
METHODS = ("beam", "sampling", "noised")


class MTError(DataFileError):
    """An MT model directory is missing, incomplete or corrupt (a ValueError naming the directory)."""


def read_model_dir(model_dir: Path, direction: str | None = None) -> tuple[MTConfig, str]:
    """The config and direction (``xx-en`` or ``en-xx``) of a model directory written by
    :func:`pipeline.mt.train_mt`; :class:`MTError` naming it if it is missing, incomplete, or (``direction`` given)
    translates the other way."""
    if not model_dir.is_dir():
        raise MTError(f"MT model directory not found: {model_dir}")
    try:
        meta = read_json(model_dir / MT_JSON)
        config, found = MTConfig.from_dict(meta["config"]), meta["direction"]
        files = (SPM_MODEL, CHECKPOINT, *dict_files(found))
    except (DataFileError, KeyError, TypeError, ValueError) as exc:
        raise MTError(f"MT model directory {model_dir}: missing or bad {MT_JSON}: {exc}") from None
    missing = [n for n in files if not (model_dir / n).is_file()]
    if missing:
        raise MTError(f"MT model directory {model_dir} is incomplete: missing {missing}")
    if direction is not None and found != direction:
        raise MTError(f"MT model directory {model_dir} translates {found}, not {direction}")
    return config, found


def _check_method(
    method: str, beam: int, topk: int | None, batch_size: int, seed: int | None, noise: dict | None
) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown translation method {method!r}; expected one of {list(METHODS)}")
    if beam < 1 or batch_size < 1:
        raise ValueError(f"beam and batch_size must be >= 1, got beam={beam}, batch_size={batch_size}")
    if method == "sampling" and topk is None:
        raise ValueError("sampling needs topk (backtranslate.topk: -1 unrestricted, else top-k)")
    if topk is not None and (topk == 0 or topk < -1):
        raise ValueError(f"topk must be -1 (unrestricted sampling) or >= 1, got {topk}")
    if method != "beam" and seed is None:
        raise ValueError(f"{method} needs a seed")
    if method == "noised" and noise is None:
        raise ValueError("noised needs its noise settings (backtranslate.p_drop, p_blank, max_shuffle)")


class Translator(ABC):
    """An xx→en model; :meth:`translate` does the shared steps and calls the two hooks below."""

    @abstractmethod
    def _encode(self, sentence: str) -> tuple[Any, int, bool]:
        """One cleaned, non-empty sentence → (what :meth:`_generate` takes, its length in tokens, truncated?)."""

    @abstractmethod
    def _generate(
        self, batch: list[Any], method: str, beam: int, topk: int | None, no_repeat_ngram_size: int
    ) -> list[str]:
        """One English translation per item of ``batch`` (at most ``batch_size`` items from :meth:`_encode`);
        ``no_repeat_ngram_size`` > 0 forbids repeating any target n-gram of that size (0: no constraint)."""

    def _generate_all(
        self, batches: list[list[Any]], method: str, beam: int, topk: int | None, no_repeat_ngram_size: int
    ) -> Iterator[list[str]]:
        """:meth:`_generate` for each batch, in order (an engine that decodes batches side by side overrides this)."""
        for batch in batches:
            yield self._generate(batch, method, beam, topk, no_repeat_ngram_size)

    def _seed(self, seed: int) -> None:
        """Seed what :meth:`_generate` samples with (torch's generator; an engine with its own overrides this)."""
        torch.manual_seed(seed)

    def translate(
        self,
        sentences: Sequence[str],
        method: str,
        *,
        beam: int,
        no_repeat_ngram_size: int,
        batch_size: int,
        topk: int | None = None,
        seed: int | None = None,
        noise: dict | None = None,
        progress: bool = True,
    ) -> tuple[list[str], dict[str, Any]]:
        """Translate xx sentences into English.

        The decoding settings have no defaults here: callers pass params.yaml's (``mt.beam``, ``mt.batch_size``,
        ``mt.no_repeat_ngram_size``, ``backtranslate.*``). ``topk`` is needed (and used) by ``sampling`` only,
        ``seed`` by ``sampling`` and ``noised`` only (``None``: beam search, which draws nothing), ``noise`` (the
        keyword arguments of :func:`~pipeline.mt.text.add_noise` but ``rng``) by ``noised`` only.

        ``method``: ``beam`` (beam search of width ``beam``), ``sampling`` (one sample per sentence
        from the full distribution if ``topk == -1``, else from the ``topk`` most likely tokens) or
        ``noised`` (beam output passed through :func:`add_noise`). ``no_repeat_ngram_size`` > 0 bans repeating
        a target n-gram of that size in any method (fairseq and HF both support it). Sampling and noise are
        deterministic for a given ``seed`` (and ``batch_size``). Empty sentences translate to ``""``;
        sentences longer than the model's max positions are truncated. Sentences are translated in
        batches of similar length, shortest first. Returns the translations (in input order) and
        stats: ``method``, ``sentences``, ``empty``, ``truncated``, ``seconds``,
        ``sentences_per_second``, ``degenerate_rate``, ``length_ratio``.
        """
        _check_method(method, beam, topk, batch_size, seed, noise)
        started = time.perf_counter()
        sentences = [clean(s) for s in sentences]
        outputs = [""] * len(sentences)
        items: dict[int, Any] = {}
        lengths: dict[int, int] = {}
        truncated = 0
        for i, s in enumerate(sentences):
            if s:
                items[i], lengths[i], cut = self._encode(s)
                truncated += cut
        order = sorted(items, key=lengths.__getitem__)  # similar lengths batch together
        if seed is not None:
            self._seed(seed)
        with (
            torch.inference_mode(),
            tqdm(total=len(order), desc=f"translate ({method})", unit="sent", disable=not progress) as bar,
        ):
            chunks = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
            batches = [[items[i] for i in chunk] for chunk in chunks]
            for chunk, texts in zip(
                chunks, self._generate_all(batches, method, beam, topk, no_repeat_ngram_size), strict=True
            ):
                for i, text in zip(chunk, texts, strict=True):
                    outputs[i] = text
                bar.update(len(chunk))
        if method == "noised":
            rng = random.Random(seed)
            outputs = [add_noise(o, rng, **noise) for o in outputs]
        seconds = time.perf_counter() - started
        n = len(items)
        stats: dict[str, Any] = {
            "method": method,
            "sentences": len(sentences),
            "empty": len(sentences) - n,
            "truncated": truncated,
            "seconds": round(seconds, 3),
            "sentences_per_second": round(n / seconds, 2) if seconds > 0 else None,
        }
        stats.update(translation_stats(sentences, outputs))
        return outputs, stats
