"""Evaluation throughput on one long GENIES shift (default alpaca_hard test, 250 pairs).

Imported by vs_trl.py (its `eval_long` and `eval_long_bf16` workers) and by eval_ab.py.
What a user's `innerpo eval` does per shift, timed: the adapter scored on every pair, the
base read from the reference cache (built once first, a cold pass, reported apart).
Compared, in one process and alternating:
  before  the scoring pass as it was before token-sized batches,
          reproduced from today's functions: `batch_size` (16) pairs per batch in order
          of total length, the padded shared-prompt forward (`forward_pairs`), the head's
          logits for a whole batch at once, the LoRA path unmerged; fp32
  after   `score_pairs` as it is: batches sized by --eval-max-tokens (EvalConfig's
          default), run packed without padding (innerpo.models.packed), the head in
          chunks, the adapter merged into the weights at fp32 (innerpo.models.merge)
  bare    a bare no-grad `model(input_ids, attention_mask)` (full logits) over the old
          batches: what a plain forward costs, the yardstick
The bf16 worker runs `after` and `bare` with the model prepared for bf16.

The floor: the GEMM FLOPs the scoring pass must do (each linear of the body over the
pairs' real tokens, a prompt once; the head over completion tokens; forward only, no
LoRA, attention not counted) over the same-shape GEMM speed measured here
(benchmarks/roofline.py's timing), so "after / floor" says how much is left to gain.
"""

from __future__ import annotations

import sys
import time


def previous_batches(items, batch_size: int, max_tokens=None) -> list[list[int]]:
    """The scoring pass's batches before token budgets: sorted by total length, batch_size each."""
    order = sorted(
        range(len(items)), key=lambda i: len(items[i].prompt) + max(len(items[i].chosen), len(items[i].rejected))
    )
    return [order[s : s + batch_size] for s in range(0, len(order), batch_size)]


def previous_rows(model, batch):
    """The per-pair rows as the padded forward gives them (logp_rows before packing)."""
    from innerpo.models.forward import forward_pairs, rows_of

    out = forward_pairs(model, batch)
    return rows_of(out.chosen, out.rejected)


def passes(model, items, pad: int, eval_batch: int, settings: dict, max_tokens: int) -> dict:
    """{"before": fn, "after": fn}: the two scoring passes, each returning {"adapter", "base"} Scores."""
    from innerpo.eval.accuracy import Scores, score_pairs
    from innerpo.models import forward, ref_cache
    from innerpo.models.forward import logp_rows

    def before():
        batches, chunk = ref_cache.scoring_batches, forward.HEAD_CHUNK
        ref_cache.scoring_batches, forward.HEAD_CHUNK = previous_batches, sys.maxsize
        try:
            adapter = ref_cache.rows_pass(model, items, pad, eval_batch, previous_rows, adapter=True, desc="before")
            base, _ = ref_cache.reference_table(model, items, pad, eval_batch, settings, logp_rows)
        finally:
            ref_cache.scoring_batches, forward.HEAD_CHUNK = batches, chunk
        return {"adapter": Scores.from_rows(adapter), "base": Scores.from_rows(base)}

    def after():
        return score_pairs(model, items, pad, eval_batch, base_settings=settings, max_tokens=max_tokens)

    return {"before": before, "after": after}


def scoring_gemms(linears: list[tuple[int, int]], d: int, vocab: int, n: int, m: int) -> list[tuple[int, int, int]]:
    """The [M×K]·[K×N] GEMMs of a scoring pass: every body linear (in, out) over the n body
    tokens (each prompt once), the head over the m completion tokens; forward only."""
    return [(n, k_in, k_out) for k_in, k_out in linears] + [(m, d, vocab)]


def scoring_floor(model, items) -> dict:
    """GFLOP of the scoring pass over `items` and its GEMM floor in seconds, fp32 and bf16."""
    import roofline
    import torch

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    c = base.config
    n = sum(len(it.prompt) + len(it.chosen) + len(it.rejected) for it in items)
    m = sum(len(it.chosen) + len(it.rejected) for it in items)
    shapes = scoring_gemms(roofline.linear_shapes(model), c.hidden_size, c.vocab_size, n, m)
    out = {"gflop": sum(roofline.gemm_flops(s) for s in shapes) / 1e9}
    for label, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        seconds = {}
        for s in set(shapes):  # each distinct shape timed once, at a size a batch really has
            rows = min(s[0], 4096)
            seconds[s] = roofline.time_gemm((rows, s[1], s[2]), dtype) * s[0] / rows
        out[f"floor_{label}_s"] = sum(seconds[s] for s in shapes)
    return out


def run(args, precision: str, init_lora, eval_batch: int) -> dict:
    import torch
    from trl_compare.measure import timed_rounds

    from innerpo.data.batching import collate
    from innerpo.data.sources import load_pairs
    from innerpo.data.tokenize import PairTokenizer
    from innerpo.models import ref_cache
    from innerpo.models.config import ModelConfig
    from innerpo.models.forward import logp_rows
    from innerpo.models.load import add_lora, load_base, model_settings
    from innerpo.models.precision import prepare_model

    mcfg = ModelConfig(base_model=args.model, lora_r=16, lora_alpha=32.0, lora_dropout=0.0)
    base, tok = load_base(mcfg)
    model = prepare_model(add_lora(base, mcfg, args.seed), precision)
    init_lora(model, args.seed, args.b_init)
    pairs = load_pairs(f"genies:{args.eval_shift}", "test", args.genies_dir)[: args.eval_pairs]
    pair_tok = PairTokenizer(tok, args.eval_max_length)  # evaluate_suite's tokenization (prompt cut from the left)
    items, report = pair_tok.tokenize_all(pairs, args.eval_shift)
    pad = tok.pad_token_id
    settings = {**pair_tok.settings(), **model_settings(mcfg)}
    real = sum(len(it.prompt) + len(it.chosen) + len(it.rejected) for it in items) / len(items)

    t = time.perf_counter()
    ref_cache.reference_table(model, items, pad, eval_batch, settings, logp_rows, max_tokens=args.eval_max_tokens)
    base_build_s = time.perf_counter() - t
    old = [collate([items[i] for i in b], pad) for b in previous_batches(items, eval_batch)]

    def bare():
        model.eval()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            for b in old:
                model(input_ids=b.input_ids, attention_mask=b.attention_mask)

    both = passes(model, items, pad, eval_batch, settings, args.eval_max_tokens)
    scores = {}

    def keeping(name):  # the pass, its scores kept so before and after can be compared
        return lambda: scores.__setitem__(name, both[name]())

    fns = {"after": keeping("after"), "bare": bare, **({"before": keeping("before")} if precision == "fp32" else {})}
    cpu: dict[str, list[float]] = {}
    runs = timed_rounds(fns, args.eval_rounds, cpu)
    gap = (
        max(abs(scores["before"][v].accuracy - scores["after"][v].accuracy) for v in ("adapter", "base"))
        if "before" in scores
        else None
    )
    return {
        "n_pairs": len(items),
        "dropped": report.dropped_too_long,
        "real_tok_per_pair": real,
        "base_build_s": base_build_s,
        "accuracy_gap": gap,
        **scoring_floor(model, items),
        **{f"{k}_s": v for k, v in runs.items()},
        **{f"{k}_cpu_s": v for k, v in cpu.items()},
    }


def print_section(fp32: dict, bf16: dict | None) -> list[tuple[str, bool, str]]:
    """Print pairs/s before / after / bare and the floor; returns the targets."""
    n = fp32["n_pairs"]
    rate = lambda s: n / s  # noqa: E731
    print(
        f"\nlong-shift evaluation ({n} pairs, {fp32['real_tok_per_pair']:.0f} real tokens per pair, {fp32['dropped']} dropped as too long; "
        f"adapter scored, base from the cache; the cold base build took {fp32['base_build_s']:.1f} s fp32"
        + (f", {bf16['base_build_s']:.1f} s bf16" if bf16 else "")
        + "):"
    )
    print(
        f"  fp32 before (16 pairs per batch by total length, padded) {rate(fp32['before_s']):.2f} pairs/s; after {rate(fp32['after_s']):.2f} pairs/s; "
        f"bare forward {rate(fp32['bare_s']):.2f} pairs/s; largest accuracy difference before/after {fp32['accuracy_gap']:.4f}"
    )
    print(
        f"  GEMM floor of the scoring pass ({fp32['gflop'] / n:.1f} GFLOP per pair): fp32 {rate(fp32['floor_fp32_s']):.2f} pairs/s, "
        f"so after = {fp32['after_s'] / fp32['floor_fp32_s']:.2f}x the floor and 2x before would need <= {fp32['before_s'] / 2 / fp32['floor_fp32_s']:.2f}x"
    )
    gain = fp32["before_s"] / fp32["after_s"]
    gain_cpu = fp32["before_cpu_s"] / fp32["after_cpu_s"]
    print(
        f"  by CPU seconds (what other jobs on the machine barely move): before {rate(fp32['before_cpu_s']):.2f} pairs/s, "
        f"after {rate(fp32['after_cpu_s']):.2f} pairs/s, {gain_cpu:.2f}x"
    )
    targets = [
        (
            "long-shift evaluation fp32 >= 2x the previous pass's pairs/s",
            gain >= 2.0,
            f"{gain:.2f}x (by CPU seconds {gain_cpu:.2f}x)",
        )
    ]
    if bf16:
        print(
            f"  bf16 after {rate(bf16['after_s']):.2f} pairs/s; bare forward {rate(bf16['bare_s']):.2f} pairs/s; "
            f"floor {rate(bf16['floor_bf16_s']):.2f} pairs/s (after = {bf16['after_s'] / bf16['floor_bf16_s']:.2f}x)"
        )
        g16 = fp32["before_s"] / bf16["after_s"]
        targets.append(
            ("long-shift evaluation bf16 more than fp32's gain over the previous pass", g16 > gain, f"{g16:.2f}x")
        )
    return targets
