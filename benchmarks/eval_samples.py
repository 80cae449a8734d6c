"""What the generation samples add to an evaluation: evaluate_suite with and without them.

    .venv/bin/python benchmarks/eval_samples.py                     # bundled SmolLM2-135M, synthetic suite
    .venv/bin/python benchmarks/eval_samples.py --model tiny-random --max-pairs 20

Runs, alternating and in this process (one torch thread), the evaluation of a fresh LoRA
model at --eval.samples_per_shift=0 (the baseline: scoring only; the base rows come from
the reference cache after the first pass) and at 3, and prints each time and the ratio.
"""

from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--max-pairs", type=int, default=100)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)

    from innerpo.data.config import DataConfig
    from innerpo.data.tokenize import PairTokenizer
    from innerpo.eval.config import EvalConfig
    from innerpo.eval.report import evaluate_suite
    from innerpo.models.config import ModelConfig
    from innerpo.models.load import add_lora, load_base, model_settings

    mcfg = ModelConfig(base_model=args.model)
    base, tok = load_base(mcfg)
    model = add_lora(base, mcfg, 0)
    pair_tok = PairTokenizer(tok, 256)

    def run(samples: int) -> float:
        cfg = EvalConfig(max_pairs=args.max_pairs, samples_per_shift=samples, max_new_tokens=args.max_new_tokens)
        t = time.perf_counter()
        evaluate_suite(model, tok, pair_tok, cfg, DataConfig(), model_settings(mcfg))
        return time.perf_counter() - t

    run(0)  # warm-up: fills the base model's reference cache
    times = {0: [], args.samples: []}
    for _ in range(args.repeats):
        for samples in times:
            times[samples].append(run(samples))
    base_s, with_s = min(times[0]), min(times[args.samples])
    print(
        f"model={args.model} max_pairs={args.max_pairs} shifts=5 samples_per_shift={args.samples} max_new_tokens={args.max_new_tokens}"
    )
    print(f"scoring only: {base_s:.1f} s; with samples: {with_s:.1f} s; samples_cost_ratio={with_s / base_s:.2f}")


if __name__ == "__main__":
    main()
