"""`innerpo eval RUN --checkpoint all`: every checkpoint of a run on its suite, and a table
of adapter accuracy per shift against the training step (the research code did this by
hand with one `val_N/eval_model_checkpoint` directory per step)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from innerpo.eval.config import EvalConfig
from innerpo.io import write_atomic
from innerpo.train.checkpoint import CHECKPOINTS, checkpoint_dirs, problem
from innerpo.train.evaluate import evaluate_run
from innerpo.train.run_dir import load_config


def evaluate_checkpoints(
    run_dir: str | Path, eval_cfg: EvalConfig | None = None, genies_dir: str | None = None
) -> dict[str, dict]:
    """{checkpoint name (and "final" when the run finished): summary}; writes the table to
    RUN/checkpoints/accuracy.md (accuracy-<suite>.md for another suite) and prints it."""
    run_dir = Path(run_dir)
    names = []
    for path in checkpoint_dirs(run_dir):
        why = problem(path)
        if why is None:
            names.append(path.name)
        else:
            warnings.warn(f"skipping checkpoint {path}: {why}", stacklevel=2)
    if not names:
        raise FileNotFoundError(f"{run_dir} has no complete checkpoint (train with --training.save_every=N)")
    summaries = {name: evaluate_run(run_dir, eval_cfg, genies_dir, checkpoint=name) for name in names}
    if (run_dir / "adapter" / "adapter_config.json").is_file():
        summaries["final"] = evaluate_run(run_dir, eval_cfg, genies_dir)
    table = accuracy_table(summaries)
    default = eval_cfg is None or eval_cfg.suite == load_config(run_dir).eval.suite  # evaluate_run's naming rule
    stem = "accuracy" if default else f"accuracy-{Path(eval_cfg.suite).stem}"
    write_atomic(run_dir / CHECKPOINTS / f"{stem}.md", table)
    write_atomic(run_dir / CHECKPOINTS / f"{stem}.json", json.dumps(summaries, indent=2))
    print(table)
    return summaries


def accuracy_table(summaries: dict[str, dict]) -> str:
    """Markdown: one row per checkpoint (then the base model), one column per shift."""
    first = next(iter(summaries.values()))
    shifts = list(first["shifts"])
    lines = [f"## Adapter accuracy per checkpoint: suite `{first['suite']}`", ""]
    lines += ["| checkpoint | " + " | ".join(shifts) + " |", "|---|" + "---|" * len(shifts)]
    for name, summary in summaries.items():
        lines.append(
            f"| {name} | " + " | ".join(f"{summary['shifts'][s]['adapter_accuracy']:.3f}" for s in shifts) + " |"
        )
    if all("base_accuracy" in first["shifts"][s] for s in shifts):
        lines.append("| base | " + " | ".join(f"{first['shifts'][s]['base_accuracy']:.3f}" for s in shifts) + " |")
    return "\n".join(lines) + "\n"
