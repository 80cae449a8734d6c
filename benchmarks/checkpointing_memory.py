#!/usr/bin/env python
"""Peak memory of one DPO training step with and without --training.gradient_checkpointing.

    python benchmarks/checkpointing_memory.py                    # bundled SmolLM2-135M, 2 pairs of 2048 tokens
    python benchmarks/checkpointing_memory.py --model tiny-random --length 256   # seconds

Each setting runs in a fresh subprocess (peak RSS is per process). A child loads the model,
adds LoRA, runs one warm-up step on a short batch, records its RSS high-water mark as the
baseline (weights, adapter, optimizer-free), then runs one step (policy forward with
gradients, reference pass, backward) on pairs of `--length` tokens and reports the new peak.
The step's memory is peak − baseline, measured in the same process; the ratio off/on is
what checkpointing saves. On CUDA the same is read from torch.cuda.max_memory_allocated.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from trl_compare.measure import max_rss_mb, reset_peak, vm_hwm_mb  # noqa: E402

TAG = "@@MEM@@"


def child(args) -> None:
    import torch

    from innerpo.data.batching import collate_indexed
    from innerpo.data.tokenize import TokenizedPair
    from innerpo.methods.build import build_method
    from innerpo.methods.config import MethodConfig
    from innerpo.models.checkpointing import enable_checkpointing
    from innerpo.models.config import ModelConfig
    from innerpo.models.load import add_lora, load_base
    from innerpo.models.precision import prepare_model

    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg = ModelConfig(base_model=args.model)
    base, tok = load_base(cfg)
    model = prepare_model(add_lora(base, cfg, seed=0), args.precision, device).to(device)
    if args.checkpointing:
        enable_checkpointing(model)
    method = build_method(MethodConfig(**json.loads(args.method)))
    method.bind(model)
    model.train()
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(0)

    def batch(length: int):
        prompt = length // 4
        items = []
        for _ in range(args.pairs):
            p = torch.randint(10, vocab, (prompt,), generator=g).tolist()
            c = torch.randint(10, vocab, (length - prompt,), generator=g).tolist()
            r = torch.randint(10, vocab, (length - prompt,), generator=g).tolist()
            items.append(TokenizedPair(tuple(p), tuple(c), tuple(r)))
        b = collate_indexed(list(enumerate(items)), tok.pad_token_id)
        return b.to(device)

    def step(b):
        out = method.loss(method.loss_inputs(model, b))
        out.loss.backward()
        model.zero_grad(set_to_none=True)

    step(batch(32))  # warm-up: lazy allocations outside the step's own
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base_mb = torch.cuda.memory_allocated() / 2**20
    else:
        reset_peak()
        base_mb = vm_hwm_mb() or max_rss_mb()
    b = batch(args.length)
    t = time.perf_counter()
    step(b)
    seconds = time.perf_counter() - t
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = vm_hwm_mb() or max_rss_mb()
    print(TAG + json.dumps({"base_mb": base_mb, "peak_mb": peak_mb, "step_s": seconds, "device": device.type}))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--length", type=int, default=2048, help="tokens per sequence (prompt + completion)")
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--method", default="{}", help="MethodConfig fields as JSON (default: DPO)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--checkpointing", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)
    rows = {}
    for name, flag in (("off", []), ("on", ["--checkpointing"])):
        cmd = [sys.executable, __file__, "--child", *flag, "--model", args.model, "--length", str(args.length)]
        cmd += ["--pairs", str(args.pairs), "--precision", args.precision, "--method", args.method]
        cmd += ["--threads", str(args.threads)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        lines = [line for line in out.stdout.splitlines() if line.startswith(TAG)]
        if out.returncode or not lines:
            sys.exit(f"{name} failed:\n{out.stderr[-3000:]}")
        rows[name] = json.loads(lines[-1][len(TAG) :])
    unit = "GPU allocated" if rows["off"]["device"] == "cuda" else "RSS"
    print(f"model={args.model} pairs={args.pairs} length={args.length} precision={args.precision} method={args.method}")
    print(f"{'checkpointing':<14}{'baseline MB':>12}{'peak MB':>10}{'step MB':>10}{'s/step':>9}   ({unit})")
    for name, r in rows.items():
        step_mb = r["peak_mb"] - r["base_mb"]
        print(f"{name:<14}{r['base_mb']:>12.0f}{r['peak_mb']:>10.0f}{step_mb:>10.0f}{r['step_s']:>9.2f}")
    off = rows["off"]["peak_mb"] - rows["off"]["base_mb"]
    on = rows["on"]["peak_mb"] - rows["on"]["base_mb"]
    peaks = rows["off"]["peak_mb"] / rows["on"]["peak_mb"]
    print(f"step memory off/on = {off / max(on, 1):.2f}x; peak off/on = {peaks:.2f}x")


if __name__ == "__main__":
    main()
