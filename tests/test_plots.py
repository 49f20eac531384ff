"""pipeline.plots: the static PNGs are written (atomically) from tables and DVCLive TSVs."""

import pandas as pd

from pipeline.plots import ap_bar_chart, training_curves

PNG = b"\x89PNG"


def test_ap_bar_chart(tmp_path):
    table = pd.DataFrame(
        [
            {"system": s, "split": sp, "AP": ap}
            for s, ap in (("zeroshot", 0.4), ("student", 0.8))
            for sp in ("in_domain", "shifted_genre")
        ]
    )
    out = tmp_path / "ap.png"
    ap_bar_chart(table, ["in_domain", "shifted_genre", "shifted_register"], "swh", out)
    assert out.read_bytes()[:4] == PNG
    assert [p.name for p in tmp_path.iterdir()] == ["ap.png"]  # no temp file left behind


def test_training_curves_from_dvclive_tsvs(tmp_path):
    live = tmp_path / "dvclive" / "distill" / "plots" / "metrics" / "train"
    live.mkdir(parents=True)
    pd.DataFrame({"step": [0, 1, 2], "ot": [1.0, 0.8, 0.7]}).to_csv(live / "ot.tsv", sep="\t", index=False)
    out = tmp_path / "curves.png"
    drawn = training_curves({"distill": tmp_path / "dvclive/distill", "mt": tmp_path / "dvclive/mt"}, out)
    assert drawn == ["distill/ot"] and out.read_bytes()[:4] == PNG
    assert training_curves({"mt": tmp_path / "missing"}, tmp_path / "none.png") == []
