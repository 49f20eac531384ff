"""The fairseq model's configuration and the files of a model directory written by :func:`pipeline.mt.train_mt`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from pipeline.config.conditions import MT_DIRECTIONS

#: Files of a model directory.
MT_JSON = "mt.json"
SPM_MODEL = "sentencepiece.bpe.model"
CHECKPOINT = "checkpoint.pt"
#: The checkpoint converted for CTranslate2 (:func:`pipeline.mt.ct2.convert`), a folder of the model directory.
CT2_DIR = "ctranslate2"


def direction_langs(direction: str) -> tuple[str, str]:
    """The (source, target) language codes of the fairseq data directory for ``direction`` (``xx-en`` or
    ``en-xx``: :data:`pipeline.config.conditions.MT_DIRECTIONS`); an error naming the value otherwise."""
    if direction not in MT_DIRECTIONS:
        raise ValueError(f"unknown MT direction {direction!r}; expected one of {MT_DIRECTIONS}")
    source, target = direction.split("-")
    return source, target


def dict_files(direction: str) -> tuple[str, str]:
    """The dictionary files of a model directory of ``direction`` (one joined dictionary, under both codes)."""
    return tuple(f"dict.{lang}.txt" for lang in direction_langs(direction))


@dataclass(frozen=True)
class MTConfig:
    """Size and training schedule of the fairseq transformer (either direction: the same recipe).

    No defaults: the values come from the ``mt`` section of params.yaml (:meth:`from_params`) or from a
    model directory's ``mt.json`` (:meth:`from_dict`). The sizes were chosen with
    ``benchmarks/mt_tradeoff.py`` (see the trade-off table in docs/mt-and-llm.md).
    """

    vocab_size: int  #: joint SentencePiece vocabulary
    embed_dim: int
    ffn_dim: int
    layers: int  #: encoder layers = decoder layers
    heads: int
    dropout: float
    epochs: int
    max_tokens: int  #: tokens per batch (fairseq's --max-tokens)
    lr: float
    warmup_updates: int
    max_positions: int  #: subword tokens, EOS included
    label_smoothing: float
    seed: int

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

    @classmethod
    def from_params(cls, mt: Any, seed: int) -> MTConfig:
        """Build from the ``mt`` params section (any object with one attribute per field but ``seed``) and ``seed``."""
        return cls(**{f.name: getattr(mt, f.name) for f in fields(cls) if f.name != "seed"}, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MTConfig:
        """Build from a dict (a model directory's ``mt.json`` config); unknown or missing keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown MTConfig key(s) {unknown}; known: {sorted(known)}")
        missing = sorted(known - set(d))
        if missing:
            raise ValueError(f"missing MTConfig key(s) {missing}")
        return cls(**d)
