"""Atomic writes and validated reads of the pipeline's small file formats.

Every output is written to a temporary file beside its destination and renamed into place, so a killed
stage never leaves a half-written file that a later stage (or ``dvc``) could mistake for a result.
"""

from __future__ import annotations

import csv
import fnmatch
import glob
import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from pipeline.config import paths
from pipeline.errors import PipelineError


class DataFileError(PipelineError):
    """A data file is missing, malformed or inconsistent; the message names the file."""


@contextmanager
def atomic_path(path: Path | str, *, is_dir: bool = False):
    """Yield a temporary path; on success rename it to ``path`` (replacing it), on error remove it.

    A process killed outright (SIGKILL, power loss) cannot clean up: its temporary ``.<name>.*`` sibling is
    removed by the next write of the same path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
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


#: Where :func:`write_metrics` puts wall-clock measurements (git-ignored, not a DVC output).
TIMINGS_DIR = paths.TIMINGS_DIR
#: Keys that hold wall-clock measurements (``train_seconds``, ``tokens_per_second``, …).
TIMING_SUFFIXES = ("seconds", "per_second")


def split_timings(obj):
    """``(obj without timing keys, the timing keys alone)``, recursing into nested dicts."""
    if not isinstance(obj, dict):
        return obj, {}
    kept, timings = {}, {}
    for key, value in obj.items():
        if key.endswith(TIMING_SUFFIXES):
            timings[key] = value
            continue
        kept[key], inner = split_timings(value)
        if inner:
            timings[key] = inner
    return kept, timings


#: The headline numbers of each metrics file (by its name without ``.json`` under ``metrics/``; dotted keys,
#: ``fnmatch`` patterns): what ``dvc metrics show`` / ``diff`` compare across commits. Every other key of a stage's
#: metrics (diagnostics, filter counts, names, signatures, hashes) goes to the info file beside it.
HEADLINE = {
    "udhr": ["*"],
    "prepare": ["splits.*.queries", "train.bitext_source", "train.mono_target_genre"],  # docs, judgments: info
    "encoder": ["n_params"],
    "mt": ["epochs", "dev_*.bleu", "dev_*.chrf"],
    "mt_forward": ["epochs", "dev_*.bleu", "dev_*.chrf"],
    "backtranslate": ["sentences", "degenerate_rate", "parallel_rows"],
    "forward_translate": ["sentences", "degenerate_rate"],
    "round_trip": ["*.chrf_mean"],
    "translate_docs": ["distinct_docs", "splits.*.degenerate_rate"],
    "llm": ["vocab_size"],
    "synthesize": ["prompts", "generated", "kept", "pass_rate", "quality_kept.word_validity"],
    "bitext": ["rows", "rows_by_origin.*", "augmentation.*.kept_in_pool"],
    "teacher": ["dev_en_en.*.AP"],
    "distill": ["final_loss", "dev_en_xx.student.AP", "plan.iterations_mean"],
    "baselines/*": ["*.AP"],  # <system>.<query form>.AP: 10 numbers; their nDCG@10 and R@100 in the info file
    "eval/*": ["student.*.AP", "student.*.nDCG@10", "student.*.R@100"],  # student.<query form>.<measure>
    # AP.<split> and robustness with title queries (the primary form), AP_desc.<split> with desc queries; the
    # baselines' robustness does not change with the bitext
    "report": ["AP.*", "AP_*", "robustness.student.*"],
}


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def split_info(obj: dict, headline: list[str], prefix: str = "") -> tuple[dict, dict]:
    """``(the headline numbers of obj, everything else)``, nested as in ``obj``: a leaf is headline when it is a
    number (an int or a float, not a bool) and its dotted key matches one of the ``headline`` patterns."""
    numbers, info = {}, {}
    for key, value in obj.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            inner_numbers, inner_info = split_info(value, headline, f"{dotted}.")
            if inner_numbers:
                numbers[key] = inner_numbers
            if inner_info:
                info[key] = inner_info
        elif _is_number(value) and any(fnmatch.fnmatchcase(dotted, p) for p in headline):
            numbers[key] = value
        else:
            info[key] = value
    return numbers, info


def headline(path: Path | str) -> list[str]:
    """The :data:`HEADLINE` patterns of the metrics file ``path`` (``[...]/metrics/<name>.json``); none if unlisted."""
    path = Path(path)
    name = f"{path.parent.name}/{path.stem}" if path.parent.name != paths.METRICS_DIR.name else path.stem
    return next((keys for pattern, keys in HEADLINE.items() if fnmatch.fnmatchcase(name, pattern)), [])


def info_file(path: Path | str) -> Path:
    """The info file beside the metrics file ``path``: ``metrics/eval/x.json`` -> ``metrics/eval/x.info.json``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.info.json")


def merge(base: dict, extra: dict) -> dict:
    """``base`` with ``extra``'s keys added, nested dicts merged (the inverse of :func:`split_info`)."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def write_metrics(path: Path | str, metrics: dict) -> None:
    """A stage's metrics: its :data:`HEADLINE` numbers in ``path`` (a DVC metrics file, what a person compares
    across commits), the rest (diagnostics, names, signatures, hashes, flags) in :func:`info_file` beside it (a
    plain DVC out), timings in ``timings/``.

    Both files are reproducible byte for byte: two runs with the same params and seed write identical files
    (``dvc metrics diff`` shows no noise); how long they took differs, so those keys go to :data:`TIMINGS_DIR`.
    """
    kept, timings = split_timings(metrics)
    numbers, info = split_info(kept, headline(path))
    write_json(path, numbers)
    write_json(info_file(path), info)
    if timings:
        write_json(TIMINGS_DIR / Path(path).name, timings)


def read_metrics(path: Path | str) -> dict:
    """A stage's metrics as it wrote them: the metrics file merged with its info file (:func:`write_metrics`)."""
    info = info_file(path)
    return merge(read_json(path), read_json(info) if Path(info).exists() else {})


def read_text(path: Path | str) -> str:
    """The UTF-8 text of ``path``; a :class:`DataFileError` naming it if it is missing or not UTF-8."""
    path = Path(path)
    if not path.exists():
        raise DataFileError(f"file not found: {path}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{path} is not UTF-8: {exc}") from None


def read_lines(path: Path | str) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` for every non-blank line of a UTF-8 text file (see :func:`read_text`)."""
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        if line.strip():
            yield lineno, line


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
    """Read a headed TSV written by :func:`write_tsv`, checking its columns and that it is not empty.

    Every row must have as many fields as the header (a truncated or hand-edited file is named with the
    line), the text must be UTF-8 and the first column unique.
    """
    path = Path(path)
    text = read_text(path)
    lines = text.split("\n")
    if not lines[0].strip():
        raise DataFileError(f"{path} is empty: expected a header {list(columns)}")
    n_tabs = lines[0].count("\t")
    for lineno, line in enumerate(lines[1:], start=2):
        if line and line.count("\t") != n_tabs:
            raise DataFileError(
                f"{path}:{lineno}: {line.count(chr(9)) + 1} fields, the header has {n_tabs + 1} "
                "(truncated or malformed file?)"
            )
    df = pd.read_csv(
        io.StringIO(text), sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE, index_col=False
    )
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataFileError(f"{path}: missing column(s) {missing}; found {list(df.columns)}")
    if df.empty and not allow_empty:
        raise DataFileError(f"{path} has no rows")
    if df[columns[0]].duplicated().any():
        dup = df.loc[df[columns[0]].duplicated(), columns[0]].iloc[0]
        raise DataFileError(f"{path}: duplicate {columns[0]} {dup!r}")
    return df[list(columns)]


def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    """The sha256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def copy_working_tree(src: Path | str, dest: Path | str) -> None:
    """Copy the files git sees in ``src``'s working tree (tracked, and untracked but not ignored) into ``dest``.

    What a fresh clone plus the user's uncommitted edits would hold: a throw-away project for tests and
    benchmarks. Git-ignored outputs (``.venv``, ``data/``, ``models/``, …) are not copied.
    """
    src, dest = Path(src), Path(dest)
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=src, check=True, capture_output=True
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        if (src / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / rel, dest / rel)
