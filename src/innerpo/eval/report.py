"""Evaluate a model on a suite and write the tables and summary.json."""

from __future__ import annotations

import json
from pathlib import Path

from innerpo.config import DataConfig, EvalConfig
from innerpo.data.sources import load_pairs
from innerpo.data.tokenize import PairTokenizer
from innerpo.eval.accuracy import Scores, score_pairs
from innerpo.eval.suites import get_suite
from innerpo.io import write_atomic


def evaluate_suite(model, tok, pair_tok: PairTokenizer, cfg: EvalConfig, data: DataConfig, model_settings: dict) -> dict:
    """Per shift: base and adapter Scores. Returns the summary dict (JSON-ready).

    model_settings: the base model's name and dtype, part of the base scores' cache key.
    """
    suite = get_suite(cfg.suite)
    shifts = {}
    for name, shift in suite.shifts.items():
        pairs = load_pairs(shift.dataset, shift.split, data.genies_dir)
        if cfg.max_pairs is not None:
            pairs = pairs[: cfg.max_pairs]
        items, report = pair_tok.tokenize_all(pairs, f"{name} ({shift.dataset})")
        base_key = {**pair_tok.settings(), **model_settings}
        scores = score_pairs(model, items, tok.pad_token_id, cfg.batch_size, desc=f"eval {name}", base_settings=base_key, max_tokens=cfg.max_tokens_per_batch)
        shifts[name] = {
            "dataset": shift.dataset,
            "split": shift.split,
            "n_pairs": scores["adapter"].n_pairs,
            "dropped_too_long": report.dropped_too_long,
            **{f"{v}_{k}": getattr(s, k) for v, s in scores.items() for k in ("accuracy", "accuracy_sum", "nll")},
        }
        if "base" in scores:
            delta = scores["adapter"].nll - scores["base"].nll
            shifts[name]["coherence_delta_nll"] = delta
            shifts[name]["coherence_flag"] = delta > cfg.coherence_threshold
    return {"suite": suite.name, "coherence_threshold": cfg.coherence_threshold, "shifts": shifts}


def tables(summary: dict) -> str:
    """Markdown: accuracy per shift, change versus base in points, coherence."""
    shifts = summary["shifts"]
    has_base = all("base_accuracy" in s for s in shifts.values())
    lines = [f"## Preference accuracy: suite `{summary['suite']}`", ""]
    lines.append("Accuracy = share of pairs whose chosen completion has the higher mean per-token log-prob (summed variant in brackets).")
    lines.append("")
    head = "| shift | n | adapter |" + (" base | change (pp) |" if has_base else "")
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for name, s in shifts.items():
        row = f"| {name} | {s['n_pairs']} | {s['adapter_accuracy']:.3f} ({s['adapter_accuracy_sum']:.3f}) |"
        if has_base:
            change = 100 * (s["adapter_accuracy"] - s["base_accuracy"])
            row += f" {s['base_accuracy']:.3f} ({s['base_accuracy_sum']:.3f}) | {change:+.1f} |"
        lines.append(row)
    if has_base:
        thr = summary["coherence_threshold"]
        lines += ["", f"## Coherence: chosen-completion NLL per token (flag when adapter − base > {thr})", ""]
        lines += ["| shift | base nll | adapter nll | delta | flag |", "|---|---|---|---|---|"]
        for name, s in shifts.items():
            flag = "INCOHERENT" if s["coherence_flag"] else "ok"
            lines.append(f"| {name} | {s['base_nll']:.3f} | {s['adapter_nll']:.3f} | {s['coherence_delta_nll']:+.3f} | {flag} |")
    return "\n".join(lines) + "\n"


def write_results(run_dir: Path, summary: dict, default_suite: bool) -> Path:
    """summary.json / results.md for the run's own suite; *-<suite>.* for others."""
    suffix = "" if default_suite else "-" + Path(summary["suite"]).stem
    write_atomic(run_dir / f"summary{suffix}.json", json.dumps(summary, indent=2))
    write_atomic(run_dir / f"results{suffix}.md", tables(summary))
    return run_dir / f"summary{suffix}.json"
