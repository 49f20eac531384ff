"""Stage ``teacher``: the encoder fine-tuned for English retrieval (BBE query → WEB passage, InfoNCE).

``teacher.steps: 0`` keeps the encoder as it is. Writes ``models/teacher/``, ``metrics/teacher.json``
(English→English AP on the held-out source-domain dev set, before and after) and the DVCLive curve
``dvclive/teacher``. With ``train.nproc > 1`` it re-launches itself under torchrun; rank 0 evaluates and
writes, every rank trains.
"""

from __future__ import annotations

from pipeline.config import paths, seeds
from pipeline.config.params import load_params
from pipeline.data import store
from pipeline.io import write_metrics
from pipeline.retrieval.encoders import load_encoder, save_encoder
from pipeline.retrieval.search import Encoder, dev_ap
from pipeline.stages import live_logger, main_process_live, run_stage
from pipeline.training.loops import TrainConfig, train_teacher
from pipeline.training.runtime import Runtime, run_training

LIVE_DIR = paths.LIVE_DIRS["teacher"]


def main() -> None:
    params = load_params()
    run_training(params, "pipeline.stages.teacher", train)


def train(params, runtime: Runtime) -> None:
    cfg = params.teacher
    model, tokenizer = load_encoder(paths.ENCODER_DIR)
    dev = store.read_file("english_dev")
    encoder = Encoder(model, tokenizer, params.encoder.batch_size, params.encoder.max_length)
    before = dev_ap(encoder, encoder, dev, "en", params.evaluate.depth) if runtime.is_main else None
    losses: list[float] = []
    with main_process_live(LIVE_DIR, runtime.is_main) as live:
        if cfg.steps > 0:
            pairs = list(store.read_file("english_pairs")[["query", "passage"]].itertuples(index=False, name=None))
            losses = train_teacher(
                model,
                tokenizer,
                pairs,
                TrainConfig.from_params(cfg, cfg.steps),
                temperature=cfg.temperature,
                seed=seeds.derive(params.seed, "teacher"),
                log=live_logger(live, "train/") if live is not None else None,
                runtime=runtime,
            )
    if not runtime.is_main:
        return
    LIVE_DIR.mkdir(parents=True, exist_ok=True)  # exists (empty) when steps == 0
    after = dev_ap(encoder, encoder, dev, "en", params.evaluate.depth) if losses else before
    save_encoder(model.cpu(), tokenizer, paths.TEACHER_DIR)
    write_metrics(
        paths.metrics_file("teacher"),
        {
            "precision": runtime.precision,  # what ran (train.precision auto resolved)
            "steps": cfg.steps,
            "final_loss": round(sum(losses[-10:]) / len(losses[-10:]), 4) if losses else None,
            "dev_en_en": {"encoder": before, "teacher": after, "queries": len(dev)},
        },
    )


if __name__ == "__main__":
    run_stage(main)
