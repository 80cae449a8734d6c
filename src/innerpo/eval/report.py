"""Evaluate a model on a suite and write the tables, summary.json and per-pair results.

Every number says how many pairs it rests on. Per shift the summary holds the counts
(`n_source` pairs in the source, `n_kept` scorable under the length rule of which
`n_prompt_cut` had their prompt cut, `n_dropped_too_long`, and `n_pairs` scored: the
first `--eval.max_pairs` scorable ones), `few_pairs` when fewer than `--eval.min_pairs`
are scorable, and 95% intervals (innerpo.eval.stats) for each accuracy and for the
paired change adapter − base, computed from the per-pair correct flags. Beside each
accuracy: the mean probability given to the chosen completion, the Brier score and the
RMS calibration error (standard, and GENIES' variant), from the per-pair probabilities
(innerpo.eval.calibration); a figure that cannot be computed is null.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from innerpo.data.config import DataConfig
from innerpo.data.sources import load_pairs
from innerpo.data.tokenize import PairTokenizer
from innerpo.eval.accuracy import Scores, pair_rows
from innerpo.eval.calibration import calibration
from innerpo.eval.config import EvalConfig
from innerpo.eval.pair_results import shift_frame, write_pair_results
from innerpo.eval.stats import LEVEL, paired_difference_interval, wilson_interval
from innerpo.eval.suites import get_suite
from innerpo.io import write_atomic


def evaluate_suite(
    model, tok, pair_tok: PairTokenizer, cfg: EvalConfig, data: DataConfig, model_settings: dict
) -> tuple[dict, pd.DataFrame]:
    """Per shift: base and adapter Scores, counts and intervals. Returns (summary dict,
    JSON-ready; per-pair frame, see innerpo.eval.pair_results).

    model_settings: the base model's name and dtype, part of the base scores' cache key.
    With `cfg.samples_per_shift` > 0 the summary also holds `samples` (innerpo.eval.samples).
    """
    suite = get_suite(cfg.suite, data.dataset)
    shifts, frames, probes = {}, [], {}
    for name, shift in suite.shifts.items():
        pairs = load_pairs(shift.dataset, shift.split, data.genies_dir)
        scorable, report = pair_tok.tokenize_indexed(pairs, f"shift {name!r} ({shift.dataset}, {shift.split})")
        kept = scorable[: cfg.max_pairs] if cfg.max_pairs is not None else scorable
        items = [item for _, item in kept]
        base_key = {**pair_tok.settings(), **model_settings}
        rows = pair_rows(
            model,
            items,
            tok.pad_token_id,
            cfg.batch_size,
            desc=f"eval {name}",
            base_settings=base_key,
            max_tokens=cfg.max_tokens_per_batch,
        )
        frame = shift_frame(suite.name, name, shift.dataset, shift.split, kept, pairs, rows)
        frames.append(frame)
        scores = {variant: Scores.from_rows(r) for variant, r in rows.items()}
        shifts[name] = {
            "dataset": shift.dataset,
            "split": shift.split,
            "n_pairs": scores["adapter"].n_pairs,
            "n_source": len(pairs),
            "n_kept": report.kept,
            "n_prompt_cut": report.prompt_truncated,
            "n_dropped_too_long": report.dropped_too_long,
            "dropped_too_long": report.dropped_too_long,
            "few_pairs": report.kept < cfg.min_pairs,
            **{f"{v}_{k}": getattr(s, k) for v, s in scores.items() for k in ("accuracy", "accuracy_sum", "nll")},
            **_intervals(frame, list(scores)),
            **_calibration(frame, list(scores)),
        }
        if "base" in scores:
            delta = scores["adapter"].nll - scores["base"].nll
            shifts[name]["coherence_delta_nll"] = delta
            shifts[name]["coherence_flag"] = delta > cfg.coherence_threshold
        probes[name] = [(pairs[i].prompt_text(), item) for i, item in kept[: cfg.samples_per_shift]]
    summary = {
        "suite": suite.name,
        "coherence_threshold": cfg.coherence_threshold,
        "min_pairs": cfg.min_pairs,
        "max_pairs": cfg.max_pairs,
        "ci": f"{LEVEL:.0%}: Wilson score for an accuracy; "
        "Agresti–Min adjusted Wald on the paired flags for the change vs base",
        "shifts": shifts,
    }
    if cfg.samples_per_shift > 0:
        from innerpo.eval.samples import add_samples

        add_samples(summary, model, tok, probes, cfg)
    return summary, pd.concat(frames, ignore_index=True)


def _intervals(frame: pd.DataFrame, variants: list[str]) -> dict:
    """Wilson intervals for each variant's accuracy and the paired interval for the change."""
    out = {}
    for v in variants:
        flags = frame[f"{v}_correct"].astype(bool)
        out[f"{v}_accuracy_ci"] = list(wilson_interval(int(flags.sum()), len(flags)))
    if "base" in variants:
        d, lo, hi = paired_difference_interval(
            frame["adapter_correct"].astype(bool).tolist(), frame["base_correct"].astype(bool).tolist()
        )
        out["change"], out["change_ci"] = d, [lo, hi]
    return out


def _calibration(frame: pd.DataFrame, variants: list[str]) -> dict:
    """Per variant: p_chosen (mean), brier, rms_calibration_error(_genies); NaN written as null."""
    out = {}
    for v in variants:
        for key, value in calibration(frame[f"{v}_p_chosen"].to_numpy()).items():
            out[f"{v}_{key}"] = None if math.isnan(value) else value
    return out


def _num(value, fmt: str = ".3f") -> str:
    return "–" if value is None else f"{value:{fmt}}"


def _ci(pair: list[float], scale: float = 1.0, fmt: str = ".2f") -> str:
    return f"[{scale * pair[0]:{fmt}}, {scale * pair[1]:{fmt}}]"


def tables(summary: dict) -> str:
    """Markdown: counts, accuracy per shift with n and 95% intervals, change versus base in points, coherence."""
    shifts = summary["shifts"]
    has_base = all("base_accuracy" in s for s in shifts.values())
    min_pairs = summary.get("min_pairs", 0)
    lines = [f"## Preference accuracy: suite `{summary['suite']}`", ""]
    lines.append(
        "Accuracy = share of pairs whose chosen completion has the higher mean per-token log-prob (summed "
        "variant in brackets); "
        "n = pairs scored; 95% CI: Wilson for an accuracy, paired (Agresti–Min) for the change."
    )
    lines.append("")
    head = "| shift | n | adapter | 95% CI |" + (" base | 95% CI | change (pp) | 95% CI (pp) |" if has_base else "")
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for name, s in shifts.items():
        mark = " (few)" if s.get("few_pairs") else ""
        row = (
            f"| {name}{mark} | {s['n_pairs']} | {s['adapter_accuracy']:.3f} "
            f"({s['adapter_accuracy_sum']:.3f}) | {_ci(s['adapter_accuracy_ci'])} |"
        )
        if has_base:
            change = 100 * (s["adapter_accuracy"] - s["base_accuracy"])
            row += (
                f" {s['base_accuracy']:.3f} ({s['base_accuracy_sum']:.3f}) | {_ci(s['base_accuracy_ci'])} "
                f"| {change:+.1f} | {_ci(s['change_ci'], 100, '+.1f')} |"
            )
        lines.append(row)
    if any(s.get("few_pairs") for s in shifts.values()):
        lines += [
            "",
            f"(few): fewer than --eval.min_pairs={min_pairs} scorable pairs in the source; read that "
            "accuracy with care.",
        ]
    variants = ["base", "adapter"] if has_base else ["adapter"]
    if all("adapter_brier" in s for s in shifts.values()):  # summaries written before calibration lack it
        lines += [
            "",
            "## Calibration",
            "",
            "p = probability given to the chosen completion (softmax over the two completions' mean per-token "
            "log-probs, the scores accuracy compares); mean p, Brier = mean (1 − p)², RMSCE = binned RMS "
            "calibration error of the top-label confidence (5 bins over [0.5, 1], weighted by pairs); "
            "GENIES = the GENIES code's variant (random orientation, bins under 20 pairs skipped; – when none counts).",
            "",
        ]
        head = "| shift | n |" + "".join(f" {v} mean p | {v} Brier | {v} RMSCE | {v} GENIES |" for v in variants)
        lines += [head, "|" + "---|" * (head.count("|") - 1)]
        for name, s in shifts.items():
            row = f"| {name} | {s['n_pairs']} |"
            for v in variants:
                row += "".join(
                    f" {_num(s.get(f'{v}_{k}'))} |"
                    for k in ("p_chosen", "brier", "rms_calibration_error", "rms_calibration_error_genies")
                )
            lines.append(row)
    lines += [
        "",
        "## Pairs per shift",
        "",
        "| shift | source | kept | prompt cut | dropped (too long) | scored |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in shifts.items():
        lines.append(
            f"| {name} | {s['n_source']} | {s['n_kept']} | {s['n_prompt_cut']} | {s['n_dropped_too_long']} | "
            f"{s['n_pairs']} |"
        )
    if has_base:
        thr = summary["coherence_threshold"]
        samples = "samples" in summary
        lines += ["", f"## Coherence: chosen-completion NLL per token (flag when adapter − base > {thr})", ""]
        head = "| shift | n | base nll | adapter nll | delta | flag |" + (
            " degenerate samples (base → adapter) | text flag |" if samples else ""
        )
        lines += [head, "|" + "---|" * (head.count("|") - 1)]
        for name, s in shifts.items():
            flag = "INCOHERENT" if s["coherence_flag"] else "ok"
            row = (
                f"| {name} | {s['n_pairs']} | {s['base_nll']:.3f} | {s['adapter_nll']:.3f} | "
                f"{s['coherence_delta_nll']:+.3f} | {flag} |"
            )
            if samples and "samples_n" in s:
                row += (
                    f" {s['base_degenerate']}/{s['samples_n']} → "
                    f"{s['adapter_degenerate']}/{s['samples_n']} | "
                    f"{'DEGENERATE' if s['text_flag'] else 'ok'} |"
                )
            lines.append(row)
    return "\n".join(lines) + "\n"


def write_results(out_dir: Path, summary: dict, frame: pd.DataFrame) -> Path:
    """summary.json, results.md, pairs.parquet (and samples.md when the summary has samples)
    in `out_dir` (created), each written atomically.

    The training-time evaluation writes into the run directory itself; `innerpo eval`
    writes into a subdirectory of it (innerpo.train.evaluate), so it never overwrites these.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_pair_results(out_dir, frame)
    if "samples" in summary:
        from innerpo.eval.samples import samples_markdown

        write_atomic(out_dir / "samples.md", samples_markdown(summary))
    write_atomic(out_dir / "results.md", tables(summary))
    write_atomic(out_dir / "summary.json", json.dumps(summary, indent=2))
    return out_dir / "summary.json"
