"""STaR cells of a sweep (`command: star`): how one is planned, run, checked and found finished.

A STaR cell's directory is an ordinary `innerpo star` run directory. Before it runs, it
holds the cell's planned settings (`star_cell.json`, what a worker process loads) and
its log. It is finished when its summary has every iteration (innerpo.star.report.
is_complete); a STaR run has no checkpoints, so an unfinished attempt runs again from
scratch. Refusals are `innerpo star`'s own (innerpo.star.validate.check_star: settings,
the training method as `innerpo train` validates it, every question file), found
without generating or writing anything.
"""

from __future__ import annotations

import json
from pathlib import Path

from innerpo.config import flatten, merge, to_dict
from innerpo.errors import InputError
from innerpo.io import write_atomic
from innerpo.star.config import StarRunConfig

PLAN = "star_cell.json"
RUN_CONFIG = "star_config.json"
"""Written by innerpo.star.loop.run_star into the run directory."""


def is_star(config) -> bool:
    return isinstance(config, StarRunConfig)


def save_plan(cell_dir: Path, cfg: StarRunConfig) -> None:
    write_atomic(Path(cell_dir) / PLAN, json.dumps(to_dict(cfg), indent=2))


def load_plan(cell_dir: Path) -> StarRunConfig | None:
    """The planned settings of a STaR cell's directory, None when it is not one."""
    path = Path(cell_dir) / PLAN
    if not path.is_file():
        return None
    return merge(StarRunConfig(), json.loads(path.read_text()), str(path))


def run(cfg: StarRunConfig) -> None:
    from innerpo.star.loop import run_star

    run_star(cfg)


def refusal(cfg: StarRunConfig) -> str | None:
    """Why `innerpo star` would refuse `cfg` before generating anything, or None."""
    from innerpo.star.validate import check_star

    try:
        check_star(cfg)
    except InputError as e:
        return str(e)
    return None


def saved_settings(cell_dir: Path) -> dict:
    """The flattened settings a finished STaR cell ran with (its star_config.json)."""
    return flatten(json.loads((Path(cell_dir) / RUN_CONFIG).read_text()))
