"""Atomic writes, reproducible metrics files and one clear error per malformed TSV."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.io import DataFileError, atomic_path, read_metrics, read_tsv, split_timings, write_metrics, write_text

ROOT = Path(__file__).resolve().parents[1]


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "out.txt"
    write_text(path, "old\n")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_killed_writer_leaves_only_a_temporary_that_the_next_write_removes(tmp_path):
    """SIGKILL skips every clean-up: the half-written directory is a hidden sibling, never the output."""
    out = tmp_path / "model"
    code = (
        "import time, sys\nfrom pathlib import Path\nfrom pipeline.io import atomic_path\n"
        f"with atomic_path(Path({str(out)!r}), is_dir=True) as tmp:\n"
        "    (tmp / 'weights').write_text('half'); print('writing', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()}
    )
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists() and [p.name.startswith(".model.") for p in tmp_path.iterdir()] == [True]
    with atomic_path(out, is_dir=True) as tmp:
        (tmp / "weights").write_text("whole")
    assert [p.name for p in tmp_path.iterdir()] == ["model"] and (out / "weights").read_text() == "whole"


def test_timings_are_kept_out_of_metrics(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    metrics = {
        "bleu": 12.5,
        "train_seconds": 216.0,
        "translation": {"sentences": 4, "seconds": 1.2, "sentences_per_second": 3.3},
    }
    kept, timings = split_timings(metrics)
    assert kept == {"bleu": 12.5, "translation": {"sentences": 4}}
    assert timings == {"train_seconds": 216.0, "translation": {"seconds": 1.2, "sentences_per_second": 3.3}}
    write_metrics("metrics/mt.json", metrics)
    assert read_metrics("metrics/mt.json") == kept
    assert json.loads((tmp_path / "timings/mt.json").read_text()) == timings
    time.sleep(0.01)
    first = (tmp_path / "metrics/mt.json").read_bytes()
    write_metrics("metrics/mt.json", {**metrics, "train_seconds": 300.0})
    assert (tmp_path / "metrics/mt.json").read_bytes() == first


def test_metrics_files_hold_the_headline_numbers_and_info_files_the_rest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    written = {
        "dev_source": {"bleu": 22.8, "chrf": 44.2, "bleu_bp": 0.97, "bleu_signature": "nrefs:1|tok:13a"},
        "epochs": 3,
        "name": "fairseq-local",
        "available": True,
        "topk": None,
    }
    write_metrics("metrics/mt.json", written)
    assert json.loads((tmp_path / "metrics/mt.json").read_text()) == {
        "dev_source": {"bleu": 22.8, "chrf": 44.2},
        "epochs": 3,
    }
    assert json.loads((tmp_path / "metrics/mt.info.json").read_text()) == {
        "available": True,
        "dev_source": {"bleu_bp": 0.97, "bleu_signature": "nrefs:1|tok:13a"},
        "name": "fairseq-local",
        "topk": None,
    }
    assert read_metrics("metrics/mt.json") == written
    # A split's file: its pattern is per folder (metrics/eval/*, metrics/baselines/*).
    student = {"title": {"AP": 0.5, "signature": {"run": "ab12"}}, "desc": {"AP": 0.7, "nDCG@10": 0.8}}
    write_metrics("metrics/eval/in_domain.json", {"student": student, "lang": "swh"})
    assert json.loads((tmp_path / "metrics/eval/in_domain.json").read_text()) == {
        "student": {"title": {"AP": 0.5}, "desc": {"AP": 0.7, "nDCG@10": 0.8}}
    }


def test_every_declared_metrics_file_has_headline_patterns():
    """A metrics file dvc.yaml declares but HEADLINE does not list would be written empty."""
    import yaml

    from pipeline.io import headline

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    declared = [
        next(iter(m)) if isinstance(m, dict) else m for stage in stages.values() for m in stage.get("metrics", [])
    ]
    assert len(declared) == 23
    for path in declared:
        assert headline(path.replace("${item.split}", "in_domain")), path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"id\ttext\nv1\tone\nv2", r"bad.tsv:3: 1 fields, the header has 2"),  # truncated mid-row
        (b"id\ttext\nv1\tone\tsurplus\n", r"bad.tsv:2: 3 fields, the header has 2"),
        (b"ident\ttext\nv1\tone\n", r"missing column\(s\) \['id'\]"),
        (b"id\ttext\nv1\tcaf\xe9\n", "is not UTF-8"),
        (b"", "bad.tsv is empty"),
        (b"id\ttext\n", "has no rows"),
        (b"id\ttext\nv1\tone\nv1\ttwo\n", "duplicate id 'v1'"),
    ],
)
def test_malformed_tsv_is_one_clear_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.tsv"
    path.write_bytes(content)
    with pytest.raises(DataFileError, match=message):
        read_tsv(path, ("id", "text"))
