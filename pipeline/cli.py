"""The entry point of the command-line tools (``python -m pipeline.experiments.grid|results|compare``): bad input
(a :class:`~pipeline.errors.PipelineError`) exits with its message as one line, no traceback. Stages have their
own (:func:`pipeline.stages.run_stage`)."""

from __future__ import annotations

from collections.abc import Callable

from pipeline.errors import PipelineError


def run_command(main: Callable[[], None]) -> None:
    try:
        main()
    except PipelineError as exc:
        raise SystemExit(f"error: {exc}") from None
