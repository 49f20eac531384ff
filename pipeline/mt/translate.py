"""xx→en translation with the fairseq model of :func:`pipeline.mt.train_mt` or a Hugging Face seq2seq model.

The fairseq model decodes on CTranslate2 (``mt.engine: ctranslate2``, :mod:`pipeline.mt.ct2`) or on fairseq's own
Python beam search (``mt.engine: fairseq``, :class:`FairseqTranslator`); :func:`load_translator` picks.

Decoding follows Edunov et al. (2018), "Understanding Back-Translation at Scale": ``beam`` search,
``sampling`` (unrestricted, or top-k) and ``noised`` beam output (:func:`add_noise`: word deletion,
filler replacement and a bounded local shuffle). :class:`Translator` does the steps shared by both
models; a subclass only encodes one sentence (:meth:`Translator._encode`) and generates one batch
(:meth:`Translator._generate`).
"""

from __future__ import annotations

import os
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, get_args

import torch
from tqdm.auto import tqdm

from pipeline.io import DataFileError, read_json
from pipeline.mt.config import CHECKPOINT, DICTS, MT_JSON, SPM_MODEL, MTConfig
from pipeline.mt.text import add_noise, clean, translation_stats
from pipeline.mt.train import quiet_fairseq
from pipeline.params import MTEngine

#: The fairseq model's name for :func:`load_translator`; any other name is a Hugging Face model.
FAIRSEQ_LOCAL = "fairseq-local"
#: What decodes the fairseq model (``mt.engine``): its values in pipeline.params.
ENGINES = get_args(MTEngine)
#: generation length limit of both engines: ``MAX_LEN_A * source_tokens + MAX_LEN_B`` target tokens (also capped by
#: the model's max positions; fairseq's max_len_a / max_len_b); keeps decoding loops short.
MAX_LEN_A = 2.0
MAX_LEN_B = 10
#: Decoding methods after Edunov et al. (2018).
METHODS = ("beam", "sampling", "noised")


class MTError(DataFileError):
    """An MT model directory is missing, incomplete or corrupt (a ValueError naming the directory)."""


def _check_method(method: str, beam: int, topk: int | None, batch_size: int, seed: int | None) -> None:
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
        progress: bool = True,
    ) -> tuple[list[str], dict[str, Any]]:
        """Translate xx sentences into English.

        The decoding settings have no defaults here: callers pass params.yaml's (``mt.beam``, ``mt.batch_size``,
        ``mt.no_repeat_ngram_size``, ``backtranslate.*``). ``topk`` is needed (and used) by ``sampling`` only,
        ``seed`` by ``sampling`` and ``noised`` only (``None``: beam search, which draws nothing).

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
        _check_method(method, beam, topk, batch_size, seed)
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
            outputs = [add_noise(o, rng) for o in outputs]
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


@contextmanager
def _working_ngram_block():
    """fairseq 0.12's CPU n-gram blocker reads the padded end of the token buffer instead of the last generated
    tokens, so ``no_repeat_ngram_size`` silently does nothing on CPU (facebookresearch/fairseq#5206). For the block,
    the generator is built with a blocker that sees only the tokens generated so far."""
    from fairseq import sequence_generator
    from fairseq.ngram_repeat_block import NGramRepeatBlock

    class _Blocker(NGramRepeatBlock):
        def forward(self, tokens, lprobs, bsz: int, beam_size: int, step: int):
            return self._no_repeat_ngram(tokens[:, : step + 1], lprobs, bsz, beam_size, step)

    original = sequence_generator.NGramRepeatBlock
    sequence_generator.NGramRepeatBlock = _Blocker
    try:
        yield
    finally:
        sequence_generator.NGramRepeatBlock = original


class FairseqTranslator(Translator):
    """A fairseq model directory written by :func:`pipeline.mt.train_mt`, loaded for translation on CPU."""

    def __init__(self, hub, model_dir: Path, config: MTConfig) -> None:
        self.hub = hub
        self.model_dir = model_dir
        self.config = config
        limit = hub.max_positions  # (source, target) for translation models
        self.max_source_tokens = int(limit[0] if isinstance(limit, (tuple, list)) else limit)

    @classmethod
    def load(cls, model_dir: Path | str) -> FairseqTranslator:
        """Load ``model_dir``; a missing or corrupt file raises :class:`MTError` naming the directory."""
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise MTError(f"MT model directory not found: {model_dir}")
        missing = [n for n in (MT_JSON, SPM_MODEL, CHECKPOINT, *DICTS) if not (model_dir / n).is_file()]
        if missing:
            raise MTError(f"MT model directory {model_dir} is incomplete: missing {missing}")
        try:
            config = MTConfig.from_dict(read_json(model_dir / MT_JSON)["config"])
        except (DataFileError, KeyError, TypeError, ValueError) as exc:
            raise MTError(f"MT model directory {model_dir}: bad {MT_JSON}: {exc}") from None
        # fairseq checkpoints hold pickled config objects: torch >= 2.6 refuses them by default.
        os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
        from fairseq.models.transformer import TransformerModel

        try:
            with quiet_fairseq():
                hub = TransformerModel.from_pretrained(
                    str(model_dir),
                    checkpoint_file=CHECKPOINT,
                    data_name_or_path=".",
                    bpe="sentencepiece",
                    sentencepiece_model=str(model_dir / SPM_MODEL),
                )
        except Exception as exc:  # torch/pickle/zip/spm errors for truncated or corrupt files
            raise MTError(
                f"MT model directory {model_dir}: cannot load {CHECKPOINT} / {SPM_MODEL} / dictionaries "
                f"(truncated or corrupt?): {type(exc).__name__}: {exc}"
            ) from exc
        hub.eval()
        return cls(hub, model_dir, config)

    def _encode(self, sentence: str) -> tuple[torch.Tensor, int, bool]:
        """Token ids (with EOS), truncated to the model's max source positions."""
        tokens = self.hub.encode(sentence)
        if len(tokens) <= self.max_source_tokens:
            return tokens, len(tokens), False
        eos = torch.tensor([self.hub.src_dict.eos()], dtype=tokens.dtype)
        return torch.cat([tokens[: self.max_source_tokens - 1], eos]), self.max_source_tokens, True

    def _generate(
        self, batch: list[torch.Tensor], method: str, beam: int, topk: int | None, no_repeat_ngram_size: int
    ) -> list[str]:
        gen = {"beam": 1, "sampling": True, "sampling_topk": topk} if method == "sampling" else {"beam": beam}
        if no_repeat_ngram_size:
            gen["no_repeat_ngram_size"] = no_repeat_ngram_size
        self.hub.cfg.dataset.batch_size = len(batch)  # the whole batch in one fairseq batch
        self.hub.cfg.dataset.max_tokens = None
        with quiet_fairseq(), _working_ngram_block():
            hypos = self.hub.generate(batch, max_len_a=MAX_LEN_A, max_len_b=MAX_LEN_B, **gen)
        return [self.hub.decode(h[0]["tokens"]) for h in hypos]


class HFTranslator(Translator):
    """A Hugging Face seq2seq model (name or local path).

    For NLLB/M2M-style tokenizers pass ``src_lang`` (set on the tokenizer) and ``tgt_lang`` (its
    token id is forced as the first generated token). Note that a hub *name* is downloaded by
    ``transformers`` unless it is already cached. Sources are truncated to ``max_length`` tokens and
    translations limited to ``max_length`` new tokens.
    """

    def __init__(
        self,
        name: str,
        *,
        src_lang: str | None = None,
        tgt_lang: str | None = None,
        max_length: int = 256,
    ) -> None:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.name = name
        self.max_length = max_length
        tok_kwargs = {"src_lang": src_lang} if src_lang else {}
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name, **tok_kwargs)
            self.model = AutoModelForSeq2SeqLM.from_pretrained(name).eval()
        except (OSError, ValueError) as exc:
            raise MTError(f"cannot load Hugging Face MT model {name!r}: {exc}") from exc
        self.forced_bos_token_id: int | None = None
        if tgt_lang:
            tid = self.tokenizer.convert_tokens_to_ids(tgt_lang)
            if tid is None or tid == self.tokenizer.unk_token_id:
                raise MTError(f"Hugging Face MT model {name!r}: tgt_lang {tgt_lang!r} is not a token of its tokenizer")
            self.forced_bos_token_id = int(tid)

    def _encode(self, sentence: str) -> tuple[str, int, bool]:
        """The sentence itself (tokenized per batch, with padding) and its untruncated length in tokens."""
        n = len(self.tokenizer(sentence)["input_ids"])
        return sentence, n, n > self.max_length

    def _generate(
        self, batch: list[str], method: str, beam: int, topk: int | None, no_repeat_ngram_size: int
    ) -> list[str]:
        if method == "sampling":
            gen: dict[str, Any] = {"do_sample": True, "num_beams": 1, "top_k": topk if topk > 0 else 0, "top_p": 1.0}
        else:
            gen = {"do_sample": False, "num_beams": beam}
        if self.forced_bos_token_id is not None:
            gen["forced_bos_token_id"] = self.forced_bos_token_id
        if no_repeat_ngram_size:
            gen["no_repeat_ngram_size"] = no_repeat_ngram_size
        enc = self.tokenizer(batch, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt")
        out = self.model.generate(**enc, max_new_tokens=self.max_length, **gen)
        return [clean(text) for text in self.tokenizer.batch_decode(out, skip_special_tokens=True)]


def load_translator(mt: Any, model_dir: Path | str) -> Translator:
    """The model the stages translate with, from the ``mt`` params section (``.name``, ``.engine``,
    ``.compute_type``, ``.src_lang``, ``.tgt_lang``).

    ``mt.name == "fairseq-local"``: the fairseq model in ``model_dir``, decoded by ``mt.engine`` (CTranslate2 in
    ``mt.compute_type``, or fairseq); any other name is a Hugging Face model.
    """
    if mt.name == FAIRSEQ_LOCAL:
        if mt.engine not in ENGINES:
            raise ValueError(f"mt.engine: unknown engine {mt.engine!r}; expected one of {list(ENGINES)}")
        if mt.engine == "fairseq":
            return FairseqTranslator.load(model_dir)
        from pipeline.mt.ct2 import CTranslate2Translator

        return CTranslate2Translator.load(model_dir, mt.compute_type)
    return HFTranslator(mt.name, src_lang=mt.src_lang, tgt_lang=mt.tgt_lang)
