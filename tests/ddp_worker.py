"""Train the tiny teacher and student of ``test_distributed.py`` in this process, or in each torchrun worker.

``python tests/ddp_worker.py OUT.json`` runs one process; ``torchrun --nproc-per-node=2 tests/ddp_worker.py
OUT.json`` runs two data-parallel ones (gloo). Rank 0 writes the per-step losses and the final weights'
checksums to OUT.json.
"""

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.distributed import init_runtime, shutdown
from pipeline.encoder import load_xlmr_tokenizer
from pipeline.training import DistillLoss, TrainConfig, train_student, train_teacher
from tests.test_training import PAIRS, tiny_model


def main(out: str) -> None:
    torch.set_num_threads(1)
    runtime = init_runtime("cpu", "fp32")
    tokenizer = load_xlmr_tokenizer()
    cfg = TrainConfig(steps=4, batch_size=8, lr=1e-3, max_length=32, freeze_embeddings=True)
    # No dropout: its masks depend on how a batch is split, and the comparison with one process is exact.
    teacher = tiny_model(0, dropout=0.0)
    teacher_losses = train_teacher(teacher, tokenizer, [(en, en.upper()) for _, en, _ in PAIRS], cfg,
                                   temperature=0.05, seed=3, runtime=runtime)
    student = tiny_model(1, dropout=0.0)
    student.load_state_dict(teacher.state_dict())
    loss_fn = DistillLoss("ot+pooled", epsilon=0.05, sinkhorn_iters=50, differentiable_plan=False)
    student_losses = train_student(teacher, student, tokenizer, PAIRS, cfg, loss_fn, seed=5, runtime=runtime)
    if runtime.is_main:
        weights = {name: float(p.detach().double().sum()) for name, p in student.named_parameters() if p.requires_grad}
        Path(out).write_text(json.dumps({"world_size": runtime.world_size, "teacher": teacher_losses,
                                         "student": student_losses, "weights": weights}))
    shutdown(runtime)


if __name__ == "__main__":
    main(sys.argv[1])
