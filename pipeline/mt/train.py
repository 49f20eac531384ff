"""Training of a fairseq transformer, xx→en or en→xx (:func:`train_mt`, one recipe for both), all on CPU.

1. a joint SentencePiece unigram model is trained on both sides of the MT training pairs only
   (never on dev or monolingual text), deterministically: fixed input order, no sampling, one thread;
2. the pairs are encoded into pieces; pairs with a side longer than ``max_positions`` (counting EOS)
   are dropped and counted, so an over-long verse can never crash training;
3. ``fairseq-preprocess`` binarises them with one joined dictionary (shared by both sides);
4. a fairseq ``transformer`` (sizes from :class:`MTConfig`, all embeddings shared) is trained with
   label-smoothed cross-entropy, Adam and the inverse-square-root schedule for ``cfg.epochs`` epochs;
5. the model directory gets only what translation needs (written atomically)::

       model_dir/
         mt.json                   config, direction (xx-en or en-xx) and training stats
         sentencepiece.bpe.model   joint SentencePiece model (the name fairseq's hub loader looks for)
         dict.xx.txt dict.en.txt   the (identical) joined fairseq dictionaries, one per side
         checkpoint.pt             the final (last-epoch) checkpoint, without optimizer state

Losses reported by fairseq (and therefore by :func:`train_mt`) are label-smoothed cross-entropy
in bits per target token (fairseq divides by ln 2).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.io import atomic_path, split_timings, write_json
from pipeline.mt.config import CHECKPOINT, MT_JSON, SPM_MODEL, MTConfig, dict_files, direction_langs
from pipeline.mt.text import clean


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
def quiet_fairseq(keep_progress: bool = False) -> Iterator[None]:
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
    with quiet_fairseq(keep_progress=True):
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

    for fn, names in (
        (checkpoint_utils.save_checkpoint, ("best",)),
        (fs_train.should_stop_early, ("best", "num_runs")),
    ):
        for name in names:
            if hasattr(fn, name):
                delattr(fn, name)


def _encode_pairs(sp, pairs: Sequence[tuple[str, str]], max_len: int) -> tuple[list[tuple[str, str]], int, int]:
    """SentencePiece-encode (source, target) pairs; drop pairs with an empty side or a side over ``max_len``
    pieces."""
    kept: list[tuple[str, str]] = []
    empty = long = 0
    for src, tgt in pairs:
        src, tgt = clean(src), clean(tgt)
        if not src or not tgt:
            empty += 1
            continue
        ps, pt = sp.encode(src, out_type=str), sp.encode(tgt, out_type=str)
        if len(ps) > max_len or len(pt) > max_len:
            long += 1
            continue
        kept.append((" ".join(ps), " ".join(pt)))
    return kept, empty, long


def _write_split(pairs: list[tuple[str, str]], prefix: Path, direction: str) -> None:
    for side, lang in enumerate(direction_langs(direction)):
        Path(f"{prefix}.{lang}").write_text("".join(p[side] + "\n" for p in pairs), encoding="utf-8")


def _fairseq_train_args(cfg: MTConfig, data_bin: Path, save_dir: Path, direction: str) -> list[str]:
    d, f, n, h = cfg.embed_dim, cfg.ffn_dim, cfg.layers, cfg.heads
    source, target = direction_langs(direction)
    return [
        str(data_bin),
        "--task", "translation", "--source-lang", source, "--target-lang", target,
        "--arch", "transformer", "--share-all-embeddings",
        "--encoder-embed-dim", str(d), "--decoder-embed-dim", str(d),
        "--encoder-ffn-embed-dim", str(f), "--decoder-ffn-embed-dim", str(f),
        "--encoder-layers", str(n), "--decoder-layers", str(n),
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


def _encode_splits(
    train_pairs: list[tuple[str, str]], valid_pairs: list[tuple[str, str]], work: Path, cfg: MTConfig, direction: str
) -> tuple[Any, Path, dict[str, int]]:
    """Train SentencePiece on the cleaned training pairs and write both splits, encoded, to ``work/text``
    (pairs with an empty side or more than ``cfg.max_positions - 1`` pieces dropped). Returns the processor, its
    model file and the pair counts."""
    import sentencepiece as spm

    texts = [t for src, tgt in train_pairs for t in (clean(src), clean(tgt)) if t]
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
    _write_split(train_enc, work / "text" / "train", direction)
    _write_split(valid_enc, work / "text" / "valid", direction)
    counts = {
        "train_pairs": len(train_enc),
        "valid_pairs": len(valid_enc),
        "dropped_empty": train_empty,
        "dropped_long": train_long,
        "valid_dropped_empty": valid_empty,
        "valid_dropped_long": valid_long,
    }
    return sp, spm_file, counts


def _preprocessing_args(text_dir: Path, data_bin: Path, direction: str):
    """fairseq-preprocess's arguments: the encoded splits in ``text_dir`` binarised into ``data_bin`` with one
    joined dictionary."""
    from fairseq import options

    source, target = direction_langs(direction)
    return options.get_preprocessing_parser().parse_args(
        [
            "--source-lang",
            source,
            "--target-lang",
            target,
            "--trainpref",
            str(text_dir / "train"),
            "--validpref",
            str(text_dir / "valid"),
            "--destdir",
            str(data_bin),
            "--joined-dictionary",
            "--workers",
            "1",
        ]  # fmt: skip
    )


def train_mt(
    train_pairs: list[tuple[str, str]],
    valid_pairs: list[tuple[str, str]],
    out_dir: Path,
    cfg: MTConfig,
    direction: str,
    log: Callable[[int, dict], None] | None = None,
) -> dict[str, Any]:
    """Train the ``direction`` model (``xx-en`` or ``en-xx``) on ``(source, target)`` pairs and write ``out_dir``
    atomically (see module doc).

    ``log(epoch, {"train_loss": ..., "valid_loss": ...})`` is called after every epoch (losses in
    bits per token, label-smoothed). Pairs with an empty side or a side longer than
    ``cfg.max_positions - 1`` pieces are dropped and counted. Returns ``train_seconds`` (fairseq
    training only), ``epochs``, the per-epoch ``train_loss``/``valid_loss`` lists and the counts.
    """
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
        direction_langs(direction)  # a bad direction fails before any work
        sp, spm_file, counts = _encode_splits(train_pairs, valid_pairs, work, cfg, direction)
        data_bin = work / "bin"
        pre_args = _preprocessing_args(work / "text", data_bin, direction)
        handler = _EpochStats(log)
        with _fairseq_logging(handler), _no_new_handlers("fairseq_cli.preprocess"):
            fs_preprocess.main(pre_args)
            parser = options.get_training_parser()
            train_args = _fairseq_train_args(cfg, data_bin, work / "ckpt", direction)
            args = options.parse_args_and_arch(parser, input_args=train_args)
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
        for name in dict_files(direction):
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
            **counts,
            "vocab_size": sp.get_piece_size(),
            "dictionary_size": len(Dictionary.load(str(data_bin / dict_files(direction)[0]))),
        }
        stats = _json_safe(split_timings(result)[0])
        write_json(tmp / MT_JSON, {"config": cfg.to_dict(), "direction": direction, "stats": stats})
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
