"""Thin DVC stage entry points: ``python -m pipeline.stages.<name>``.

Each reads params, calls library code, writes its outs and ``metrics/<stage>.json``.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.io import atomic_path, write_text

#: Errors that mean bad input (params, source packages, data files): reported in one line, no traceback.
USER_ERRORS = (PipelineError, FileNotFoundError)


def run_stage(main: Callable[[], None]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        main()
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


#: Marker file in an output directory that a stage skipped by design (e.g. a UDHR-only language).
SKIPPED = "SKIPPED"


def write_skipped(reason: str, *out_dirs: Path) -> None:
    """Write each output directory as just a SKIPPED file holding ``reason`` (DVC outs must exist)."""
    for out_dir in out_dirs:
        with atomic_path(out_dir, is_dir=True) as tmp:
            write_text(tmp / SKIPPED, reason + "\n")


def live_logger(live, prefix: str = "") -> Callable[[int, dict[str, float]], None]:
    """A ``log(step, values)`` callback that sends values to a DVCLive ``Live`` and advances its step."""

    def log(step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            live.log_metric(prefix + name, value)
        live.next_step()

    return log


def main_process_live(live_dir: Path, is_main: bool):
    """A DVCLive ``Live`` writing to ``live_dir`` in the main process; ``None`` in the others."""
    if not is_main:
        return contextlib.nullcontext(None)
    from dvclive import Live

    return Live(str(live_dir), dvcyaml=False, save_dvc_exp=False, report=None)
