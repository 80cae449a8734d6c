"""The TRL comparison's printed report per dataset: the step table, reference costs and the
5-seed sweep, evaluation, bf16, the GEMM floor, the long-shift evaluation, and the PASS/FAIL
targets."""

from __future__ import annotations

from .shared import BATCH, EVAL_BATCH, LORA_ALPHA, LORA_R, precision_of
from .summary import fmt

SWEEP_SEEDS = 5


def report(dataset: str, args, s: dict) -> tuple[list[tuple[str, bool | None, str]], float | None, dict]:
    """Print the tables of one dataset; return (targets, speedup over the faster TRL configuration,
    speed_targets' figures: bf16_over_fp32 and floor_ratio)."""
    trl = [k for k in ("trl_default", "trl_precompute") if k in s]
    inn = s.get("innerpo")
    first = next((v for v in s.values() if "s_step" in v), None)
    same_batches = True
    if first is not None:  # the step table (a run of evaluation configurations alone has none)
        print(
            f"\n=== {dataset}{'' if dataset == 'synthetic' else ' (' + args.genies_dist + ')'}: {first['n_pairs']} pairs, batch {BATCH}, "
            f"max_length {args.max_length}, {args.model} fp32 (and bf16 mixed precision in the _bf16 rows), LoRA r{LORA_R}/alpha{LORA_ALPHA:g} all-linear, "
            f"{first['threads']} torch threads; 1 warm-up + {args.steps} timed steps per process; repeats: "
            + ", ".join(f"{k} {len(v['run_medians'])}" for k, v in s.items() if "s_step" in v)
            + " ==="
        )
        if inn and trl:
            t = s[trl[0]]
            print(
                f"token sequences: TRL's own tokenization equals innerpo's for {t['same_tokens']}/{t['n_pairs']} pairs; "
                f"mean tokens per pair seen (chosen + rejected sequences, real / padded): innerpo {fmt(inn['real'], '.1f')} / {fmt(inn['padded'], '.1f')}, "
                f"TRL {fmt(t['real'], '.1f')} / {fmt(t['padded'], '.1f')}"
            )
        fps = {k: tuple(v["fingerprints"] or ()) for k, v in s.items() if "s_step" in v}
        digests = {k: v["lora_digest"] for k, v in s.items() if "s_step" in v}
        same_batches = len(set(fps.values())) == 1
        print(
            f"first two batches identical across configurations: {same_batches}; LoRA init identical: {len(set(digests.values())) == 1}"
        )
        head = f"{'configuration':<16}{'s/step':>9}{'run medians':>22}{'pairs/s':>9}{'peak MB':>9}{'train MB':>9}{'loss step 1':>13}{'loss step 2':>13}{'innerpo x':>11}"
        print(head)
        print("-" * len(head))
        for k, v in s.items():
            if "s_step" not in v:
                continue
            own = s.get("innerpo_bf16" if precision_of(k) == "bf16" else "innerpo")  # innerpo in the row's precision
            ratio = own["pairs_s"] / v["pairs_s"] if own and own is not v else None
            label = "naive fwd+bwd" if k == "naive" else k
            print(
                f"{label:<16}{fmt(v['s_step']):>9}{' '.join(fmt(x) for x in v['run_medians']):>22}{fmt(v['pairs_s'], '.2f'):>9}"
                f"{fmt(v['peak_mb'], '.0f'):>9}{fmt(v['train_peak_mb'], '.0f'):>9}{fmt(v['loss1'], '.6f'):>13}{fmt(v['loss2'], '.6f'):>13}{fmt(ratio, '.2f'):>11}"
            )
        print(
            "('innerpo x' = innerpo's pairs/s, in the row's precision, over this row's; naive has no optimizer step and no loss)"
        )

    # reference costs and the 5-seed sweep
    if inn:
        n = inn["n_pairs"]
        steps_per_epoch = n / BATCH
        print(
            f"\nreference costs ({n} pairs): innerpo table build {fmt(inn['ref_build_s'], '.2f')} s, load (hit) {fmt(inn['ref_load_s'], '.2f')} s"
            + (
                f"; TRL precompute {fmt(s['trl_precompute']['precompute_s'], '.2f')} s per run"
                if "trl_precompute" in s
                else ""
            )
            + (
                f"; InnerDPO table build {fmt(s['innerdpo']['ref_build_s'], '.2f')} s, load {fmt(s['innerdpo']['ref_load_s'], '.2f')} s"
                if "innerdpo" in s
                else ""
            )
        )
        print(f"{SWEEP_SEEDS}-seed sweep, one epoch of {n} pairs per seed (reference cost included):")
        sweep = {}
        for k in ("trl_default", "trl_precompute", "innerpo", "innerpo_single", "innerdpo"):
            if k not in s:
                continue
            v = s[k]
            train = SWEEP_SEEDS * steps_per_epoch * v["s_step"]
            if k == "trl_default":
                ref = 0.0
            elif k == "trl_precompute":
                ref = SWEEP_SEEDS * (v["precompute_s"] or 0.0)
            else:
                ref = (v["ref_build_s"] or 0.0) + (SWEEP_SEEDS - 1) * (v["ref_load_s"] or 0.0)
            sweep[k] = (train, ref, SWEEP_SEEDS * n / (train + ref))
        for k, (train, ref, rate) in sweep.items():
            ratio = f"  innerpo x {sweep['innerpo'][2] / rate:.2f}" if "innerpo" in sweep and k != "innerpo" else ""
            print(f"  {k:<16} total {train + ref:8.1f} s (reference {ref:6.1f} s)  amortized {rate:.2f} pairs/s{ratio}")

    if "eval" in s:
        e = s["eval"]
        n = e["n_pairs"]
        print(
            f"\nevaluation ({n} pairs, batch {EVAL_BATCH}, adapter + base): bare forward {fmt(e['bare'], '.2f')} s ({n / e['bare']:.1f} pairs/s); "
            f"score_pairs base cached {fmt(e['cached'], '.2f')} s ({n / e['cached']:.1f} pairs/s, {e['cached'] / e['bare']:.2f}x bare); "
            f"base cold {fmt(e['cold'], '.2f')} s ({n / e['cold']:.1f} pairs/s, {e['cold'] / e['bare']:.2f}x bare, two passes)"
        )

    targets: list[tuple[str, bool | None, str]] = []
    speedup = None
    if inn and trl:
        faster = max(trl, key=lambda k: s[k]["pairs_s"])
        speedup = inn["pairs_s"] / s[faster]["pairs_s"]
        targets.append((f"innerpo >= 1.5x the faster TRL configuration ({faster})", speedup >= 1.5, f"{speedup:.2f}x"))
        if "trl_default" in s:
            r = inn["pairs_s"] / s["trl_default"]["pairs_s"]
            targets.append(("innerpo >= 2.5x TRL default", r >= 2.5, f"{r:.2f}x"))
        d1 = max(abs(inn["loss1"] - s[k]["loss1"]) for k in trl)
        d2 = (
            max(abs(inn["loss2"] - s[k]["loss2"]) for k in trl)
            if inn["loss2"] is not None and all(s[k]["loss2"] is not None for k in trl)
            else None
        )
        targets.append(
            (
                "first-step losses equal within 1e-4 (innerpo vs each TRL configuration)",
                d1 <= 1e-4 and same_batches,
                f"max |diff| {d1:.2e}"
                + (f"; step 2: {d2:.2e}" if d2 is not None else "")
                + ("" if same_batches else "; batches differ!"),
            )
        )
        pk = min(s[k]["peak_mb"] for k in trl)
        targets.append(
            (
                "innerpo peak memory <= TRL's (process RSS high-water mark)",
                inn["peak_mb"] <= pk,
                f"{inn['peak_mb']:.0f} MB vs {pk:.0f} MB (lower TRL)",
            )
        )
    if inn and "naive" in s:
        r = inn["s_step"] / s["naive"]["s_step"]
        targets.append(("innerpo whole step <= 1.0x naive forward+backward", r <= 1.0, f"{r:.2f}x"))
    if inn and "innerdpo" in s:
        r = s["innerdpo"]["pairs_s"] / inn["pairs_s"]
        targets.append(("InnerDPO >= 0.85x innerpo DPO pairs/s", r >= 0.85, f"{r:.2f}x"))
    if "eval" in s:
        r = s["eval"]["cached"] / s["eval"]["bare"]
        targets.append(("evaluation (base cached) <= 1.25x bare forward time", r <= 1.25, f"{r:.2f}x"))
    speed2 = speed_targets(s)
    targets += speed2.pop("targets")
    print(f"\ntargets ({dataset}):")
    for text, ok, detail in targets:
        print(f"  [{'PASS' if ok else 'FAIL'}] {text}: {detail}")
    return targets, speedup, speed2


def speed_targets(s: dict) -> dict:
    """bf16 over fp32, innerpo over TRL per precision, the GEMM floor and the long-shift evaluation:
    prints their sections, returns {"targets": [...], "bf16_over_fp32": x, "floor_ratio": x}."""
    import eval_long
    import roofline

    targets, out = [], {"bf16_over_fp32": None, "floor_ratio": None}
    inn, inn16 = s.get("innerpo"), s.get("innerpo_bf16")
    if inn and inn16:
        r = inn16["pairs_s"] / inn["pairs_s"]
        out["bf16_over_fp32"] = r
        targets.append(("innerpo bf16 >= 2x innerpo fp32 pairs/s", r >= 2.0, f"{r:.2f}x"))
        trl16 = [k for k in ("trl_default_bf16", "trl_precompute_bf16") if k in s]
        if trl16:
            d = abs(inn16["loss1"] - s[trl16[0]]["loss1"])
            print(
                f"\nbf16 first-step loss: innerpo {inn16['loss1']:.6f}, {trl16[0]} {s[trl16[0]]['loss1']:.6f} (|diff| {d:.1e}; "
                f"fp32 innerpo {inn['loss1']:.6f})"
            )
    for prec, name, trls in (
        ("fp32", "innerpo", ("trl_default", "trl_precompute")),
        ("bf16", "innerpo_bf16", ("trl_default_bf16", "trl_precompute_bf16")),
    ):
        have = [k for k in trls if k in s]
        if name in s and have:
            faster = max(have, key=lambda k: s[k]["pairs_s"])
            r = s[name]["pairs_s"] / s[faster]["pairs_s"]
            targets.append((f"innerpo >= 2.5x TRL's fastest configuration in {prec} ({faster})", r >= 2.5, f"{r:.2f}x"))
    if "roofline" in s:
        steps = {"fp32": inn and inn["s_step"], "bf16": inn16 and inn16["s_step"]}
        ratios = roofline.print_section(s["roofline"], steps)
        for prec, r in ratios.items():
            targets.append((f"innerpo {prec} step <= 1.5x its GEMM floor", r <= 1.5, f"{r:.2f}x"))
        if ratios:
            out["floor_ratio"] = max(ratios.values())
    if "eval_long" in s:
        for text, ok, detail in eval_long.print_section(s["eval_long"], s.get("eval_long_bf16")):
            targets.append((text, ok, detail))
    out["targets"] = targets
    return out
