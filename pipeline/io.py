"""Atomic writes and validated reads of the pipeline's small file formats.

Every output is written to a temporary file beside its destination and renamed into place, so a killed
stage never leaves a half-written file that a later stage (or ``dvc``) could mistake for a result.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd


class DataFileError(ValueError):
    """A data file is missing, malformed or inconsistent; the message names the file."""


@contextmanager
def atomic_path(path: Path | str, *, is_dir: bool = False):
    """Yield a temporary path; on success rename it to ``path`` (replacing it), on error remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_dir:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        tmp.chmod(0o755 if is_dir else 0o644)
        if is_dir:
            if path.exists():
                shutil.rmtree(path)
            tmp.rename(path)
        else:
            os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def write_text(path: Path | str, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path | str, obj) -> None:
    """Deterministic JSON (sorted keys, fixed indentation) written atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def read_json(path: Path | str) -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataFileError(f"file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFileError(f"{path} is not valid UTF-8 JSON: {exc}") from None


def write_tsv(path: Path | str, rows: Iterable[Sequence[str]], columns: Sequence[str]) -> int:
    """Write a headed TSV; fields may not contain tabs or newlines (they are normalised to spaces)."""
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("\t".join(columns) + "\n")
        for row in rows:
            if len(row) != len(columns):
                raise ValueError(f"{path}: row has {len(row)} fields, expected {len(columns)}: {row!r}")
            fh.write("\t".join(" ".join(str(v).split()) for v in row) + "\n")
            n += 1
    return n


def read_tsv(path: Path | str, columns: Sequence[str], *, allow_empty: bool = False) -> pd.DataFrame:
    """Read a headed TSV written by :func:`write_tsv`, checking its columns and that it is not empty."""
    path = Path(path)
    if not path.exists():
        raise DataFileError(f"file not found: {path}")
    try:
        df = pd.read_csv(
            path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE, encoding="utf-8"
        )
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{path} is not UTF-8: {exc}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataFileError(f"{path} is not a valid TSV with header {list(columns)}: {exc}") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataFileError(f"{path}: missing column(s) {missing}; found {list(df.columns)}")
    if df.empty and not allow_empty:
        raise DataFileError(f"{path} has no rows")
    if df[columns[0]].duplicated().any():
        dup = df.loc[df[columns[0]].duplicated(), columns[0]].iloc[0]
        raise DataFileError(f"{path}: duplicate {columns[0]} {dup!r}")
    return df[list(columns)]
