"""Tables in the docs, generated from the files the pipeline and the benchmarks write: never typed by hand.

A Markdown file marks a generated block with a pair of comments::

    <!-- generated: mt -->
    ...whatever render("mt") returns...
    <!-- end generated -->

``python -m pipeline.experiments.docs`` rewrites every block of ``README.md`` and ``docs/*.md`` from the current
files; ``python -m pipeline.experiments.docs --check`` (run by the test suite) fails, naming the file and block, when
a block differs from what the files hold. Each block says which file it comes from.

The renderers live in :mod:`pipeline.experiments.render`, one module per kind of data (``mt``, ``ot``,
``synthesis``, ``engines``, ``times``, ``tests``, ``answer``, ``power``); :data:`RENDERERS` names each block's.
To change a table, change its renderer; to add one, add a function there and a line here.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.experiments.render import answer, augment_help, engines, mt, ot, power, synthesis, tests, times
from pipeline.io import write_text

DOC_FILES = (Path("README.md"), *sorted(Path("docs").glob("*.md")))
BLOCK = re.compile(r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S)


RENDERERS: dict[str, Callable[[], str]] = {
    "answer-status": answer.answer_status,
    "augment-help-status": augment_help.augment_help_status,
    "quick-profile": times.quick_profile,
    "default-run": tests.default_run,
    "tests-side-by-side": tests.tests_side_by_side,
    "test-collections": tests.test_collections,
    "test-cost": tests.test_cost,
    "power": power.power,
    "mt": mt.mt,
    "mt-decoding": mt.mt_decoding,
    "mt-engines": engines.mt_engines,
    "encoder-engines": engines.encoder_engines,
    "mt-tradeoff": mt.mt_tradeoff,
    "mt-side-by-side": lambda: mt.mt_side_by_side("mt_budget"),
    "mt-levels": lambda: mt.mt_side_by_side("mt_levels"),
    "ot-plan": ot.ot_plan,
    "ot-convergence": ot.ot_convergence,
    "synthesis": synthesis.synthesis,
    "synth-waste": synthesis.synth_waste,
    "cpu-precision": times.cpu_precision,
    "pipeline-times": times.pipeline_times,
    "pipeline-times-bf16": lambda: times.pipeline_times("pipeline_times_bf16"),
    "front-door-times": times.front_door_times,
    "dose-response": answer.dose_response,
    "grid-times": times.grid_times,
    "power-decisive": power.power_decisive,
    "design-answer": answer.design_answer,
    "optical": answer.optical,
    "comparison": lambda: answer.aug_report("comparison"),
    "answer-components": answer.answer_components,
    "root-seeds": lambda: answer.aug_report(
        "root_seeds", by=("lang", "root_seed", "split"), tested=("root_seed", "split")
    ),
}


def render_file(text: str, where: str) -> str:
    """``text`` with every generated block re-rendered."""

    def fill(match: re.Match) -> str:
        name = match["name"]
        if name not in RENDERERS:
            raise PipelineError(f"{where}: unknown generated block {name!r}; known: {sorted(RENDERERS)}")
        return match.group(1) + RENDERERS[name]().rstrip("\n") + "\n" + match.group(4)

    return BLOCK.sub(fill, text)


def stale_blocks(files=DOC_FILES) -> list[str]:
    """``file: block`` for every generated block whose text differs from what the files hold now."""
    stale = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        fresh = render_file(text, str(path))
        old = {m["name"]: m["body"] for m in BLOCK.finditer(text)}
        new = {m["name"]: m["body"] for m in BLOCK.finditer(fresh)}
        stale += [f"{path}: {name}" for name in old if old[name] != new[name]]
    return stale


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="fail if a generated block is out of date; write nothing")
    args = ap.parse_args(argv)
    try:
        if args.check:
            stale = stale_blocks()
            if stale:
                sys.exit("out of date (run `python -m pipeline.experiments.docs`): " + "; ".join(stale))
            return
        for path in DOC_FILES:
            text = path.read_text(encoding="utf-8")
            fresh = render_file(text, str(path))
            if fresh != text:
                write_text(path, fresh)
                print(f"updated {path}")
    except PipelineError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
