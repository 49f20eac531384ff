"""Stage ``distill``: the OPTICAL student, a copy of the teacher taught to read the target language.

Trains on ``data/bitext/train.tsv`` with ``distill.loss`` (``ot`` token alignment by default). Writes
``models/student/``, ``metrics/distill.json`` (cross-lingual AP on the source dev set: BBE queries by the
teacher against target-language verses by the student; the teacher's own cross-lingual AP, the same in every
experiment of a language, is the ``teacher`` system of ``metrics/baselines/``; the Sinkhorn plan's iterations,
worst marginal violation and entropy over all steps) and ``dvclive/distill`` (the loss terms and the plan's
diagnostics per step).
With ``train.nproc > 1`` it re-launches itself under torchrun; rank 0 evaluates and writes, every rank trains.
"""

from __future__ import annotations

from pipeline.config import paths, seeds
from pipeline.config.params import load_params
from pipeline.data import store
from pipeline.data.splits import BITEXT_COLUMNS
from pipeline.io import read_tsv, write_metrics
from pipeline.losses import DistillLoss
from pipeline.retrieval.encoders import load_encoder, save_encoder
from pipeline.retrieval.search import Encoder, dev_ap
from pipeline.stages import live_logger, main_process_live, run_stage, skipped_without_bitext
from pipeline.training.loops import TokenIdf, TrainConfig, train_student, training_steps
from pipeline.training.runtime import Runtime, run_training

STUDENT_DIR = paths.STUDENT_DIR
LIVE_DIR = paths.LIVE_DIRS["distill"]


def main() -> None:
    params = load_params()
    cfg = params.distill
    if skipped_without_bitext(params, paths.metrics_file("distill"), dirs=(STUDENT_DIR, LIVE_DIR), loss=cfg.loss):
        return
    run_training(params, "pipeline.stages.distill", train)


def train(params, runtime: Runtime) -> None:
    cfg = params.distill
    loss_fn = DistillLoss.from_params(cfg)
    teacher, tokenizer = load_encoder(paths.TEACHER_DIR)
    student, _ = load_encoder(paths.TEACHER_DIR)
    bitext = read_tsv(paths.BITEXT_FILE, BITEXT_COLUMNS)
    pairs = list(bitext[["id", "en", "xx"]].itertuples(index=False, name=None))
    steps = training_steps(cfg.steps, cfg.epochs, len(pairs), cfg.batch_size)
    idf = TokenIdf.from_pairs(tokenizer, pairs, cfg.max_length) if cfg.marginals == "idf" else None
    dev = store.read_file("source_dev")
    bs, ml = params.encoder.batch_size, params.encoder.max_length
    teacher_enc, student_enc = Encoder(teacher, tokenizer, bs, ml), Encoder(student, tokenizer, bs, ml)
    plan_log: list[dict[str, float]] = []
    with main_process_live(LIVE_DIR, runtime.is_main) as live:
        to_live = live_logger(live, "train/") if live is not None else None

        def log(step: int, values: dict[str, float]) -> None:
            plan_log.append({k.removeprefix("plan/"): v for k, v in values.items() if k.startswith("plan/")})
            if to_live is not None:
                to_live(step, values)

        losses = train_student(
            teacher,
            student,
            tokenizer,
            pairs,
            TrainConfig.from_params(cfg, steps),
            loss_fn,
            seed=seeds.derive(params.lang_seed, "distill", str(cfg.seed)),
            log=log,
            runtime=runtime,
            idf=idf,
        )
    if not runtime.is_main:
        return
    after = dev_ap(teacher_enc, student_enc, dev, "xx", params.evaluate.depth)
    save_encoder(student.cpu(), tokenizer, STUDENT_DIR)
    tail = losses[-10:]
    write_metrics(
        paths.metrics_file("distill"),
        {
            "loss": cfg.loss,
            "loss_config": loss_fn.get_config_dict(),  # every term's settings (info file)
            "marginals": cfg.marginals,
            "precision": runtime.precision,  # what ran (train.precision auto resolved)
            "steps": steps,  # distill.steps, or from distill.epochs (pipeline.training.loops.training_steps)
            "pairs": len(pairs),
            "epochs": round(steps * cfg.batch_size / len(pairs), 2),
            "first_loss": round(losses[0], 4),
            "final_loss": round(sum(tail) / len(tail), 4),
            "dev_en_xx": {"student": after, "queries": len(dev)},
            "plan": plan_summary(plan_log),
        },
    )


def plan_summary(steps: list[dict[str, float]]) -> dict | None:
    """The Sinkhorn plan over all steps (None without an OT term): iterations, worst marginal violation, entropy."""
    if not steps or not steps[0]:
        return None
    col = {k: [s[k] for s in steps] for k in steps[0]}
    return {
        "iterations_mean": round(sum(col["iterations"]) / len(steps), 1),
        "iterations_max": int(max(col["iterations"])),
        "marginal_violation_max": float(f"{max(col['marginal_violation']):.3g}"),
        "entropy_mean": round(sum(col["entropy"]) / len(steps), 3),
        "entropy_uniform_mean": round(sum(col["entropy_uniform"]) / len(steps), 3),
    }


if __name__ == "__main__":
    run_stage(main)
