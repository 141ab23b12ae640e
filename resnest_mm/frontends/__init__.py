"""What the scripts in ``tools/`` do, in the package so tests reach it.

``tools/*.py`` are thin wrappers over these modules: argument parsing, the config loader and its
preflight checks, the train/test/benchmark/infer/export/analysis commands. This package sits above
:mod:`resnest_mm.apis` and :mod:`resnest_mm.engine` and nothing below imports it (the layering is
checked by ``make lint``; see ``docs/architecture.md``).
"""
