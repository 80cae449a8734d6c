"""Does every hidden-state term descend when trained alone? (bundled SmolLM2-135M)

Each configuration trains its hidden term only (`--method.output_loss=none`) for a few
steps of synthetic in-domain pairs at a constant learning rate (no warmup), and the
table shows the term's value and its margin at the first and last step. A term that
works ends below its initial value and moves its margin the documented way:

- innerpo: `hidden/margin` (the align margin z) up
- prefvec: `prefvec/proj` up
- mse (ReprPO's): `hidden/para_ratio` (s/n) *down*: it pulls rejected toward chosen
- reroute: `hidden/para_ratio` up
- rank: `rank/rho` up

Transforms compare against the same loss without a transform (a trainable transform
that never changes would give the `none` row to 4 decimals).

    .venv/bin/python benchmarks/hidden_descent.py                 # all rows (minutes per row on a busy 2-core CPU)
    .venv/bin/python benchmarks/hidden_descent.py --only hs-none-mse hs-hra-rank
    .venv/bin/python benchmarks/hidden_descent.py --model tiny-random --steps 4   # seconds
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROWS = {  # name → (preset, extra method settings, margin metric, documented direction)
    "hs-none-innerpo": ("hs-none-innerpo", {}, "hidden/margin", +1),
    "hs-supr-innerpo": ("hs-supr-innerpo", {}, "hidden/margin", +1),
    "side-none-innerpo": ("side-none-innerpo", {}, "hidden/margin", +1),
    "hs-etherplus-innerpo": ("hs-etherplus-innerpo", {}, "hidden/margin", +1),
    "hs-hra-innerpo para_orth": ("hs-hra-innerpo", {"align_method": "para_orth"}, "hidden/margin", +1),
    # ReprPO's InnerDPOLossConfig switches and module-output collection
    "modules-none-innerpo q,v": (
        "hs-none-innerpo",
        {"collect": "modules", "collect_modules": r".*\.(q|v)_proj"},
        "hidden/margin",
        +1,
    ),
    # para_signed is in hidden-state units (~30 L2, ~500 L1 on SmolLM2): β = 0.05 / 0.005 keeps −log σ(β·z) off its
    # flat tail
    "hs-none-innerpo para_signed p=1 inner weights": (
        "hs-none-innerpo",
        {"align_method": "para_signed", "norm_p": 1.0, "hidden_beta": 0.005, "inner_policy_weights": True},
        "hidden/margin",
        +1,
    ),
    "hs-none-innerpo detach_rejected": ("hs-none-innerpo", {"detach_rejected": True}, "hidden/margin", +1),
    "hs-none-innerpo policy weights": ("hs-none-innerpo", {"use_policy_weights": True}, "hidden/margin", +1),
    "hs-none-innerpo norm_before_reduce": ("hs-none-innerpo", {"norm_before_reduce": True}, "hidden/margin", +1),
    "hs-none-innerpo para_signed lower clamp": (
        "hs-none-innerpo",
        {"align_method": "para_signed", "hidden_beta": 0.05, "trust_region": 1.0, "trust_region_mode": "lower"},
        "hidden/margin",
        +1,
    ),
    "hs-none-prefvec": ("hs-none-prefvec", {}, "prefvec/proj", +1),
    "hs-none-mse": ("hs-none-mse", {}, "hidden/para_ratio", -1),
    "hs-none-reroute": ("hs-none-reroute", {}, "hidden/para_ratio", +1),
    "hs-none-rank": ("hs-none-rank", {}, "rank/rho", +1),
    "hs-hra-rank": ("hs-hra-rank", {}, "rank/rho", +1),
    "hs-hra-rank transform_lr_scale=100": ("hs-hra-rank", {"transform_lr_scale": 100.0}, "rank/rho", +1),
    "hs-ether-rank": ("hs-ether-rank", {}, "rank/rho", +1),
    "hs-ortho-rank": ("hs-ortho-rank", {}, "rank/rho", +1),
}


def run(name: str, args, root: Path) -> dict:
    from innerpo.train.config import preset_config
    from innerpo.train.loop import train

    preset, settings, metric, sign = ROWS[name]
    cfg = preset_config(preset)
    cfg = dataclasses.replace(
        cfg,
        method=dataclasses.replace(cfg.method, output_loss="none", **settings),
        model=dataclasses.replace(cfg.model, base_model=args.model),
        data=dataclasses.replace(cfg.data, max_train_pairs=args.steps * args.batch, batch_size=args.batch),
        training=dataclasses.replace(cfg.training, lr=args.lr, warmup_ratio=0.0, max_steps=args.steps, eval_every=0),
        output_dir=str(root / name.replace(" ", "_")),
    )
    run_dir = train(cfg, evaluate=False)
    rows = [r for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if "loss" in r]
    first, last = rows[0], rows[-1]
    return {
        "name": name,
        "loss0": first["loss"],
        "loss1": last["loss"],
        "metric": metric,
        "m0": first[metric],
        "m1": last[metric],
        "sign": sign,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--only", nargs="*", default=None, help="row names (default: all)")
    args = p.parse_args()
    names = args.only or list(ROWS)
    with tempfile.TemporaryDirectory() as tmp:  # run directories; model and reference caches stay in $INNERPO_CACHE
        results = [run(n, args, Path(tmp)) for n in names]
    print(
        f"\n{args.model}: hidden term alone, {args.steps} steps x {args.batch} synthetic pairs, lr "
        f"{args.lr}, no warmup\n"
    )
    print("| row | loss step 1 → last | margin | step 1 → last | descends, margin as documented |")
    print("|---|---|---|---|---|")
    for r in results:
        ok = r["loss1"] < r["loss0"] and (r["m1"] - r["m0"]) * r["sign"] > 0
        arrow = "up" if r["sign"] > 0 else "down"
        print(
            f"| {r['name']} | {r['loss0']:.4f} → {r['loss1']:.4f} | {r['metric']} ({arrow}) | {r['m0']:+.4f} "
            f"→ {r['m1']:+.4f} | {'yes' if ok else 'NO'} |"
        )


if __name__ == "__main__":
    main()
