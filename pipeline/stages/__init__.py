"""Thin DVC stage entry points: ``python -m pipeline.stages.<name>``.

Each reads params, calls library code, writes its outs and ``metrics/<stage>.json``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pipeline.config import paths
from pipeline.errors import PipelineError
from pipeline.io import atomic_path, write_json, write_metrics, write_text, write_tsv

#: Errors that mean bad input (params, source packages, data files): reported in one line, no traceback.
USER_ERRORS = (PipelineError, FileNotFoundError)


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's ``main``: bad input is one ``error:`` line and exit code 2; a bug keeps its traceback.

    A finished stage records its wall time and peak memory in ``timings/stages/<stage>.json`` (git-ignored;
    the stage name is DVC's ``DVC_STAGE``, e.g. ``evaluate_baselines``), which ``benchmarks/pipeline_times.py``
    reads.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    try:
        main()
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    name = os.environ.get("DVC_STAGE") or Path(sys.argv[0]).stem
    peak_kb = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    record = {"seconds": round(time.perf_counter() - started, 1), "peak_rss_gb": round(peak_kb / 1024**2, 2)}
    write_json(paths.TIMINGS_DIR / "stages" / f"{name.replace('/', '_')}.json", record)


#: Marker file in an output directory that a stage skipped by design (e.g. a UDHR-only language).
SKIPPED = "SKIPPED"


def write_skipped(reason: str, *out_dirs: Path) -> None:
    """Write each output directory as just a SKIPPED file holding ``reason`` (DVC outs must exist)."""
    for out_dir in out_dirs:
        with atomic_path(out_dir, is_dir=True) as tmp:
            write_text(tmp / SKIPPED, reason + "\n")


def skipped_without_bitext(
    params,
    metrics_file: Path,
    *,
    dirs: Sequence[Path] = (),
    tables: Mapping[Path, Sequence[str]] | None = None,
    **extra,
) -> bool:
    """Skip a stage by design when the language has no seed bitext and no monolingual pool (a UDHR-only language).

    Then the stage's outputs still exist, as DVC needs: each of ``dirs`` holds only a ``SKIPPED`` file, each of
    ``tables`` is an empty TSV with its header, and ``metrics_file`` says ``"available": false`` and why (plus
    ``extra``); returns True. For any other language it writes nothing and returns False.
    """
    if params.has_bitext:
        return False
    reason = f"lang {params.lang!r} has no seed bitext or monolingual pool (UDHR-only): skipped by design"
    write_skipped(reason, *dirs)
    for path, columns in (tables or {}).items():
        write_tsv(path, [], columns)
    write_metrics(metrics_file, {"available": False, "reason": reason, **extra})
    return True


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
