"""`innerpo eval RUN_DIR`: reload a run's base model, adapter and tokenizer settings, evaluate."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from transformers import AutoTokenizer

from innerpo.config import EvalConfig
from innerpo.data.tokenize import PairTokenizer
from innerpo.eval.report import evaluate_suite, tables, write_results
from innerpo.models.load import load_adapter, load_base, model_settings
from innerpo.models.precision import prepare_model
from innerpo.train.run_dir import load_config, load_tokenization


def evaluate_run(run_dir: str | Path, eval_cfg: EvalConfig | None = None, genies_dir: str | None = None) -> dict:
    run_dir = Path(run_dir)
    cfg = load_config(run_dir)
    if not (run_dir / "adapter" / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{run_dir} has no trained adapter (adapter/adapter_config.json missing)")
    eval_cfg = eval_cfg or cfg.eval
    data_cfg = dataclasses.replace(cfg.data, genies_dir=genies_dir or cfg.data.genies_dir)
    base, _ = load_base(cfg.model)
    tok = AutoTokenizer.from_pretrained(run_dir / "tokenizer")
    settings = load_tokenization(run_dir)
    pair_tok = PairTokenizer(tok, settings["max_length"], settings["truncation"], settings["chat_template"])
    model = prepare_model(load_adapter(base, run_dir / "adapter"), cfg.training.precision)  # scored in the run's precision
    summary = evaluate_suite(model, tok, pair_tok, eval_cfg, data_cfg, model_settings(cfg.model))
    path = write_results(run_dir, summary, default_suite=eval_cfg.suite == cfg.eval.suite)
    print(tables(summary))
    print(f"summary written to {path}")
    return summary
