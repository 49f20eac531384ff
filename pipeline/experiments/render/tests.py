"""The test collections in the docs: the default run on every split and query form, and the two tests side by side.

``default_run`` reads the committed default run (``metrics/``); ``tests_side_by_side`` reads the ``tests`` grid's
two records (``results/tests-topical.json``, ``results/tests-known_item.json``: the default's params on each test).
"""

from __future__ import annotations

from pipeline.config import paths
from pipeline.config.conditions import COLLECTIONS
from pipeline.experiments import results
from pipeline.experiments.render import BENCHMARK_RESULTS, source
from pipeline.io import merge, read_json, read_metrics
from pipeline.retrieval.evaluation import split_metrics
from pipeline.retrieval.search import SYSTEMS

#: The grid whose cells are the default run on each test (grid.yaml), and the order the docs give the tests in.
TESTS_GRID = "tests"
TESTS = COLLECTIONS[::-1]  # the earlier test (known_item) first
#: What each test is, in a few words (docs/data.md, "The tests", says it in full).
TEST_WORDS = {
    "known_item": "a query's one relevant document is its own verse, among its test books' verses",
    "topical": "graded judgments (its own verse, the verses cross-referenced with it) among its test books' verses "
    "plus books 45–66",
}


def test_sentence(collection: str, form: str) -> str:
    """``the `known_item` test with `desc` queries (what that test is)``."""
    return f"the `{collection}` test with `{form}` queries ({TEST_WORDS[collection]})"


def _split_label(split: str, counts: dict) -> str:
    return (
        f"{split} ({counts['queries']} q, {counts['docs']:,} docs, "
        f"{counts.get('relevant_per_query_mean', 1):.2f} rel/q)"
    )


def _cell(scores: dict | None) -> str:
    return f"{scores['AP']:.4f} / {scores['nDCG@10']:.4f}" if scores else "–"


def default_run() -> str:
    """AP / nDCG@10 of every system on every split, a table per query form (title first), of the committed default
    run (``metrics/baselines``, ``metrics/eval``, ``metrics/prepare``)."""
    prepared = read_metrics(paths.metrics_file("prepare"))
    evals = {s: split_metrics(s) for s in paths.SPLITS}
    available = [s for s in paths.SPLITS if evals[s].get("available")]
    lines = []
    for form in paths.QUERY_FORMS:
        splits = [s for s in available if form in evals[s].get("query_forms", [])]
        systems = [k for k in SYSTEMS if any(form in evals[s].get(k, {}) for s in splits)]
        lines += [
            f"**{form} queries**",
            "",
            "| system | " + " | ".join(_split_label(s, prepared["splits"][s]) for s in splits) + " |",
            "|---" * (len(splits) + 1) + "|",
            *(f"| {k} | " + " | ".join(_cell(evals[s].get(k, {}).get(form)) for s in splits) + " |" for k in systems),
            "",
        ]
        lines += [_ranking(evals, splits, form, systems), ""]
    lang, test = evals[available[0]]["lang"], evals[available[0]]["collection"]
    aug = read_metrics(paths.metrics_file("bitext")).get("aug")
    precision = read_metrics(paths.metrics_file("distill")).get("precision")
    lines.append(
        f"AP / nDCG@10; `lang: {lang}`, `aug: {aug}`, `prepare.collection: {test}`, trained in {precision}; rel/q: "
        "relevant documents per query. "
        + source("metrics/baselines/*.json", "metrics/eval/*.json", "metrics/prepare.json", "metrics/distill.json")
    )
    return "\n".join(lines)


def _ranking(evals: dict, splits: list[str], form: str, systems: list[str]) -> str:
    """One sentence: the best system by AP on each split, and where the student ranks among the systems."""
    parts = []
    for split in splits:
        ap = {k: evals[split][k][form]["AP"] for k in systems if form in evals[split].get(k, {})}
        ranked = sorted(ap, key=lambda k: -ap[k])
        where = f", student {ranked.index('student') + 1} of {len(ranked)}" if "student" in ranked else ""
        parts.append(f"{split} `{ranked[0]}`{where}")
    return f"Highest AP with {form} queries: " + "; ".join(parts) + "."


def _record(test: str) -> results.Experiment:
    path = results.RESULTS_DIR / f"{TESTS_GRID}-{test}.json"
    return results.from_record(read_json(path), str(path))


def _scores(exp: results.Experiment, split: str) -> dict:
    """Every system's measures on ``split`` in a record: ``{system: {form: measures}}`` (empty if unavailable)."""
    merged = merge(exp.metrics.get(f"metrics/baselines/{split}.json", {}), exp.eval(split))
    return merged if merged.get("available") else {}


def tests_side_by_side() -> str:
    """The default's params on the known-item and on the topical test (grid ``tests``): how many queries, documents
    and relevant documents per query each split has, then every system's AP / nDCG@10 per split and query form."""
    exps = {test: _record(test) for test in TESTS}
    counts = {test: e.metrics["metrics/prepare.json"]["splits"] for test, e in exps.items()}
    lines = [
        "| split | " + " | ".join(f"{t}: queries / docs / rel/q" for t in TESTS) + " |",
        "|---" * (len(TESTS) + 1) + "|",
    ]
    for split in paths.SPLITS:
        cells = [
            f"{c[split]['queries']} / {c[split]['docs']:,} / {c[split].get('relevant_per_query_mean', 1):.2f}"
            if split in c
            else "–"
            for c in counts.values()
        ]
        lines.append(f"| {split} | " + " | ".join(cells) + " |")
    columns = [(t, f) for t in TESTS for f in paths.QUERY_FORMS]
    lines += [
        "",
        "| split | system | " + " | ".join(f"{t}, {f}" for t, f in columns) + " |",
        "|---" * (len(columns) + 2) + "|",
    ]
    for split in paths.SPLITS:
        scores = {t: _scores(e, split) for t, e in exps.items()}
        for system in SYSTEMS:
            cells = [_cell(scores[t].get(system, {}).get(f)) for t, f in columns]
            if any(c != "–" for c in cells):
                lines.append(f"| {split} | {system} | " + " | ".join(cells) + " |")
    params = exps[TESTS[0]].params
    lines += [
        "",
        f"AP / nDCG@10; `lang: {params['lang']}`, `aug: {params['aug']}`, `synth.dtype: {params['synth.dtype']}`, "
        f"`train.precision: {params['train.precision']}`; rel/q: relevant documents per query; –: no such split "
        "or query form. " + source(*(results.RESULTS_DIR / f"{TESTS_GRID}-{t}.json" for t in TESTS)),
    ]
    return "\n".join(lines)


def test_collections() -> str:
    """What the committed default run's test holds per split (``metrics/prepare.json``): queries, documents (and of
    them the distractor verses, and the ones the language's Bible lacks), relevant documents per query, queries with
    a rel-1 document; for ``topics``, how many articles survive."""
    m = read_metrics(paths.metrics_file("prepare"))
    lines = [
        "| split | queries | documents | distractor verses (missing) | relevant per query | queries with a rel-1 "
        "document |",
        "|---|---|---|---|---|---|",
    ]
    for split in paths.SPLITS:
        s = m["splits"].get(split)
        if s is None:
            continue
        verses = s.get("verse_distractors", s.get("distractors", 0) if split != "shifted_register" else 0)
        missing = f" ({s['distractors_missing']})" if "distractors_missing" in s else ""
        lines.append(
            f"| {split} | {s['queries']} | {s['docs']:,} | {verses:,}{missing} | {s['relevant_per_query_mean']:.2f} "
            f"| {s['queries_with_rel1']} |"
        )
    note = f"`lang: {m['lang']}`, `prepare.collection: {m['collection']}`."
    topics = m["splits"].get("topics")
    if topics:
        note += (
            f" Topics: {topics['articles']} articles, {topics['topics_not_a_topic']} of them no topic, "
            f"{topics['topics_too_few_relevant']} with fewer than two relevant verses in the collection, "
            f"{topics['queries']} kept."
        )
    return "\n".join([*lines, "", note + " " + source("metrics/prepare.json")])


COST_FILE = BENCHMARK_RESULTS / "test_cost.json"
GRID_TIMES = BENCHMARK_RESULTS / "grid_times.json"
#: The stages of a grid cell besides ``evaluate``: the same work on either test.
CELL_REST = ("bitext", "distill", "report")
#: The most the topical test may add to a grid cell over the known-item test on the earlier code.
CELL_GROWTH_LIMIT = 0.20


def _cell_rest() -> dict[str, float]:
    """``bitext``, ``distill`` and ``report`` seconds of the ``tests`` grid's topical cell (grid_times.json)."""
    rows = [r for r in read_json(GRID_TIMES)["tasks"] if r["name"] == f"{TESTS_GRID}-topical"]
    return {stage: rows[-1]["stages"][stage] for stage in CELL_REST}


def test_cost() -> str:
    """``benchmarks/test_cost.py``: the evaluation stages' wall time per test and code, and what each adds to a grid
    cell (``bitext → distill → evaluate → report``) against the known-item test on the earlier code."""
    d = read_json(COST_FILE)
    variants = d["variants"]
    rest = _cell_rest()
    cell = {n: sum(rest.values()) + v["median_seconds"]["evaluate"] for n, v in variants.items()}
    names = list(variants)
    label = {"before": f"known_item, code of {d['old_rev']}", "known_item": "known_item", "topical": "topical"}
    rows = [
        ("queries (all splits)", lambda n: f"{sum(variants[n]['queries'].values()):,}"),
        (
            "documents (all splits) / distinct",
            lambda n: f"{sum(variants[n]['docs'].values()):,} / {variants[n]['distinct_docs']:,}",
        ),
        *(
            (f"{stage} s", lambda n, s=stage: f"{variants[n]['median_seconds'][s]:.1f}")
            for stage in ("translate_docs", "evaluate_baselines", "evaluate")
        ),
        ("grid cell s (bitext, distill, evaluate, report)", lambda n: f"{cell[n]:.1f}"),
        ("grid cell against the known-item test before", lambda n: f"{cell[n] / cell['before'] - 1:+.1%}"),
    ]
    lines = ["| | " + " | ".join(label[n] for n in names) + " |", "|---" * (len(names) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(fmt(n) for n in names) + " |" for name, fmt in rows]
    growth = cell["topical"] / cell["before"] - 1
    verdict = "within" if growth <= CELL_GROWTH_LIMIT else "**over**"
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in rest.items())
    lines += [
        "",
        f"Medians of {d['repeats']} run{'s' if d['repeats'] != 1 else ''} per stage process (imports included), the "
        f"variants in turn; {d['machine']}. "
        f"The rest of a cell ({stages}: each stage's own time) as the `{TESTS_GRID}` grid's topical cell recorded "
        f"it on the same machine in float32. The topical test adds {growth:+.1%} to a grid cell, {verdict} the "
        f"{CELL_GROWTH_LIMIT:.0%} allowed. " + source(COST_FILE, GRID_TIMES),
    ]
    return "\n".join(lines)


def cost_since(pipeline_times: dict) -> str:
    """A sentence for the README's time line: what the topical test adds to the evaluation stages and to an ``aug``
    switch, by ``benchmarks/test_cost.py``, where the pipeline was measured before it (its stage names say so)."""
    if "evaluate" in {s["stage"] for s in pipeline_times["stages"]}:
        return ""  # measured with the topical test's stages
    v = read_json(COST_FILE)["variants"]
    delta = {s: v["topical"]["median_seconds"][s] - v["before"]["median_seconds"][s] for s in v["topical"]["seconds"]}
    return (
        f"Those were measured before the topical test, which adds {sum(delta.values()):.0f} s to the evaluation "
        f"stages ({delta['evaluate']:+.0f} s to a switch) on the machine of `{COST_FILE}` "
        "([docs/performance.md](docs/performance.md#what-the-test-costs-benchmarkstest_costpy))."
    )
