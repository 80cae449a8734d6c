"""Evaluation throughput on one long GENIES shift (default alpaca_hard test, 250 pairs).

Imported by vs_trl.py (its `eval_long` and `eval_long_bf16` workers). What a user's
`innerpo eval` does per shift, timed: the adapter scored on every pair, the base read from
the reference cache (built once first, a cold pass, reported apart). Compared, in one
process and alternating:
  before  the scoring pass as it was before token-sized batches: `batch_size` (16) pairs
          per batch in order of total length (the old rule, reproduced here), fp32
  after   the current pass: batches sized by --eval-max-tokens (EvalConfig's default),
          ordered by whichever length order pads less (innerpo.data.batching.scoring_batches)
  bare    a bare no-grad `model(input_ids, attention_mask)` (full logits) over the old
          batches: what a forward alone costs, the yardstick
The bf16 worker runs `after` and `bare` with the model prepared for bf16.
"""

from __future__ import annotations

import time


def previous_batches(items, batch_size: int, max_tokens=None) -> list[list[int]]:
    """The scoring pass's batches before token budgets: sorted by total length, batch_size each."""
    order = sorted(range(len(items)), key=lambda i: len(items[i].prompt) + max(len(items[i].chosen), len(items[i].rejected)))
    return [order[s : s + batch_size] for s in range(0, len(order), batch_size)]


def run(args, precision: str, init_lora, eval_batch: int) -> dict:
    import torch

    from innerpo.config import ModelConfig
    from innerpo.data.batching import collate
    from innerpo.data.sources import load_pairs
    from innerpo.data.tokenize import PairTokenizer
    from innerpo.eval.accuracy import score_pairs
    from trl_compare.measure import timed_rounds
    from innerpo.models import ref_cache
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

    def before():
        current = ref_cache.scoring_batches
        ref_cache.scoring_batches = previous_batches
        try:
            score_pairs(model, items, pad, eval_batch, base_settings=settings)
        finally:
            ref_cache.scoring_batches = current

    def after():
        score_pairs(model, items, pad, eval_batch, base_settings=settings, max_tokens=args.eval_max_tokens)

    fns = {"after": after, "bare": bare, **({"before": before} if precision == "fp32" else {})}
    runs = timed_rounds(fns, args.eval_rounds)
    return {"n_pairs": len(items), "dropped": report.dropped_too_long, "real_tok_per_pair": real, "base_build_s": base_build_s,
            **{f"{k}_s": v for k, v in runs.items()}}


def print_section(fp32: dict, bf16: dict | None) -> list[tuple[str, bool, str]]:
    """Print pairs/s before / after / bare; returns the targets."""
    n = fp32["n_pairs"]
    rate = lambda s: n / s  # noqa: E731
    print(f"\nlong-shift evaluation ({n} pairs, {fp32['real_tok_per_pair']:.0f} real tokens per pair, {fp32['dropped']} dropped as too long; "
          f"adapter scored, base from the cache; the cold base build took {fp32['base_build_s']:.1f} s fp32"
          + (f", {bf16['base_build_s']:.1f} s bf16" if bf16 else "") + "):")
    print(f"  fp32 before (16 pairs per batch by total length) {rate(fp32['before_s']):.2f} pairs/s; after {rate(fp32['after_s']):.2f} pairs/s; "
          f"bare forward {rate(fp32['bare_s']):.2f} pairs/s")
    gain = fp32["before_s"] / fp32["after_s"]
    targets = [("long-shift evaluation fp32 >= 2x the previous pass's pairs/s", gain >= 2.0, f"{gain:.2f}x")]
    if bf16:
        print(f"  bf16 after {rate(bf16['after_s']):.2f} pairs/s; bare forward {rate(bf16['bare_s']):.2f} pairs/s")
        g16 = fp32["before_s"] / bf16["after_s"]
        targets.append(("long-shift evaluation bf16 more than fp32's gain over the previous pass", g16 > gain, f"{g16:.2f}x"))
    return targets
