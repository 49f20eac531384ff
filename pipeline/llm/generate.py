"""Generation (stage ``synthesize``): language models that write target-language text, behind one interface.

Two backends share ``generate(prompts, ...) -> list[Generation]``:

- :class:`LocalLM`: any Hugging Face causal-LM directory (``models/llm``, written by :mod:`pipeline.llm.acquire`).
  Generation is batched with left padding; the ``samples`` continuations of a prompt share one encoding of it
  (:func:`shared_prefill`: a five-shot prompt is longer than what is generated from it), and a continuation that
  ends leaves the batch (:func:`decode_pruned`).
- :class:`OpenAIBackend`: any OpenAI-compatible ``/completions`` or ``/chat/completions`` endpoint (vLLM,
  Ollama, a hosted model), with timeouts, retries and one clear error when it is unreachable or malformed.

Vocabulary trimming (:func:`trim_vocabulary`): Gemma's output layer has 262k rows and dominates the cost of a
step on CPU. Keeping only the sub-words that occur in the target-language pool (plus the special tokens)
makes generation several times faster and stops the model drifting into other scripts and languages
(cf. Ushio et al. 2023, "An efficient multilingual language model compression through vocabulary trimming").
Generation can run in bfloat16 (:meth:`LocalLM.cast`, ``synth.dtype``), Gemma's own training dtype: on a CPU with
bf16 instructions it is about 1.7x faster than float32 (docs/performance.md).

Sampling settings (``samples``, ``max_new_tokens``, ``temperature``, ...) and the endpoint's
``chat``/``timeout``/``retries`` have no defaults here: they come from params.yaml's ``synth`` section.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.llm.common import LLMError, pad_batch


@dataclass
class Generation:
    text: str
    new_tokens: int
    finished: bool  # ended on its own (EOS/stop) rather than at max_new_tokens


# --------------------------------------------------------------------------------------------- local backend
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

    # ``threads``: no param; None leaves torch's thread count as it is.
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
            ids, mask = pad_batch(batch, int(self.new_of_old[self.pad_id]), left=False)
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
        samples: int,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        repetition_penalty: float,
        no_repeat_ngram_size: int,
        seed: int,
    ) -> list[Generation]:
        """Sample ``samples`` continuations of every prompt in one left-padded batch; prompt ``i``'s are
        ``result[i * samples : (i + 1) * samples]``.

        With ``samples > 1`` the prompts are encoded once (one prefill) and every sample continues from a copy of
        that key/value cache, so a prompt's cost is shared by its samples (see :func:`shared_prefill`). A
        continuation that ends leaves the batch (:func:`decode_pruned`).
        """
        rows = [self.to_new(self.encode(p)) for p in prompts]
        ids, mask = pad_batch(rows, int(self.new_of_old[self.pad_id]), left=True)
        cache = shared_prefill(self.model, ids, mask, samples)
        ids, mask = ids.repeat_interleave(samples, dim=0), mask.repeat_interleave(samples, dim=0)
        eos_new = [
            int(self.new_of_old[e]) for e in self.eos_ids if e < len(self.new_of_old) and self.new_of_old[e] >= 0
        ]
        newline = [int(self.new_of_old[i]) for i in self.tokenizer("\n", add_special_tokens=False)["input_ids"]]
        from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper

        processors = LogitsProcessorList(
            [
                ContinuationRepetitionControl(
                    ids.shape[1], repetition_penalty, no_repeat_ngram_size, [*eos_new, *newline]
                )
            ]
        )
        if temperature > 0:
            processors += [TemperatureLogitsWarper(temperature), TopPLogitsWarper(top_p)]
        torch.manual_seed(seed)
        continuations = decode_pruned(
            self.model, ids, mask, cache, processors, set(eos_new), max_new_tokens, sample=temperature > 0
        )
        results = []
        for new in continuations:
            finished = bool(new) and new[-1] in eos_new  # a continuation ends at its end token (decode_pruned)
            if finished:
                new = new[:-1]
            text = self.tokenizer.decode(
                self.old_ids[torch.tensor(new, dtype=torch.long)].tolist(), skip_special_tokens=True
            )
            results.append(Generation(text, len(new), finished))
        return results


def shared_prefill(model, ids: torch.Tensor, mask: torch.Tensor, samples: int):
    """The key/value cache of the left-padded prompts ``ids`` (all but each row's last token, which
    :func:`decode_pruned` feeds first), repeated ``samples`` times per row (``repeat_interleave`` order).

    Positions follow the attention mask as in ``generate`` (a padded row starts at position 0), so a sample
    continuing from this cache is the sample ``generate`` would draw from the repeated prompt, at the cost of one
    prompt encoding instead of ``samples``.
    """
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    if ids.shape[1] > 1:
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        model(
            input_ids=ids[:, :-1],
            attention_mask=mask[:, :-1],
            position_ids=positions[:, :-1],
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
    cache.batch_repeat_interleave(samples)
    return cache


def decode_pruned(
    model,
    ids: torch.Tensor,
    mask: torch.Tensor,
    cache,
    processors,
    eos: set[int],
    max_new_tokens: int,
    *,
    sample: bool,
) -> list[list[int]]:
    """Continue the left-padded rows ``ids`` (their ``cache`` holds all but each row's last token) for at most
    ``max_new_tokens`` tokens each; returns every row's new tokens, its end token included where it ended.

    The step is Hugging Face's sampling loop (``processors``, a ``LogitsProcessorList``, on the scores, then a
    multinomial draw, or argmax when not ``sample``), except that a row that has ended leaves the batch and its
    key/value cache (``DynamicCache.batch_select_indices``). ``generate`` keeps decoding a finished row with padding
    until the batch's longest continuation ends; after fine-tuning, when most continuations end early, that was most
    of the compute (docs/performance.md, "Where synthesis throws its lines away").
    """
    rows = list(range(len(ids)))
    new: list[list[int]] = [[] for _ in rows]
    step = ids[:, -1:]
    for _ in range(max_new_tokens):
        positions = mask.sum(-1, keepdim=True) - 1
        logits = (
            model(input_ids=step, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True)
            .logits[:, -1]
            .float()
        )
        scores = processors(ids, logits)
        if sample:
            tokens = torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
        else:
            tokens = scores.argmax(-1)
        ended = []
        for row, token in zip(rows, tokens.tolist(), strict=True):
            new[row].append(token)
            ended.append(token in eos)
        ids = torch.cat([ids, tokens[:, None]], dim=1)
        mask = torch.cat([mask, mask.new_ones((len(mask), 1))], dim=1)
        step = tokens[:, None]
        if any(ended):
            keep = torch.tensor([i for i, e in enumerate(ended) if not e], dtype=torch.long)
            if len(keep) == 0:
                break
            cache.batch_select_indices(keep)
            ids, mask, step = ids[keep], mask[keep], step[keep]
            rows = [rows[i] for i in keep.tolist()]
    return new


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
        chat: bool,
        timeout: float,
        retries: int,
        api_key: str | None = None,  # no param (a secret does not belong in params.yaml): none by default
        backoff: float = 1.0,  # no param: seconds before the first retry, doubling after each
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
        samples: int,
    ) -> list[Generation]:
        """``samples`` continuations of every prompt (one request each, seeds ``seed``, ``seed + 1``, ...), prompt
        ``i``'s at ``result[i * samples : (i + 1) * samples]``."""
        del no_repeat_ngram_size  # not part of the OpenAI API; repetition is controlled by the penalty
        results = []
        for i, prompt in enumerate(p for p in prompts for _ in range(samples)):
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
