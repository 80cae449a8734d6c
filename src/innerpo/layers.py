"""The package's layers: which parts of innerpo may import which (checked by tests/test_layers.py).

Each top-level module or subpackage of ``innerpo`` has a rank. A module may import from
its own package and from packages of lower rank, never from a higher one: the scoring
code does not know about training runs, the data code does not know about evaluation
suites, and so on. Packages that share a rank may import one another only one way (no
cycle between them; ``innerpo.config`` reads ``innerpo.errors``). Within and across
packages, modules form no import cycle (imports inside functions count), and no module
imports another module's private (``_``-prefixed) names. A new package gets a row here.
The package's own ``__init__`` runs before any of its modules, so it counts as rank 0.
"""

from __future__ import annotations

LAYERS: tuple[tuple[str, ...], ...] = (
    # 0: foundations (errors, file and path helpers, the generic dataclass/YAML overlay, how
    # components declare options, the old-flag translation)
    (
        "innerpo.errors",
        "innerpo.paths",
        "innerpo.io",
        "innerpo.config",
        "innerpo.layers",
        "innerpo.params",
        "innerpo.flags",
    ),
    ("innerpo.data",),  # 1: pairs, sources, tokenizing and batching
    ("innerpo.losses",),  # 2: output-level preference losses
    ("innerpo.inner",),  # 3: hidden-state losses and transforms
    ("innerpo.models",),  # 4: loading, forward passes, precision, reference cache
    ("innerpo.methods",),  # 5: a method = losses + what the loop collects for them
    ("innerpo.eval",),  # 6: scoring a model on an evaluation suite
    ("innerpo.train",),  # 7: the training loop, run directories, evaluating a saved run
    ("innerpo.star",),  # 8: STaR (generate, filter, train)
    ("innerpo.experiments",),  # 9: sweeps over training runs
    ("innerpo.report", "innerpo.tune"),  # 10: reports and hyperparameter search over runs
    ("innerpo.cli",),  # 11: the command line (an `innerpo.__main__` would join it)
)
"""Rows of package names, lowest rank first; a package's rank is its row's index."""
