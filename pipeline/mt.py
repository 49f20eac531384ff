"""Train a small xx→en transformer with fairseq and use it (or a Hugging Face model) for back-translation.

The MT model translates target-language (``xx``) text into English: back-translating the
monolingual target-genre verses gives synthetic (xx, en) bitext for distillation.

Training (:func:`train_mt`), all on CPU:

1. a joint SentencePiece unigram model is trained on both sides of the MT training pairs only
   (never on dev or monolingual text), deterministically: fixed input order, no sampling, one thread;
2. the pairs are encoded into pieces; pairs with a side longer than ``max_positions`` (counting EOS)
   are dropped and counted, so an over-long verse can never crash training;
3. ``fairseq-preprocess`` binarises them with one joined dictionary (shared by both sides);
4. a fairseq ``transformer`` (sizes from :class:`MTConfig`, all embeddings shared) is trained with
   label-smoothed cross-entropy, Adam and the inverse-square-root schedule for ``cfg.epochs`` epochs;
5. the model directory gets only what translation needs (written atomically)::

       model_dir/
         mt.json                   config and training stats
         sentencepiece.bpe.model   joint SentencePiece model (the name fairseq's hub loader looks for)
         dict.xx.txt dict.en.txt   the (identical) joined fairseq dictionaries
         checkpoint.pt             the final (last-epoch) checkpoint, without optimizer state

Decoding (:class:`Translator`) follows Edunov et al. (2018), "Understanding Back-Translation at
Scale": ``beam`` search, ``sampling`` (unrestricted, or top-k) and ``noised`` beam output
(:func:`add_noise`: word deletion, filler replacement and a bounded local shuffle).

Losses reported by fairseq (and therefore by :func:`train_mt`) are label-smoothed cross-entropy
in bits per target token (fairseq divides by ln 2).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from pipeline.io import DataFileError, atomic_path, read_json, split_timings, write_json

#: Language codes used inside the fairseq data directory (source = target language, target = English).
SRC_LANG = "xx"
TGT_LANG = "en"
#: Files of a model directory written by :func:`train_mt`.
MT_JSON = "mt.json"
SPM_MODEL = "sentencepiece.bpe.model"
CHECKPOINT = "checkpoint.pt"
DICTS = (f"dict.{SRC_LANG}.txt", f"dict.{TGT_LANG}.txt")
#: The fairseq model's name for :func:`load_translator`; any other name is a Hugging Face model.
FAIRSEQ_LOCAL = "fairseq-local"
#: Decoding methods after Edunov et al. (2018).
METHODS = ("beam", "sampling", "noised")
#: Filler token of :func:`add_noise`.
BLANK = "<BLANK>"


class MTError(DataFileError):
    """An MT model directory is missing, incomplete or corrupt (a ValueError naming the directory)."""


@dataclass(frozen=True)
class MTConfig:
    """Size and training schedule of the fairseq xx→en transformer.

    The defaults were chosen with ``benchmarks/mt_tradeoff.py``: the best dev BLEU reachable in about
    five minutes of CPU training on the ~16k Swahili source-domain verse pairs (2 cores). In that
    budget a 2+2-layer, 128-dim model with a 4k vocabulary and small batches (many updates) beats
    wider/deeper models, which manage only one epoch, and an 8k vocabulary (a slower softmax).
    Three epochs underfit, so dropout is off by default; use ~0.1 when training for ~10+ epochs.
    """

    vocab_size: int = 4000  #: joint SentencePiece vocabulary
    embed_dim: int = 128
    ffn_dim: int = 512
    layers: int = 2  #: encoder layers = decoder layers
    heads: int = 4
    dropout: float = 0.0
    epochs: int = 3
    max_tokens: int = 1024  #: tokens per batch (fairseq's --max-tokens)
    lr: float = 2e-3
    warmup_updates: int = 300
    max_positions: int = 256  #: subword tokens, EOS included
    label_smoothing: float = 0.1
    seed: int = 1

    def __post_init__(self) -> None:
        for name in ("vocab_size", "embed_dim", "ffn_dim", "layers", "heads", "epochs", "max_tokens", "max_positions"):
            if getattr(self, name) < 1:
                raise ValueError(f"MTConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.embed_dim % self.heads:
            raise ValueError(f"MTConfig.embed_dim ({self.embed_dim}) must be divisible by heads ({self.heads})")
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"MTConfig.dropout and label_smoothing must be in [0, 1): {self}")
        if self.lr <= 0 or self.warmup_updates < 0:
            raise ValueError(f"MTConfig.lr must be > 0 and warmup_updates >= 0: {self}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MTConfig:
        """Build from a dict (e.g. the ``mt`` section of params.yaml); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown MTConfig key(s) {unknown}; known: {sorted(known)}")
        return cls(**d)


# --------------------------------------------------------------------------
# text helpers and metrics
# --------------------------------------------------------------------------
def _clean(text: str) -> str:
    """Collapse all whitespace (tabs and newlines would break fairseq's line-aligned files)."""
    return " ".join(str(text).split())


def _draw(rng: random.Random | np.random.Generator) -> float:
    """One uniform draw in [0, 1) from either kind of generator."""
    return float(rng.random())


def add_noise(
    sentence: str,
    rng: random.Random | np.random.Generator,
    p_drop: float = 0.1,
    p_blank: float = 0.1,
    max_shuffle: int = 3,
    filler: str = BLANK,
) -> str:
    """Noise a (back-)translation as in Edunov et al. (2018) / Lample et al. (2018).

    On whitespace-separated words, in this order (that of Lample et al.'s implementation):

    1. **local shuffle**: word ``i`` gets the key ``i + u_i`` with ``u_i ~ Uniform(0, max_shuffle + 1)``
       and words are sorted by key. A word can only be overtaken by words fewer than
       ``max_shuffle + 1`` positions away, so no word moves more than ``max_shuffle`` positions;
       ``max_shuffle = 0`` keeps the order;
    2. **deletion**: each word is dropped with probability ``p_drop`` (if every word would be
       dropped, one of them, chosen at random, is kept, so a non-empty sentence stays non-empty);
    3. **blanking**: each remaining word is replaced by ``filler`` with probability ``p_blank``.

    All randomness comes from ``rng`` (a ``random.Random`` or a numpy ``Generator``), so the same
    generator state gives the same output. Whitespace is normalised; an empty sentence stays empty.
    """
    if not 0.0 <= p_drop <= 1.0 or not 0.0 <= p_blank <= 1.0:
        raise ValueError(f"p_drop and p_blank must be probabilities, got {p_drop}, {p_blank}")
    if max_shuffle < 0:
        raise ValueError(f"max_shuffle must be >= 0, got {max_shuffle}")
    words = sentence.split()
    if not words:
        return ""
    if max_shuffle > 0:
        keys = [i + _draw(rng) * (max_shuffle + 1) for i in range(len(words))]
        words = [words[i] for i in sorted(range(len(words)), key=keys.__getitem__)]
    kept = [w for w in words if _draw(rng) >= p_drop]
    if not kept:
        kept = [words[min(int(_draw(rng) * len(words)), len(words) - 1)]]
    return " ".join(filler if _draw(rng) < p_blank else w for w in kept)


def is_degenerate(text: str, *, min_repeats: int = 3, max_n: int = 4) -> bool:
    """True if some word n-gram (n ≤ ``max_n``) repeats ``min_repeats``+ times in a row (a decoding loop).

    Words are compared case-insensitively without surrounding punctuation, so
    ``"and the the the"`` and ``"of God, of God, of God"`` are degenerate. This is a heuristic:
    a genuine triple repetition (``"Holy, holy, holy"``) is flagged too, which is rare in prose.
    """
    words = [w.strip(".,;:!?\"'`()[]").lower() for w in text.split()]
    words = [w for w in words if w]
    for n in range(1, max_n + 1):
        span = n * min_repeats
        for i in range(len(words) - span + 1):
            gram = words[i : i + n]
            if all(words[i + k * n : i + (k + 1) * n] == gram for k in range(1, min_repeats)):
                return True
    return False


def length_ratio(src: str, hyp: str) -> float:
    """Words in ``hyp`` per word in ``src`` (``src`` counts as at least one word)."""
    return len(hyp.split()) / max(len(src.split()), 1)


def score_translations(hyps: Sequence[str], refs: Sequence[str]) -> dict[str, Any]:
    """Corpus BLEU and chrF (sacreBLEU defaults, one reference) with their signatures."""
    from sacrebleu.metrics import BLEU, CHRF

    if len(hyps) != len(refs):
        raise ValueError(f"score_translations: {len(hyps)} hypotheses but {len(refs)} references")
    if not hyps:
        raise ValueError("score_translations: no sentences to score")
    hyps, refs = [str(h) for h in hyps], [str(r) for r in refs]
    bleu, chrf = BLEU(), CHRF()
    b = bleu.corpus_score(hyps, [refs])
    c = chrf.corpus_score(hyps, [refs])
    return {
        "bleu": float(b.score),
        "chrf": float(c.score),
        "bleu_bp": float(b.bp),
        "bleu_sys_ref_ratio": float(b.sys_len / max(b.ref_len, 1)),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
        "sentences": len(hyps),
    }


def translation_stats(sources: Sequence[str], hyps: Sequence[str]) -> dict[str, float]:
    """Degenerate-output rate and mean hypothesis/source length ratio over non-empty sources."""
    pairs = [(s, h) for s, h in zip(sources, hyps) if s.strip()]
    if not pairs:
        return {"degenerate_rate": 0.0, "length_ratio": 0.0}
    return {
        "degenerate_rate": sum(is_degenerate(h) for _, h in pairs) / len(pairs),
        "length_ratio": float(np.mean([length_ratio(s, h) for s, h in pairs])),
    }


def _check_method(method: str, beam: int, topk: int, batch_size: int) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown translation method {method!r}; expected one of {list(METHODS)}")
    if beam < 1 or batch_size < 1:
        raise ValueError(f"beam and batch_size must be >= 1, got beam={beam}, batch_size={batch_size}")
    if topk == 0 or topk < -1:
        raise ValueError(f"topk must be -1 (unrestricted sampling) or >= 1, got {topk}")


# --------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------
def _train_sentencepiece(texts: list[str], prefix: Path, vocab_size: int) -> Path:
    """A joint unigram SentencePiece model, deterministic for a given input (fixed order, one thread)."""
    import sentencepiece as spm

    corpus = prefix.with_suffix(".txt")
    corpus.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(prefix),
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        hard_vocab_limit=False,  # a tiny corpus may not support vocab_size pieces
        input_sentence_size=0,  # use every sentence, in file order (no sampling)
        shuffle_input_sentence=False,
        num_threads=1,
        minloglevel=2,
    )
    return prefix.with_suffix(".model")


class _EpochStats(logging.Handler):
    """Collect fairseq's end-of-epoch JSON stats (``--log-format json``) and call ``log`` per epoch.

    fairseq's progress bar logs one JSON line per subset and epoch through the logger
    ``fairseq.logging.progress_bar``, renamed to the subset ("valid", then "train") while logging.
    """

    def __init__(self, log: Callable[[int, dict], None] | None) -> None:
        super().__init__(level=logging.INFO)
        self.log = log
        self.epochs: dict[int, dict[str, float]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.name not in ("train", "valid"):
            return
        try:
            stats = json.loads(record.getMessage())
            epoch = int(stats["epoch"])
            loss = float(stats[f"{record.name}_loss"])
        except (ValueError, KeyError, TypeError):
            return
        entry = self.epochs.setdefault(epoch, {})
        entry[f"{record.name}_loss"] = loss
        if record.name == "train":  # printed after the epoch's validation: the epoch is complete
            entry.setdefault("valid_loss", float("nan"))
            if self.log is not None:
                self.log(epoch, dict(entry))  # an exception here aborts training, as it should


@contextmanager
def _quiet_fairseq(keep_progress: bool = False) -> Iterator[None]:
    """Raise fairseq's loggers to WARNING for the block (config dumps, per-batch INFO chatter).

    With ``keep_progress`` the progress-bar logger (per-epoch and per-100-update stats) stays at INFO.
    """
    quiet = [logging.getLogger(n) for n in ("fairseq", "fairseq_cli")]
    bar = logging.getLogger("fairseq.logging.progress_bar")
    old = [(lg, lg.level) for lg in (*quiet, bar)]
    for lg in quiet:
        lg.setLevel(logging.WARNING)
    if keep_progress:
        bar.setLevel(logging.INFO)
    try:
        yield
    finally:
        for lg, level in old:
            lg.setLevel(level)


@contextmanager
def _fairseq_logging(handler: _EpochStats) -> Iterator[None]:
    """Quieten fairseq's chatter but keep its progress stats and capture the per-epoch ones."""
    bar = logging.getLogger("fairseq.logging.progress_bar")
    with _quiet_fairseq(keep_progress=True):
        bar.addHandler(handler)
        try:
            yield
        finally:
            bar.removeHandler(handler)


@contextmanager
def _no_new_handlers(logger_name: str) -> Iterator[None]:
    """Remove (and close) handlers that fairseq attaches to ``logger_name`` during the block."""
    lg = logging.getLogger(logger_name)
    before = list(lg.handlers)
    try:
        yield
    finally:
        for h in list(lg.handlers):
            if h not in before:
                lg.removeHandler(h)
                h.close()


def _reset_fairseq_globals() -> None:
    """fairseq keeps the best validation loss as function attributes across runs in one process."""
    from fairseq import checkpoint_utils
    from fairseq_cli import train as fs_train

    for fn, names in ((checkpoint_utils.save_checkpoint, ("best",)), (fs_train.should_stop_early, ("best", "num_runs"))):
        for name in names:
            if hasattr(fn, name):
                delattr(fn, name)


def _encode_pairs(
    sp, pairs: Sequence[tuple[str, str]], max_len: int
) -> tuple[list[tuple[str, str]], int, int]:
    """SentencePiece-encode pairs; drop pairs with an empty side or a side over ``max_len`` pieces."""
    kept: list[tuple[str, str]] = []
    empty = long = 0
    for xx, en in pairs:
        xx, en = _clean(xx), _clean(en)
        if not xx or not en:
            empty += 1
            continue
        px, pe = sp.encode(xx, out_type=str), sp.encode(en, out_type=str)
        if len(px) > max_len or len(pe) > max_len:
            long += 1
            continue
        kept.append((" ".join(px), " ".join(pe)))
    return kept, empty, long


def _write_split(pairs: list[tuple[str, str]], prefix: Path) -> None:
    for side, lang in ((0, SRC_LANG), (1, TGT_LANG)):
        Path(f"{prefix}.{lang}").write_text("".join(p[side] + "\n" for p in pairs), encoding="utf-8")


def _fairseq_train_args(cfg: MTConfig, data_bin: Path, save_dir: Path) -> list[str]:
    d, f, l, h = cfg.embed_dim, cfg.ffn_dim, cfg.layers, cfg.heads
    return [
        str(data_bin),
        "--task", "translation", "--source-lang", SRC_LANG, "--target-lang", TGT_LANG,
        "--arch", "transformer", "--share-all-embeddings",
        "--encoder-embed-dim", str(d), "--decoder-embed-dim", str(d),
        "--encoder-ffn-embed-dim", str(f), "--decoder-ffn-embed-dim", str(f),
        "--encoder-layers", str(l), "--decoder-layers", str(l),
        "--encoder-attention-heads", str(h), "--decoder-attention-heads", str(h),
        "--max-source-positions", str(cfg.max_positions), "--max-target-positions", str(cfg.max_positions),
        "--dropout", str(cfg.dropout),
        "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", str(cfg.label_smoothing),
        "--optimizer", "adam", "--adam-betas", "(0.9, 0.98)", "--clip-norm", "0.0",
        "--lr", str(cfg.lr), "--lr-scheduler", "inverse_sqrt", "--warmup-updates", str(cfg.warmup_updates),
        "--warmup-init-lr", "1e-07",
        "--max-tokens", str(cfg.max_tokens), "--max-epoch", str(cfg.epochs),
        "--seed", str(cfg.seed), "--cpu", "--num-workers", "0",
        "--save-dir", str(save_dir), "--no-epoch-checkpoints", "--no-save-optimizer-state",
        "--log-format", "json", "--log-interval", "100",
        "--skip-invalid-size-inputs-valid-test",
    ]  # fmt: skip


def train_mt(
    train_pairs: list[tuple[str, str]],
    valid_pairs: list[tuple[str, str]],
    out_dir: Path,
    cfg: MTConfig,
    log: Callable[[int, dict], None] | None = None,
) -> dict[str, Any]:
    """Train the xx→en model on ``(xx, en)`` pairs and write ``out_dir`` atomically (see module doc).

    ``log(epoch, {"train_loss": ..., "valid_loss": ...})`` is called after every epoch (losses in
    bits per token, label-smoothed). Pairs with an empty side or a side longer than
    ``cfg.max_positions - 1`` pieces are dropped and counted. Returns ``train_seconds`` (fairseq
    training only), ``epochs``, the per-epoch ``train_loss``/``valid_loss`` lists and the counts.
    """
    import sentencepiece as spm
    from fairseq import options
    from fairseq.data import Dictionary
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.distributed.utils import call_main
    from fairseq_cli import preprocess as fs_preprocess
    from fairseq_cli import train as fs_train

    if not train_pairs:
        raise ValueError("train_mt: no training pairs")
    if not valid_pairs:
        raise ValueError("train_mt: no validation pairs (fairseq needs a valid split)")
    out_dir = Path(out_dir)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mt-train-") as work_str, atomic_path(out_dir, is_dir=True) as tmp:
        work = Path(work_str)
        texts = [t for xx, en in train_pairs for t in (_clean(xx), _clean(en)) if t]
        spm_file = _train_sentencepiece(texts, work / "spm", cfg.vocab_size)
        sp = spm.SentencePieceProcessor(model_file=str(spm_file))
        max_len = cfg.max_positions - 1  # fairseq appends EOS
        train_enc, train_empty, train_long = _encode_pairs(sp, train_pairs, max_len)
        valid_enc, valid_empty, valid_long = _encode_pairs(sp, valid_pairs, max_len)
        if not train_enc or not valid_enc:
            raise ValueError(
                f"train_mt: no usable {'training' if not train_enc else 'validation'} pairs left after dropping "
                f"empty and over-long (> {max_len} pieces) ones"
            )
        (work / "text").mkdir()
        _write_split(train_enc, work / "text" / "train")
        _write_split(valid_enc, work / "text" / "valid")

        data_bin = work / "bin"
        pre_args = options.get_preprocessing_parser().parse_args(
            [
                "--source-lang", SRC_LANG, "--target-lang", TGT_LANG,
                "--trainpref", str(work / "text" / "train"), "--validpref", str(work / "text" / "valid"),
                "--destdir", str(data_bin), "--joined-dictionary", "--workers", "1",
            ]  # fmt: skip
        )
        handler = _EpochStats(log)
        with _fairseq_logging(handler), _no_new_handlers("fairseq_cli.preprocess"):
            fs_preprocess.main(pre_args)
            parser = options.get_training_parser()
            args = options.parse_args_and_arch(parser, input_args=_fairseq_train_args(cfg, data_bin, work / "ckpt"))
            fs_cfg = convert_namespace_to_omegaconf(args)
            _reset_fairseq_globals()
            t0 = time.perf_counter()
            call_main(fs_cfg, fs_train.main)
            train_seconds = time.perf_counter() - t0

        last = work / "ckpt" / "checkpoint_last.pt"
        if not last.is_file():
            raise RuntimeError(f"fairseq training finished without writing {last}")
        shutil.copyfile(last, tmp / CHECKPOINT)  # not byte-reproducible: torch.save writes a random id
        shutil.copyfile(spm_file, tmp / SPM_MODEL)
        for name in DICTS:
            shutil.copyfile(data_bin / name, tmp / name)
        epochs = sorted(handler.epochs)
        if len(epochs) != cfg.epochs:  # e.g. logging.disable() in the caller hides fairseq's stats
            warnings.warn(f"train_mt: captured per-epoch stats for {len(epochs)} of {cfg.epochs} epochs", stacklevel=2)
        result = {
            "train_seconds": round(train_seconds, 2),
            "total_seconds": round(time.perf_counter() - started, 2),
            "epochs": len(epochs),
            "train_loss": [handler.epochs[e].get("train_loss", float("nan")) for e in epochs],
            "valid_loss": [handler.epochs[e].get("valid_loss", float("nan")) for e in epochs],
            "train_pairs": len(train_enc),
            "valid_pairs": len(valid_enc),
            "dropped_empty": train_empty,
            "dropped_long": train_long,
            "valid_dropped_empty": valid_empty,
            "valid_dropped_long": valid_long,
            "vocab_size": sp.get_piece_size(),
            "dictionary_size": len(Dictionary.load(str(data_bin / DICTS[0]))),
        }
        write_json(tmp / MT_JSON, {"config": cfg.to_dict(), "stats": _json_safe(split_timings(result)[0])})
    return result



def _json_safe(obj: Any) -> Any:
    """NaN/inf → None so the JSON stays standard."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    return obj


# --------------------------------------------------------------------------
# translation
# --------------------------------------------------------------------------
def _finish_stats(stats: dict[str, Any], sources: Sequence[str], outputs: list[str], seconds: float) -> dict[str, Any]:
    stats["seconds"] = round(seconds, 3)
    n = stats["sentences"] - stats["empty"]
    stats["sentences_per_second"] = round(n / seconds, 2) if seconds > 0 else None
    stats.update(translation_stats(sources, outputs))
    return stats


class Translator:
    """A fairseq model directory written by :func:`train_mt`, loaded for xx→en translation on CPU."""

    #: generation length limit: ``max_len_a * source_tokens + max_len_b`` target tokens (also capped
    #: by the model's max positions); keeps decoding loops short.
    max_len_a: float = 2.0
    max_len_b: int = 10

    def __init__(self, hub, model_dir: Path, config: MTConfig) -> None:
        self.hub = hub
        self.model_dir = model_dir
        self.config = config
        limit = hub.max_positions  # (source, target) for translation models
        self.max_source_tokens = int(limit[0] if isinstance(limit, (tuple, list)) else limit)

    @classmethod
    def load(cls, model_dir: Path | str) -> Translator:
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
            with _quiet_fairseq():
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

    def _encode(self, sentence: str) -> tuple[torch.Tensor, bool]:
        """Token ids (with EOS) of a sentence, truncated to the model's max source positions."""
        tokens = self.hub.encode(sentence)
        if len(tokens) <= self.max_source_tokens:
            return tokens, False
        eos = torch.tensor([self.hub.src_dict.eos()], dtype=tokens.dtype)
        return torch.cat([tokens[: self.max_source_tokens - 1], eos]), True

    def translate(
        self,
        sentences: Sequence[str],
        method: str = "beam",
        *,
        beam: int = 5,
        topk: int = 10,
        batch_size: int = 64,
        seed: int = 0,
        progress: bool = True,
    ) -> tuple[list[str], dict[str, Any]]:
        """Translate xx sentences into English.

        ``method``: ``beam`` (beam search of width ``beam``), ``sampling`` (one sample per sentence
        from the full distribution if ``topk == -1``, else from the ``topk`` most likely tokens) or
        ``noised`` (beam output passed through :func:`add_noise`). Sampling and noise are
        deterministic for a given ``seed`` (and ``batch_size``). Empty sentences translate to ``""``;
        sentences longer than the model's max positions are truncated. Returns the translations and
        stats: ``sentences``, ``empty``, ``truncated``, ``seconds``, ``sentences_per_second``,
        ``degenerate_rate``, ``length_ratio``.
        """
        _check_method(method, beam, topk, batch_size)
        started = time.perf_counter()
        sentences = [_clean(s) for s in sentences]
        outputs = [""] * len(sentences)
        encoded: dict[int, torch.Tensor] = {}
        truncated = 0
        for i, s in enumerate(sentences):
            if s:
                encoded[i], cut = self._encode(s)
                truncated += cut
        if method == "sampling":
            gen = {"beam": 1, "sampling": True, "sampling_topk": topk}
        else:
            gen = {"beam": beam}
        gen.update(max_len_a=self.max_len_a, max_len_b=self.max_len_b)
        order = sorted(encoded, key=lambda i: len(encoded[i]))  # similar lengths batch together
        self.hub.cfg.dataset.batch_size = batch_size
        self.hub.cfg.dataset.max_tokens = None
        torch.manual_seed(seed)
        with torch.inference_mode(), _quiet_fairseq(), tqdm(
            total=len(order), desc=f"translate ({method})", unit="sent", disable=not progress
        ) as bar:
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                hypos = self.hub.generate([encoded[i] for i in chunk], **gen)
                for i, h in zip(chunk, hypos):
                    outputs[i] = self.hub.decode(h[0]["tokens"])
                bar.update(len(chunk))
        if method == "noised":
            rng = random.Random(seed)
            outputs = [add_noise(o, rng) for o in outputs]
        stats = {"method": method, "sentences": len(sentences), "empty": len(sentences) - len(encoded), "truncated": truncated}
        return outputs, _finish_stats(stats, sentences, outputs, time.perf_counter() - started)


class HFTranslator:
    """A Hugging Face seq2seq model (name or local path) with :class:`Translator`'s interface.

    For NLLB/M2M-style tokenizers pass ``src_lang`` (set on the tokenizer) and ``tgt_lang`` (its
    token id is forced as the first generated token). Note that a hub *name* is downloaded by
    ``transformers`` unless it is already cached.
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

    def translate(
        self,
        sentences: Sequence[str],
        method: str = "beam",
        *,
        beam: int = 5,
        topk: int = 10,
        batch_size: int = 64,
        seed: int = 0,
        progress: bool = True,
    ) -> tuple[list[str], dict[str, Any]]:
        """Same methods, arguments and stats as :meth:`Translator.translate`."""
        _check_method(method, beam, topk, batch_size)
        started = time.perf_counter()
        sentences = [_clean(s) for s in sentences]
        outputs = [""] * len(sentences)
        todo = [i for i, s in enumerate(sentences) if s]
        lengths = {i: len(self.tokenizer(sentences[i])["input_ids"]) for i in todo}
        truncated = sum(n > self.max_length for n in lengths.values())
        order = sorted(todo, key=lengths.__getitem__)
        if method == "sampling":
            gen: dict[str, Any] = {"do_sample": True, "num_beams": 1, "top_k": topk if topk > 0 else 0, "top_p": 1.0}
        else:
            gen = {"do_sample": False, "num_beams": beam}
        if self.forced_bos_token_id is not None:
            gen["forced_bos_token_id"] = self.forced_bos_token_id
        torch.manual_seed(seed)
        with torch.inference_mode(), tqdm(
            total=len(order), desc=f"translate ({method})", unit="sent", disable=not progress
        ) as bar:
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                enc = self.tokenizer(
                    [sentences[i] for i in chunk],
                    truncation=True,
                    max_length=self.max_length,
                    padding=True,
                    return_tensors="pt",
                )
                out = self.model.generate(**enc, max_new_tokens=self.max_length, **gen)
                for i, text in zip(chunk, self.tokenizer.batch_decode(out, skip_special_tokens=True)):
                    outputs[i] = _clean(text)
                bar.update(len(chunk))
        if method == "noised":
            rng = random.Random(seed)
            outputs = [add_noise(o, rng) for o in outputs]
        stats = {"method": method, "sentences": len(sentences), "empty": len(sentences) - len(todo), "truncated": truncated}
        return outputs, _finish_stats(stats, sentences, outputs, time.perf_counter() - started)


def load_translator(name: str, model_dir: Path | str, **hf_kwargs: Any) -> Translator | HFTranslator:
    """The local fairseq model in ``model_dir`` for ``name == "fairseq-local"``, else a Hugging Face model.

    ``hf_kwargs`` (``src_lang``, ``tgt_lang``, ``max_length``) go to :class:`HFTranslator`.
    """
    if name == FAIRSEQ_LOCAL:
        return Translator.load(model_dir)
    return HFTranslator(name, **hf_kwargs)
