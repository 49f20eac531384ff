"""The fairseq model decoded by CTranslate2, the CPU inference engine built for it (OpenNMT/CTranslate2).

fairseq stays the trainer; :func:`convert` writes the trained checkpoint as a CTranslate2 model into the model
directory's ``ctranslate2/`` (``ctranslate2.converters.FairseqConverter``, float32 weights, byte-for-byte the same for
the same checkpoint), with the checkpoint's SHA-256 beside it, so that a stale conversion is an error rather than a
silent other model. :class:`CTranslate2Translator` decodes with the same SentencePiece pieces, beam, no-repeat n-gram
block and length limit as :class:`~pipeline.mt.translate.FairseqTranslator` (benchmarks/mt_engines.py compares them
line by line on the dev sets).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.config import paths
from pipeline.io import DataFileError, atomic_path, read_json, write_json
from pipeline.mt.base import MAX_LEN_A, MAX_LEN_B, MTError, Translator, read_model_dir
from pipeline.mt.config import CHECKPOINT, CT2_DIR, SPM_MODEL, MTConfig, direction_langs
from pipeline.mt.train import quiet_fairseq

#: The file in ``ctranslate2/`` naming the checkpoint it was converted from.
SOURCE_JSON = "converted_from.json"
#: What ``mt.compute_type: auto`` runs: float32. int8 kept BLEU within 0.1 on one dev set and lost 0.9 on the other,
#: and was no faster on a model this small (2 layers, 128 dimensions: benchmarks/mt_engines.py).
AUTO_COMPUTE_TYPE = "float32"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def convert(model_dir: Path | str) -> Path:
    """Write ``model_dir/ctranslate2/`` from the fairseq model in ``model_dir`` (atomically); returns its path."""
    model_dir = Path(model_dir)
    # fairseq checkpoints hold pickled config objects (our own checkpoint, written by pipeline.mt.train)
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    from ctranslate2.converters import FairseqConverter

    target = model_dir / CT2_DIR
    source_lang, target_lang = direction_langs(read_model_dir(model_dir)[1])
    converter = FairseqConverter(
        str(model_dir / CHECKPOINT),
        str(model_dir),
        source_lang=source_lang,
        target_lang=target_lang,
        unsafe_deserialization=True,
    )
    with atomic_path(target, is_dir=True) as tmp, quiet_fairseq():
        converter.convert(str(tmp), force=True)
        write_json(tmp / SOURCE_JSON, {CHECKPOINT: _sha256(model_dir / CHECKPOINT)})
    return target


def resolve_compute_type(value: str) -> str:
    """``mt.compute_type`` as CTranslate2 runs it: ``auto`` is :data:`AUTO_COMPUTE_TYPE`; a type this CPU cannot run
    is an error naming the key."""
    import ctranslate2

    ran = AUTO_COMPUTE_TYPE if value == "auto" else value
    supported = ctranslate2.get_supported_compute_types("cpu")
    if ran not in supported:
        raise ValueError(
            f"mt.compute_type: {value!r} cannot run on this CPU (CTranslate2 supports {sorted(supported)})"
        )
    return ran


class CTranslate2Translator(Translator):
    """The converted fairseq model of a model directory, decoded by CTranslate2 on the CPU's cores.

    Beam search decodes as many batches side by side as there are cores, one core each (for a model this small that
    is about twice as fast as one batch at a time on every core: benchmarks/mt_engines.py); a batch's translations do
    not depend on which thread decodes it. Sampling runs one batch at a time on one decoding thread, so that its
    draws follow the seed alone (CTranslate2 seeds each decoding thread's generator when the thread first samples).
    """

    def __init__(self, sp: Any, model_dir: Path, config: MTConfig, compute_type: str) -> None:
        self.cores = len(os.sched_getaffinity(0))
        self.model_dir = model_dir
        self.compute_type = compute_type
        self.translator = self._open(inter_threads=self.cores, intra_threads=1)
        self.sampler: Any = None  # opened by _seed
        self.sp = sp
        self.config = config
        self.max_source_tokens = config.max_positions  # EOS included, as in fairseq

    @classmethod
    def load(cls, model_dir: Path | str, compute_type: str, direction: str) -> CTranslate2Translator:
        """Load ``model_dir/ctranslate2`` (a ``direction`` model); a missing, stale or corrupt one, or one of the other
        direction, raises :class:`MTError` naming it."""
        model_dir = Path(model_dir)
        converted = model_dir / CT2_DIR
        config, _ = read_model_dir(model_dir, direction)
        again = f"`dvc repro {paths.MT_STAGE}` trains and converts it again (the same model: it is seeded)"
        try:
            source = read_json(converted / SOURCE_JSON)[CHECKPOINT]
        except (DataFileError, KeyError, TypeError) as exc:
            raise MTError(f"converted MT model {converted} is missing or incomplete ({exc}); {again}") from None
        if source != _sha256(model_dir / CHECKPOINT):
            raise MTError(f"converted MT model {converted} is stale: not converted from {CHECKPOINT}; {again}")
        import sentencepiece as spm

        ran = resolve_compute_type(compute_type)
        try:
            return cls(spm.SentencePieceProcessor(model_file=str(model_dir / SPM_MODEL)), model_dir, config, ran)
        except (RuntimeError, OSError, ValueError) as exc:
            raise MTError(f"converted MT model {converted} is corrupt ({type(exc).__name__}: {exc}); {again}") from exc

    def _open(self, *, inter_threads: int, intra_threads: int) -> Any:
        import ctranslate2

        return ctranslate2.Translator(
            str(self.model_dir / CT2_DIR),
            device="cpu",
            compute_type=self.compute_type,
            inter_threads=inter_threads,
            intra_threads=intra_threads,
        )

    def _seed(self, seed: int) -> None:
        """A new one-thread sampler after ``set_random_seed`` (milliseconds for this model)."""
        import ctranslate2

        ctranslate2.set_random_seed(seed)
        self.sampler = self._open(inter_threads=1, intra_threads=self.cores)

    def _encode(self, sentence: str) -> tuple[list[str], int, bool]:
        """SentencePiece pieces (CTranslate2 appends EOS), cut to the model's max source positions; length with EOS."""
        pieces = self.sp.encode(sentence, out_type=str)
        if len(pieces) < self.max_source_tokens:
            return pieces, len(pieces) + 1, False
        return pieces[: self.max_source_tokens - 1], self.max_source_tokens, True

    def _options(self, batch: list[list[str]], method: str, beam: int, topk: int | None, no_repeat: int) -> dict:
        # fairseq's limit: MAX_LEN_A x the batch's longest source (EOS included) + MAX_LEN_B, below max positions
        longest = max(len(pieces) for pieces in batch) + 1
        limit = min(int(MAX_LEN_A * longest + MAX_LEN_B), self.config.max_positions - 1)
        options = {"max_decoding_length": limit, "no_repeat_ngram_size": no_repeat}
        if method == "sampling":
            return options | {"beam_size": 1, "sampling_topk": topk if topk > 0 else 0}
        return options | {"beam_size": beam}

    @staticmethod
    def _text(result: Any) -> str:
        return "".join(result.hypotheses[0]).replace("\u2581", " ").strip()

    def _generate(
        self, batch: list[list[str]], method: str, beam: int, topk: int | None, no_repeat_ngram_size: int
    ) -> list[str]:
        translator = self.sampler if method == "sampling" else self.translator
        results = translator.translate_batch(batch, **self._options(batch, method, beam, topk, no_repeat_ngram_size))
        return [self._text(r) for r in results]

    def _generate_all(
        self, batches: list[list[list[str]]], method: str, beam: int, topk: int | None, no_repeat_ngram_size: int
    ) -> Iterator[list[str]]:
        if method == "sampling":
            yield from super()._generate_all(batches, method, beam, topk, no_repeat_ngram_size)
            return
        pending = [
            self.translator.translate_batch(
                batch, asynchronous=True, **self._options(batch, method, beam, topk, no_repeat_ngram_size)
            )
            for batch in batches
        ]
        for results in pending:
            yield [self._text(r.result()) for r in results]
