"""Translation with a fairseq model of :func:`pipeline.mt.train_mt` (either direction) or a Hugging Face seq2seq model.

The fairseq model decodes on CTranslate2 (``mt.engine: ctranslate2``, :mod:`pipeline.mt.ct2`) or on fairseq's own
Python beam search (``mt.engine: fairseq``, :class:`FairseqTranslator`); :func:`load_translator` picks.

The decoding methods and the steps every engine shares are :class:`pipeline.mt.base.Translator`'s.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, get_args

import torch

from pipeline.config.params import MTEngine
from pipeline.mt.base import MAX_LEN_A, MAX_LEN_B, MTError, Translator, read_model_dir
from pipeline.mt.config import CHECKPOINT, SPM_MODEL, MTConfig, direction_langs
from pipeline.mt.ct2 import CTranslate2Translator
from pipeline.mt.text import clean
from pipeline.mt.train import quiet_fairseq

#: The fairseq model's name for :func:`load_translator`; any other name is a Hugging Face model.
FAIRSEQ_LOCAL = "fairseq-local"
#: What decodes the fairseq model (``mt.engine``): its values in pipeline.config.params.
ENGINES = get_args(MTEngine)


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
    def load(cls, model_dir: Path | str, direction: str) -> FairseqTranslator:
        """Load ``model_dir`` (a ``direction`` model); a missing or corrupt file, or the other direction, raises
        :class:`MTError` naming the directory."""
        model_dir = Path(model_dir)
        config, _ = read_model_dir(model_dir, direction)
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
    translations limited to ``max_length`` new tokens (``mt.max_positions``).
    """

    def __init__(
        self,
        name: str,
        *,
        src_lang: str | None,
        tgt_lang: str | None,
        max_length: int,
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


def load_translator(mt: Any, model_dir: Path | str, direction: str) -> Translator:
    """The ``direction`` model (``xx-en`` or ``en-xx``) the stages translate with, from the ``mt`` params section
    (``.name``, ``.engine``, ``.compute_type``, ``.src_lang``, ``.tgt_lang``).

    ``mt.name == "fairseq-local"``: the fairseq model in ``model_dir``, decoded by ``mt.engine`` (CTranslate2 in
    ``mt.compute_type``, or fairseq); any other name is a Hugging Face model (a many-to-many one such as NLLB for
    ``en-xx``: ``mt.src_lang`` and ``mt.tgt_lang`` name the ``xx-en`` direction and are swapped for ``en-xx``).
    """
    direction_langs(direction)
    if mt.name == FAIRSEQ_LOCAL:
        if mt.engine not in ENGINES:
            raise ValueError(f"mt.engine: unknown engine {mt.engine!r}; expected one of {list(ENGINES)}")
        if mt.engine == "fairseq":
            return FairseqTranslator.load(model_dir, direction)
        return CTranslate2Translator.load(model_dir, mt.compute_type, direction)
    src, tgt = (mt.src_lang, mt.tgt_lang) if direction == "xx-en" else (mt.tgt_lang, mt.src_lang)
    return HFTranslator(mt.name, src_lang=src, tgt_lang=tgt, max_length=mt.max_positions)
