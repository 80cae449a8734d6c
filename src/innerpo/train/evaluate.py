"""`innerpo eval RUN_DIR`: reload a run's base model, adapter and tokenizer settings, evaluate.

Results go to RUN/eval-<name>/ (summary.json, results.md, pairs.parquet, samples.md),
never over the training-time files in RUN itself. The name is `--eval.name` when given,
else the suite's name followed by each result-changing setting that differs from the
run's own evaluation (`eval-synthetic`, `eval-genies-alpaca`, `eval-synthetic-max_pairs=50`).
The directory is written whole into a temporary sibling and swapped in, so a reader never
sees a mix of two evaluations; the same name (same settings) replaces the earlier copy.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from transformers import AutoTokenizer

from innerpo.data.tokenize import PairTokenizer
from innerpo.errors import ConfigError
from innerpo.eval.config import EvalConfig
from innerpo.eval.report import evaluate_suite, tables, write_results
from innerpo.eval.suites import AUTO, auto_suite
from innerpo.io import replace_dir
from innerpo.models.load import load_adapter, load_base, model_settings
from innerpo.models.precision import prepare_model
from innerpo.train.checkpoint import checkpoint_dir
from innerpo.train.run_dir import load_config, load_tokenization

# Settings that do not change any written number.
_NOT_IN_NAME = ("name", "batch_size", "max_tokens_per_batch")


def eval_dir_name(eval_cfg: EvalConfig, run_eval: EvalConfig) -> str:
    """`eval-<name>`: --eval.name, or the suite plus the settings that differ from the run's."""
    if eval_cfg.name:
        name = eval_cfg.name
    else:
        parts = [Path(eval_cfg.suite).stem]
        for f in dataclasses.fields(EvalConfig):
            if f.name in _NOT_IN_NAME or f.name == "suite":
                continue
            value = getattr(eval_cfg, f.name)
            if value != getattr(run_eval, f.name):
                parts.append(f"{f.name}={value}")
        name = "-".join(parts)
    if not re.fullmatch(r"[A-Za-z0-9_.=+-]+", name) or name in (".", ".."):
        raise ConfigError(f"--eval.name={name!r}: use letters, digits and _ . = + - only (it names a directory)")
    return f"eval-{name}"


def evaluate_run(
    run_dir: str | Path,
    eval_cfg: EvalConfig | None = None,
    genies_dir: str | None = None,
    checkpoint: str | None = None,
) -> dict:
    """Evaluate RUN/adapter, or with `checkpoint` RUN/checkpoints/<checkpoint>/adapter; results go
    into an `eval-<name>/` directory beside that adapter, never over the training-time files."""
    from innerpo.train.validate import check_eval_settings, validate_suite

    run_dir = Path(run_dir)
    cfg = load_config(run_dir)
    adapter_home = run_dir if checkpoint is None else checkpoint_dir(run_dir, checkpoint)
    if not (adapter_home / "adapter" / "adapter_config.json").is_file():
        raise ConfigError(f"{adapter_home} has no trained adapter (adapter/adapter_config.json missing)")
    eval_cfg = eval_cfg or cfg.eval
    if eval_cfg.suite == AUTO:  # named after the suite it stands for
        eval_cfg = dataclasses.replace(eval_cfg, suite=auto_suite(cfg.data.dataset))
    out_dir = adapter_home / eval_dir_name(eval_cfg, cfg.eval)
    data_cfg = dataclasses.replace(cfg.data, genies_dir=genies_dir or cfg.data.genies_dir)
    check_eval_settings(eval_cfg)
    tok = AutoTokenizer.from_pretrained(run_dir / "tokenizer")
    settings = load_tokenization(run_dir)
    pair_tok = PairTokenizer(tok, settings["max_length"], settings["truncation"], settings["chat_template"])
    validate_suite(eval_cfg, data_cfg, pair_tok)  # before the model loads and before anything is written
    base, _ = load_base(cfg.model)
    model = prepare_model(
        load_adapter(base, adapter_home / "adapter"), cfg.training.precision
    )  # scored in the run's precision
    summary, pair_frame = evaluate_suite(model, tok, pair_tok, eval_cfg, data_cfg, model_settings(cfg.model))
    replace_dir(out_dir, lambda tmp: write_results(tmp, summary, pair_frame))
    print(tables(summary))
    print(f"results written to {out_dir}")
    return summary
