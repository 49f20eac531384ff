"""Thin DVC stage entry points: ``python -m pipeline.stages.<name>``.

Each reads params, calls library code, writes its outs and ``metrics/<stage>.json``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from pipeline.data.bible import SourceError
from pipeline.io import DataFileError
from pipeline.params import ParamsError

#: Errors that mean bad input (params, source packages, data files): reported in one line, no traceback.
USER_ERRORS = (ParamsError, SourceError, DataFileError, FileNotFoundError)


def run_stage(main: Callable[[], None]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        main()
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
