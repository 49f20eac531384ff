from pipeline.config import seeds


def test_derived_seeds_depend_on_name_not_order():
    a = seeds.derive(13, "prepare", "queries")
    seeds.derive(13, "something", "else")  # another consumer drawing first changes nothing
    assert seeds.derive(13, "prepare", "queries") == a
    assert seeds.derive(13, "prepare", "distractors") != a
    assert seeds.derive(14, "prepare", "queries") != a


def test_generators_are_reproducible():
    assert seeds.rng(1, "x").integers(0, 1 << 30, 5).tolist() == seeds.rng(1, "x").integers(0, 1 << 30, 5).tolist()
