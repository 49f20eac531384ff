"""Tests for pipeline.losses (OPTICAL OT alignment loss, pooled KD baseline, the distill objective).

POT's per-pair log-domain Sinkhorn (``ot.sinkhorn2(..., method="sinkhorn_log")``)
is the reference for the batched loss.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import ot
import pytest
import torch

from pipeline.config.conditions import DISTILL_LOSSES
from pipeline.losses import (
    DistillLoss,
    NonFiniteLossError,
    OTAlignmentLoss,
    PooledDistillationLoss,
    cosine_cost_matrix,
    ot_alignment_loss,
    plan_diagnostics,
    pooled_distillation_loss,
)

#: explicit solver settings of the tests (the library has no defaults: the pipeline passes the distill params)
SOLVER = {"epsilon": 0.05, "max_iter": 500, "tol": 1e-5, "differentiable_plan": False}


def solver(**overrides) -> dict:
    return {**SOLVER, **overrides}


def make_batch(
    B: int = 4,
    Lt: int = 9,
    Ls: int = 11,
    D: int = 16,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    weights: bool = False,
) -> dict:
    """Random variable-length teacher/student batch.

    Position 0 on both sides plays a [CLS]/prefix token (mask False); each row
    has a random number of real tokens followed by padding. Student states are
    noisy mixtures of teacher states so that the OT plan is far from uniform.
    """
    g = torch.Generator().manual_seed(seed)
    H_T = torch.randn(B, Lt, D, generator=g, dtype=dtype)
    mix = torch.softmax(3.0 * torch.randn(B, Ls, Lt, generator=g, dtype=dtype), dim=-1)
    H_S = mix @ H_T + 0.5 * torch.randn(B, Ls, D, generator=g, dtype=dtype)
    len_T = torch.randint(2, Lt + 1, (B,), generator=g)
    len_S = torch.randint(2, Ls + 1, (B,), generator=g)
    len_T[0], len_S[-1] = Lt, Ls  # at least one unpadded row on each side
    mask_T = torch.arange(Lt)[None, :] < len_T[:, None]
    mask_S = torch.arange(Ls)[None, :] < len_S[:, None]
    mask_T[:, 0] = False
    mask_S[:, 0] = False
    batch = {"H_T": H_T, "mask_T": mask_T, "H_S": H_S.requires_grad_(True), "mask_S": mask_S}
    if weights:
        batch["a"] = torch.rand(B, Lt, generator=g, dtype=dtype) + 0.1
        batch["b"] = torch.rand(B, Ls, generator=g, dtype=dtype) + 0.1
    return batch


def reference_loop(batch: dict, epsilon: float) -> np.ndarray:
    """Per-pair ``ot.sinkhorn2`` (log domain) on the unpadded float64 costs."""
    C = cosine_cost_matrix(batch["H_T"], batch["mask_T"], batch["H_S"], batch["mask_S"])
    C = C.detach().double().numpy()
    values = []
    for i in range(C.shape[0]):
        rows = batch["mask_T"][i].numpy()
        cols = batch["mask_S"][i].numpy()
        a_i = batch["a"][i].double().numpy()[rows] if "a" in batch else np.ones(rows.sum())
        b_i = batch["b"][i].double().numpy()[cols] if "b" in batch else np.ones(cols.sum())
        values.append(
            ot.sinkhorn2(
                a_i / a_i.sum(),
                b_i / b_i.sum(),
                C[i][np.ix_(rows, cols)],
                reg=epsilon,
                method="sinkhorn_log",
                numItermax=10000,
                stopThr=1e-13,
            )
        )
    return np.asarray(values)


def expected_marginals(batch: dict) -> tuple[np.ndarray, np.ndarray]:
    out = []
    for w_key, m_key in (("a", "mask_T"), ("b", "mask_S")):
        mask = batch[m_key].numpy()
        w = batch[w_key].double().numpy() if w_key in batch else np.ones(mask.shape)
        w = np.where(mask, w, 0.0)
        out.append(w / w.sum(axis=1, keepdims=True))
    return out[0], out[1]


# --------------------------------------------------------------------------- OT


@pytest.mark.parametrize("weights", [False, True], ids=["uniform", "custom"])
@pytest.mark.parametrize("seed", [0, 1])
def test_plan_marginals(weights: bool, seed: int) -> None:
    # epsilon=0.1 keeps Sinkhorn well conditioned; at epsilon=0.05 some rows of
    # these batches need ~18k iterations to reach 1e-8 (a property of
    # Sinkhorn itself, POT's per-pair solver converges just as slowly).
    batch = make_batch(B=5, seed=seed, dtype=torch.float64, weights=weights)
    _, plan = ot_alignment_loss(**batch, **solver(epsilon=0.1, max_iter=10000, tol=1e-10))
    a, b = expected_marginals(batch)
    plan = plan.numpy()
    np.testing.assert_allclose(plan.sum(axis=2), a, atol=1e-8)
    np.testing.assert_allclose(plan.sum(axis=1), b, atol=1e-8)
    np.testing.assert_allclose(plan.sum(axis=(1, 2)), np.ones(len(plan)), atol=1e-8)


@pytest.mark.parametrize("weights", [False, True], ids=["uniform", "custom"])
@pytest.mark.parametrize("epsilon", [0.01, 0.05, 0.1])
def test_loss_matches_pot_sinkhorn2(weights: bool, epsilon: float) -> None:
    batch = make_batch(B=4, seed=3, dtype=torch.float64, weights=weights)
    loss, _ = ot_alignment_loss(**batch, **solver(epsilon=epsilon, max_iter=10000, tol=1e-12))
    np.testing.assert_allclose(loss.detach().numpy(), reference_loop(batch, epsilon), rtol=0, atol=1e-5)


def test_module_matches_function_mean() -> None:
    batch = make_batch(seed=4)
    module = OTAlignmentLoss(**solver(max_iter=300))
    per_pair, _ = ot_alignment_loss(**batch, **solver(max_iter=300))
    value = module(**batch)["loss"]
    assert value.dim() == 0
    np.testing.assert_allclose(value.item(), per_pair.mean().item(), rtol=1e-6)
    assert "epsilon=0.05" in repr(module)


def test_module_returns_the_loss_and_the_diagnostics_and_its_settings() -> None:
    """One type from every call: ``loss`` and the solve's diagnostics as 0-dim tensors (the function's ``log=True``
    numbers); nothing is kept on the module; ``get_config_dict`` gives back the settings it was built with."""
    batch = make_batch(seed=4)
    module = OTAlignmentLoss(**solver(max_iter=300))
    out = module(**batch)
    assert set(out) == {"loss", "iterations", "marginal_violation", "entropy", "entropy_uniform"}
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in out.values())
    assert 1 <= out["iterations"].item() <= 300 and out["loss"].requires_grad
    assert not any(v.requires_grad for k, v in out.items() if k != "loss")
    assert not any(name.startswith("last") for name in vars(module))
    per_pair, plan, fn_log = ot_alignment_loss(**batch, **solver(max_iter=300), log=True)
    per_pair0, plan0 = ot_alignment_loss(**batch, **solver(max_iter=300))
    assert torch.equal(per_pair, per_pair0) and torch.equal(plan, plan0)
    assert {k: v.item() for k, v in out.items() if k != "loss"} == pytest.approx(fn_log, rel=1e-6)
    assert module.get_config_dict() == {**solver(max_iter=300), "detach_teacher": True}
    assert OTAlignmentLoss(**module.get_config_dict()).get_config_dict() == module.get_config_dict()


def test_plan_diagnostics_against_a_direct_computation() -> None:
    """Violation and entropy of the plan the loss uses, checked by hand (numpy) and against POT's own plan."""
    batch = make_batch(B=4, seed=5, dtype=torch.float64)
    _, plan, diag = ot_alignment_loss(**batch, **solver(max_iter=5000, tol=1e-9), log=True)
    mu, nu = expected_marginals(batch)
    P = plan.detach().numpy()
    violation = max(max(np.abs(P[i].sum(1) - mu[i]).sum(), np.abs(P[i].sum(0) - nu[i]).sum()) for i in range(len(P)))
    entropy = np.mean([-(P[i][P[i] > 0] * np.log(P[i][P[i] > 0])).sum() for i in range(len(P))])
    assert diag["marginal_violation"] == pytest.approx(violation, abs=1e-12) and violation < 1e-7
    assert diag["entropy"] == pytest.approx(entropy, rel=1e-9)
    assert diag["iterations"] < 5000
    # the independent plan mu nu^T: entropy log(n) + log(m) per pair with uniform marginals
    n, m = batch["mask_T"].sum(1).numpy(), batch["mask_S"].sum(1).numpy()
    assert diag["entropy_uniform"] == pytest.approx(np.mean(np.log(n) + np.log(m)))
    assert diag["entropy"] < diag["entropy_uniform"]
    # POT's single-pair log-domain plan of the first pair has the same entropy
    rows, cols = batch["mask_T"][0].numpy(), batch["mask_S"][0].numpy()
    C = cosine_cost_matrix(**{k: batch[k] for k in ("H_T", "mask_T", "H_S", "mask_S")})[0].detach().numpy()
    ref = ot.sinkhorn(mu[0][rows], nu[0][cols], C[np.ix_(rows, cols)], 0.05, method="sinkhorn_log", stopThr=1e-13)
    assert -(ref * np.log(ref)).sum() == pytest.approx(-(P[0][P[0] > 0] * np.log(P[0][P[0] > 0])).sum(), rel=1e-6)
    # stopped early, the violation shows it; the tolerance bounds it (L2 of the row side)
    early = OTAlignmentLoss(**solver(epsilon=0.01, max_iter=2, tol=0.0))(**batch)
    assert early["marginal_violation"] > 1e-3 and early["iterations"] == 2
    tol = OTAlignmentLoss(**solver(max_iter=5000, tol=1e-4))(**batch)
    assert tol["marginal_violation"] <= 1e-4 * np.sqrt(batch["mask_T"].shape[1])
    # the diagnostics are plain numbers of a no-grad computation
    assert all(isinstance(v, float) for k, v in plan_diagnostics(plan, torch.tensor(mu), torch.tensor(nu)).items())


@pytest.mark.parametrize("differentiable_plan", [False, True], ids=["envelope", "unrolled"])
@pytest.mark.parametrize("epsilon", [0.01, 0.05, 0.1])
def test_gradients_finite(epsilon: float, differentiable_plan: bool) -> None:
    batch = make_batch(seed=5)
    batch["H_T"].requires_grad_(True)
    loss_fn = OTAlignmentLoss(**solver(epsilon=epsilon, max_iter=300, differentiable_plan=differentiable_plan))
    loss = loss_fn(**batch)["loss"]
    loss.backward()
    grad = batch["H_S"].grad
    assert torch.isfinite(loss)
    assert torch.isfinite(grad).all()
    assert grad[batch["mask_S"]].abs().sum() > 0
    assert batch["H_T"].grad is None  # teacher is detached by default


def test_plan_detached_unless_differentiable() -> None:
    batch = make_batch(seed=6)
    _, plan = ot_alignment_loss(**batch, **SOLVER)
    assert not plan.requires_grad
    _, plan = ot_alignment_loss(**batch, **solver(differentiable_plan=True, max_iter=50))
    assert plan.requires_grad


def test_unrolled_gradient_gradcheck() -> None:
    batch = make_batch(B=2, Lt=5, Ls=6, D=4, seed=7, dtype=torch.float64)

    def f(H_S: torch.Tensor) -> torch.Tensor:
        args = dict(batch, H_S=H_S)
        return ot_alignment_loss(**args, epsilon=0.1, max_iter=30, tol=0.0, differentiable_plan=True)[0]

    H_S = batch["H_S"].detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(f, (H_S,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("differentiable_plan", [False, True], ids=["envelope", "unrolled"])
def test_masks_respected(differentiable_plan: bool) -> None:
    batch = make_batch(seed=8)
    kwargs = solver(max_iter=200, differentiable_plan=differentiable_plan)
    loss, plan = ot_alignment_loss(**batch, **kwargs)
    (grad,) = torch.autograd.grad(loss.sum(), batch["H_S"])

    pad_T, pad_S = ~batch["mask_T"], ~batch["mask_S"]
    assert (plan.detach()[pad_T] == 0).all()
    assert (plan.detach().transpose(1, 2)[pad_S] == 0).all()
    assert (grad[pad_S] == 0).all()

    # Scribble over every padded/prefix state: loss and gradients are unchanged.
    H_T2 = batch["H_T"].clone()
    H_S2 = batch["H_S"].detach().clone()
    H_T2[pad_T] = 1e4 * torch.randn_like(H_T2[pad_T])
    H_S2[pad_S] = float("nan")
    H_S2.requires_grad_(True)
    loss2, plan2 = ot_alignment_loss(**dict(batch, H_T=H_T2, H_S=H_S2), **kwargs)
    (grad2,) = torch.autograd.grad(loss2.sum(), H_S2)
    np.testing.assert_allclose(loss2.detach().numpy(), loss.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(plan2.detach().numpy(), plan.detach().numpy(), atol=1e-7)
    np.testing.assert_allclose(grad2.numpy(), grad.numpy(), atol=1e-7)


def test_half_precision_inputs_are_upcast() -> None:
    batch = make_batch(seed=9)
    batch["H_T"] = batch["H_T"].bfloat16()
    batch["H_S"] = batch["H_S"].detach().bfloat16().requires_grad_(True)
    loss, plan = ot_alignment_loss(**batch, **SOLVER)
    assert plan.dtype == torch.float32
    loss.sum().backward()
    assert torch.isfinite(batch["H_S"].grad.float()).all()


# ----------------------------------------------------------- shared validation


def _ot(**batch) -> torch.Tensor:
    return OTAlignmentLoss(**SOLVER)(**batch)["loss"]


def _pooled(**batch) -> torch.Tensor:
    return PooledDistillationLoss("mse")(**batch)["loss"]


def _break(batch: dict, case: str) -> dict:
    batch = dict(batch)
    if case == "batch size":
        batch["H_S"] = batch["H_S"][:-1]
        batch["mask_S"] = batch["mask_S"][:-1]
    elif case == "hidden size":
        batch["H_S"] = batch["H_S"][..., :-1]
    elif case == "teacher mask shape":
        batch["mask_T"] = batch["mask_T"][:, :-1]
    elif case == "student mask shape":
        batch["mask_S"] = batch["mask_S"][:-1]
    elif case == "mask dtype":
        batch["mask_S"] = batch["mask_S"].long()
    elif case == "empty teacher row":
        batch["mask_T"] = batch["mask_T"].clone()
        batch["mask_T"][2] = False
    elif case == "empty student row":
        batch["mask_S"] = batch["mask_S"].clone()
        batch["mask_S"][1] = False
    elif case == "weights shape":
        batch["a"] = torch.ones(batch["mask_T"].shape[0], 3)
    elif case == "negative weights":
        batch["b"] = -torch.ones(batch["mask_S"].shape)
    elif case == "weights without mass":
        batch["a"] = (~batch["mask_T"]).float()
    return batch


_CASES = {
    "batch size": "batch sizes differ",
    "hidden size": "hidden sizes differ",
    "teacher mask shape": "mask_T has shape",
    "student mask shape": "mask_S has shape",
    "mask dtype": "torch.bool",
    "empty teacher row": r"row\(s\) \[2\] of mask_T have no real tokens",
    "empty student row": r"row\(s\) \[1\] of mask_S have no real tokens",
    "weights shape": "weights a must have shape",
    "negative weights": "weights b must be non-negative",
    "weights without mass": "weights a have no mass",
}


@pytest.mark.parametrize("loss", [_ot, _pooled], ids=["ot", "pooled"])
@pytest.mark.parametrize("case", list(_CASES))
def test_value_errors(loss, case: str) -> None:
    with pytest.raises(ValueError, match=_CASES[case]):
        loss(**_break(make_batch(), case))


@pytest.mark.parametrize("epsilon", [0.0, -0.1, float("nan"), float("inf")])
def test_epsilon_must_be_positive(epsilon: float) -> None:
    with pytest.raises(ValueError, match="epsilon"):
        OTAlignmentLoss(**solver(epsilon=epsilon))
    with pytest.raises(ValueError, match="epsilon"):
        ot_alignment_loss(**make_batch(), **solver(epsilon=epsilon))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("loss", [_ot, _pooled], ids=["ot", "pooled"])
def test_non_finite_raises_with_batch_id(loss, bad: float) -> None:
    batch = make_batch()
    H_S = batch["H_S"].detach().clone()
    H_S[3, 1, 0] = bad  # a real token of row 3
    assert batch["mask_S"][3, 1]
    with pytest.raises(FloatingPointError, match=r"batch 17.*row\(s\) \[3\]") as info:
        loss(**dict(batch, H_S=H_S), batch_id=17)
    assert isinstance(info.value, ValueError) and isinstance(info.value, NonFiniteLossError)


# ----------------------------------------------------------------------- pooled


def _masked_mean(states: torch.Tensor, mask: torch.Tensor, w: torch.Tensor | None = None) -> np.ndarray:
    states, mask = states.detach().double().numpy(), mask.numpy()
    w = np.ones(mask.shape) if w is None else w.double().numpy()
    w = np.where(mask, w, 0.0)
    return np.einsum("bl,bld->bd", w / w.sum(1, keepdims=True), np.where(mask[..., None], states, 0.0))


@pytest.mark.parametrize("weights", [False, True], ids=["uniform", "custom"])
def test_pooled_matches_numpy(weights: bool) -> None:
    batch = make_batch(seed=10, weights=weights)
    p_t = _masked_mean(batch["H_T"], batch["mask_T"], batch.get("a"))
    p_s = _masked_mean(batch["H_S"], batch["mask_S"], batch.get("b"))
    mse = pooled_distillation_loss(**batch, kind="mse")
    cos = pooled_distillation_loss(**batch, kind="cosine")
    np.testing.assert_allclose(mse.detach().numpy(), ((p_t - p_s) ** 2).mean(1), rtol=1e-5)
    expected_cos = 1 - (p_t * p_s).sum(1) / np.linalg.norm(p_t, axis=1) / np.linalg.norm(p_s, axis=1)
    np.testing.assert_allclose(cos.detach().numpy(), expected_cos, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["mse", "cosine"])
def test_pooled_zero_for_identical_and_masks_respected(kind: str) -> None:
    batch = make_batch(seed=11)
    H = batch["H_T"][:, :9]
    mask = batch["mask_T"][:, :9]
    same = PooledDistillationLoss(kind)(H, mask, H.clone().requires_grad_(True), mask)["loss"]
    np.testing.assert_allclose(same.item(), 0.0, atol=1e-6)

    loss_fn = PooledDistillationLoss(kind)
    loss = loss_fn(**batch)["loss"]
    (grad,) = torch.autograd.grad(loss, batch["H_S"])
    H_S2 = batch["H_S"].detach().clone()
    H_S2[~batch["mask_S"]] = float("nan")
    H_S2.requires_grad_(True)
    loss2 = loss_fn(**dict(batch, H_S=H_S2))["loss"]
    (grad2,) = torch.autograd.grad(loss2, H_S2)
    assert torch.isfinite(grad).all() and (grad[~batch["mask_S"]] == 0).all()
    np.testing.assert_allclose(loss2.item(), loss.item(), rtol=1e-6)
    np.testing.assert_allclose(grad2.numpy(), grad.numpy(), atol=1e-7)


def test_pooled_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind"):
        PooledDistillationLoss("l1")  # type: ignore[arg-type]


# ---------------------------------------------------------------- distill loss

DISTILL = {"epsilon": 0.05, "sinkhorn_max_iter": 500, "sinkhorn_tol": 1e-5, "differentiable_plan": False}


@pytest.mark.parametrize("kind", DISTILL_LOSSES)
def test_distill_loss_sums_its_terms_and_returns_the_plan_log(kind: str) -> None:
    batch = make_batch(seed=12)
    parts = DistillLoss(kind, **DISTILL, pooled_weight=0.5)(**batch, batch_id=3)
    log = OTAlignmentLoss(**SOLVER)(**batch)
    ot_value = log.pop("loss")
    pooled_value = PooledDistillationLoss("cosine")(**batch)["loss"]
    expected = {"ot": ot_value, "pooled": pooled_value}
    terms = kind.split("+")
    plan_keys = {f"plan/{k}" for k in log} if "ot" in terms else set()
    assert set(parts) == {*terms, "loss"} | plan_keys
    for term in terms:
        assert torch.equal(parts[term], expected[term])
    total = (ot_value if "ot" in terms else 0.0) + 0.5 * (pooled_value if "pooled" in terms else 0.0)
    assert torch.equal(parts["loss"], total) and parts["loss"].requires_grad
    for key in plan_keys:
        value = parts[key]
        assert isinstance(value, torch.Tensor) and value.dim() == 0 and not value.requires_grad
        assert torch.equal(value, log[key.removeprefix("plan/")])


def test_distill_loss_from_params() -> None:
    section = SimpleNamespace(loss="ot+pooled", **DISTILL, pooled_weight=0.25)
    fn = DistillLoss.from_params(section)
    assert fn.kind == "ot+pooled" and fn.pooled_weight == 0.25
    assert (fn.ot.epsilon, fn.ot.max_iter, fn.ot.tol, fn.ot.differentiable_plan) == (0.05, 500, 1e-5, False)
    assert fn.get_config_dict() == {
        "kind": "ot+pooled",
        "pooled_weight": 0.25,
        "ot": {"epsilon": 0.05, "max_iter": 500, "tol": 1e-5, "differentiable_plan": False, "detach_teacher": True},
        "pooled": {"kind": "cosine", "detach_teacher": True},
    }
    assert set(DistillLoss.from_params(SimpleNamespace(**(vars(section) | {"loss": "pooled"}))).get_config_dict()) == {
        "kind",
        "pooled_weight",
        "pooled",
    }
    with pytest.raises(ValueError, match="unknown distill.loss 'mse'"):
        DistillLoss("mse", **DISTILL, pooled_weight=1.0)
