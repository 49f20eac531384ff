"""Time setup.sh's fairseq install: the full build (every compiled extension) against ``setup_fairseq.sh``.

In a throwaway venv (torch and fairseq's build and runtime deps pinned from requirements.txt, untimed), each way
is timed from a clean slate (fairseq uninstalled, its compiled files removed, pip's cache off so no built wheel is
reused); after each, ``import fairseq.data.data_utils_fast`` must work and the compiled files are listed.

    python -m benchmarks.setup_build [--repeats 1] [--note "..."]   # writes benchmarks/results/setup_times.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "setup_times.json"
#: requirements.txt names installed in the throwaway venv: fairseq's build deps (torch comes first, as in setup.sh)
#: and what ``import fairseq`` needs.
DEPS = ("numpy", "setuptools", "cython", "hydra-core", "omegaconf", "bitarray", "regex", "cffi", "packaging")
DEPS += ("sacrebleu", "tqdm", "scikit-learn", "scipy", "pyyaml")
WAYS = {
    "full_build": "pip install --no-build-isolation --no-deps fairseq-fixed==0.12.3.1",  # setup.sh before
    "setup_fairseq.sh": "bash setup_fairseq.sh",  # setup.sh now
}


def cpu_model() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    match = re.search(r"^Model name:\s*(.+)$", out, re.M)
    return match.group(1).strip() if match else platform.processor()


def pinned(names: tuple[str, ...]) -> list[str]:
    """The requirements.txt lines (``name==version``) of ``names``."""
    pins = {}
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        spec = line.split("#")[0].strip()
        if spec:
            pins[re.split(r"[=<>!~]", spec)[0].lower()] = spec
    return [pins[n.lower()] for n in names]


def run(cmd: str, env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(["bash", "-c", cmd], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def compiled(site: Path) -> list[str]:
    return sorted(str(p.relative_to(site)) for p in site.rglob("*.so") if "fairseq" in str(p) or "alignment" in p.name)


def clean(env: dict, site: Path) -> None:
    subprocess.run(["bash", "-c", "python -m pip uninstall -q -y fairseq-fixed"], env=env, check=False)
    for path in (site / "fairseq", site / "fairseq_cli"):
        shutil.rmtree(path, ignore_errors=True)
    for so in site.glob("alignment_train_cpu_binding*.so"):
        so.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--note", default="", help="what else ran on the machine meanwhile")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fsvenv-") as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        env = {**os.environ, "VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
        env.pop("PYTHONHOME", None)
        pip = "python -m pip --disable-pip-version-check -q install"
        run(f"{pip} torch==2.13.0 && {pip} " + " ".join(f"'{p}'" for p in pinned(DEPS)), env)
        site = Path(
            subprocess.run(
                ["bash", "-c", "python -c 'import sysconfig; print(sysconfig.get_paths()[\"platlib\"])'"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        timed = {**env, "PIP_NO_CACHE_DIR": "1"}
        rows = []
        for repeat in range(args.repeats):
            for way, cmd in WAYS.items():
                clean(env, site)
                seconds = run(cmd, timed)
                run("python -c 'import fairseq.data.data_utils_fast'", env)
                rows.append({"way": way, "repeat": repeat, "seconds": round(seconds, 1), "compiled": compiled(site)})
                print(f"{way} (repeat {repeat}): {seconds:.1f} s, {len(rows[-1]['compiled'])} compiled files")
    result = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "note": args.note,
        "commands": WAYS,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
