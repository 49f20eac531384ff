from pipeline.config import seeds


def test_derived_seeds_depend_on_name_not_order():
    a = seeds.derive(13, "prepare", "queries")
    seeds.derive(13, "something", "else")  # another consumer drawing first changes nothing
    assert seeds.derive(13, "prepare", "queries") == a
    assert seeds.derive(13, "prepare", "distractors") != a
    assert seeds.derive(14, "prepare", "queries") != a


def test_generators_are_reproducible():
    assert seeds.rng(1, "x").integers(0, 1 << 30, 5).tolist() == seeds.rng(1, "x").integers(0, 1 << 30, 5).tolist()


def test_every_language_has_its_own_streams():
    """Two languages at one root seed share no draw (their query samples, pools and replicate streams differ);
    the stages that draw per language use lang_seed, only the language-independent ones the root seed."""
    from pathlib import Path

    from params_helper import params_with

    swh, tgl = params_with(lang="swh"), params_with(lang="tgl")
    assert swh.seed == tgl.seed and swh.lang_seed != tgl.lang_seed
    assert params_with(lang="swh", seed=14).lang_seed != swh.lang_seed
    stages = Path(__file__).resolve().parents[1] / "pipeline/stages"
    root_only = {p.stem for p in stages.glob("*.py") if "params.seed" in p.read_text("utf-8")}
    assert root_only == {"teacher", "llm", "prepare"}  # the English teacher and its data; the tiny test LLM's lines
