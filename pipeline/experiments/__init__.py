"""The tools that run and read the experiment grids, apart from the library the stages call (``pipeline``) and
the stages themselves (``pipeline.stages``): ``grid`` (``grid.yaml`` -> DVC experiments), ``results`` (finished
experiments -> ``results/*.json``), ``compare`` (the declared reports from ``results/``), ``stats`` (their
two-level bootstrap and Holm adjustment) and ``docs`` (the docs' generated tables). No stage imports them.
"""
