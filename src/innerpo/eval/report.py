"""Evaluate a model on a suite and write the tables, summary.json and per-pair results."""

from __future__ import annotations

import json
from pathlib import Path

from innerpo.config import DataConfig, EvalConfig
from innerpo.data.sources import load_pairs
from innerpo.data.tokenize import PairTokenizer
import pandas as pd

from innerpo.eval.accuracy import Scores, pair_rows
from innerpo.eval.pair_results import shift_frame, write_pair_results
from innerpo.eval.suites import get_suite
from innerpo.io import write_atomic


def evaluate_suite(model, tok, pair_tok: PairTokenizer, cfg: EvalConfig, data: DataConfig, model_settings: dict) -> tuple[dict, pd.DataFrame]:
    """Per shift: base and adapter Scores. Returns (summary dict, JSON-ready; per-pair frame,
    see innerpo.eval.pair_results).

    model_settings: the base model's name and dtype, part of the base scores' cache key.
    """
    suite = get_suite(cfg.suite)
    shifts, frames = {}, []
    for name, shift in suite.shifts.items():
        pairs = load_pairs(shift.dataset, shift.split, data.genies_dir)
        if cfg.max_pairs is not None:
            pairs = pairs[: cfg.max_pairs]
        kept, report = pair_tok.tokenize_indexed(pairs, f"{name} ({shift.dataset})")
        items = [item for _, item in kept]
        base_key = {**pair_tok.settings(), **model_settings}
        rows = pair_rows(model, items, tok.pad_token_id, cfg.batch_size, desc=f"eval {name}", base_settings=base_key)
        frames.append(shift_frame(suite.name, name, shift.dataset, shift.split, kept, pairs, rows))
        scores = {variant: Scores.from_rows(r) for variant, r in rows.items()}
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
    summary = {"suite": suite.name, "coherence_threshold": cfg.coherence_threshold, "shifts": shifts}
    return summary, pd.concat(frames, ignore_index=True)


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


def write_results(out_dir: Path, summary: dict, frame: pd.DataFrame) -> Path:
    """summary.json, results.md and pairs.parquet in `out_dir` (created), each written atomically.

    The training-time evaluation writes into the run directory itself; `innerpo eval`
    writes into a subdirectory of it (innerpo.eval.run), so it never overwrites these.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_pair_results(out_dir, frame)
    write_atomic(out_dir / "results.md", tables(summary))
    write_atomic(out_dir / "summary.json", json.dumps(summary, indent=2))
    return out_dir / "summary.json"
