"""STaR's hot path: sampling k rationales per question. innerpo's HFGenerator against
naive per-question, unbatched `model.generate`, on the same questions, prompts, k,
temperature and token limits; and, for context, plain left-padded batched `generate`
over all prompts (`num_return_sequences=k`).

    .venv/bin/python benchmarks/star_generation.py                    # bundled SmolLM2-135M
    .venv/bin/python benchmarks/star_generation.py --model tiny-random --questions 4   # seconds

Prints generated tokens/s of each and the ratio to naive, measured in the same run, and
whether the issue's target (innerpo ≥ 12× naive) is met. Every method stops a sample at
EOS or `--max-new-tokens`; tokens/s counts the tokens each one generated (prompt tokens
are not counted). A second innerpo row copies the shared prefix into every row
(`share_prefix=False`) to show what attending to it once is worth. The process's CPU
seconds are printed too: on a machine shared with other jobs they vary less than wall time.

    .venv/bin/python benchmarks/star_generation.py --profile --threads 1   # where innerpo's time goes

`--profile` runs only innerpo's generator, under torch.profiler, and prints its top ops.
"""

from __future__ import annotations

import argparse
import time

import torch

from innerpo.data.tokenize import PairTokenizer
from innerpo.models.config import ModelConfig
from innerpo.models.load import load_base
from innerpo.star import prompts
from innerpo.star.generate import GenSettings, HFGenerator
from innerpo.star.questions import load_questions


def _new_tokens(rows: torch.Tensor, start: int, eos: int) -> int:
    """Generated tokens of each row up to and including its first EOS."""
    n = 0
    for row in rows[:, start:].tolist():
        n += row.index(eos) + 1 if eos in row else len(row)
    return n


def naive(model, tok, ids, k, args) -> int:
    n = 0
    for p in ids:
        for _ in range(k):  # one sequence per call: no batching, the prompt run every time
            out = model.generate(
                torch.tensor([p]),
                attention_mask=torch.ones(1, len(p), dtype=torch.long),
                do_sample=True,
                temperature=args.temperature,
                top_p=1.0,
                max_new_tokens=args.max_new_tokens,
                pad_token_id=tok.pad_token_id,
            )
            n += _new_tokens(out, len(p), tok.eos_token_id)
    return n


def batched(model, tok, ids, k, args) -> int:
    width = max(map(len, ids))
    x = torch.tensor([[tok.pad_token_id] * (width - len(p)) + p for p in ids])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in ids])
    out = model.generate(
        x,
        attention_mask=mask,
        do_sample=True,
        temperature=args.temperature,
        top_p=1.0,
        num_return_sequences=k,
        max_new_tokens=args.max_new_tokens,
        pad_token_id=tok.pad_token_id,
    )
    return _new_tokens(out, width, tok.eos_token_id)


def innerpo_gen(model, tok, ids, k, args, share_prefix: bool = True) -> int:
    settings = GenSettings(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        seed=0,
        share_prefix=share_prefix,
        compact_at=args.compact_at,
    )
    out = HFGenerator(model, tok).generate(ids, k, settings)
    # n_tokens excludes the EOS a finished sample ended with; count it as generate's rows do
    return sum(s.n_tokens + (s.finish == "eos") for samples in out for s in samples)


def innerpo_copied_prefix(model, tok, ids, k, args) -> int:
    return innerpo_gen(model, tok, ids, k, args, share_prefix=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--dataset", default="synthetic")
    ap.add_argument("--questions", type=int, default=12)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--few-shot", type=int, default=3)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-batched", action="store_true")
    ap.add_argument(
        "--compact-at", type=float, default=GenSettings.compact_at, help="GenSettings.compact_at for innerpo"
    )
    ap.add_argument("--profile", action="store_true", help="only innerpo's generator, under torch.profiler")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model, tok = load_base(ModelConfig(base_model=args.model))
    qs = load_questions(args.dataset, "train", n=args.questions)[: args.questions]
    ex = prompts.load_exemplars(prompts.default_exemplar_file(prompts.task_kind(args.dataset, qs[0])))
    pair_tok = PairTokenizer(tok, 2048)
    ids = [prompts.prompt_ids(pair_tok, prompts.messages(ex, q, args.few_shot)) for q in qs]
    print(
        f"model {args.model}, {len(ids)} questions x k={args.k}, prompt {sum(map(len, ids)) / len(ids):.0f} tokens on average, "
        f"max {args.max_new_tokens} new tokens, temperature {args.temperature}, {args.threads} torch thread(s)"
    )

    if args.profile:
        return profile(model, tok, ids, args)
    results = {}
    runs = [
        ("innerpo HFGenerator", innerpo_gen),
        ("innerpo, prefix copied per row", innerpo_copied_prefix),
        ("naive generate, per sample", naive),
    ]
    if not args.skip_batched:
        runs.append(("batched generate, left-padded", batched))
    for name, fn in runs:
        t0, c0 = time.perf_counter(), time.process_time()
        n = fn(model, tok, ids, args.k, args)
        results[name] = (n, time.perf_counter() - t0, time.process_time() - c0)
    n0, dt0, cpu0 = results["naive generate, per sample"]
    print("| method | tokens | seconds | tokens/s | × naive | CPU s | × naive by CPU |")
    print("|---|---|---|---|---|---|---|")
    for name, (n, dt, cpu) in results.items():
        print(
            f"| {name} | {n} | {dt:.1f} | {n / dt:.1f} | {(n / dt) / (n0 / dt0):.2f} | {cpu:.1f} | {(n / cpu) / (n0 / cpu0):.2f} |"
        )
    n, dt, cpu = results["innerpo HFGenerator"]
    speedup = (n / dt) / (n0 / dt0)
    print(f"speedup_vs_naive={speedup:.2f} (by CPU seconds: {(n / cpu) / (n0 / cpu0):.2f})")
    print(f"target speedup_vs_naive >= 12: {'PASS' if speedup >= 12 else 'FAIL'} ({speedup:.2f})")


def profile(model, tok, ids, args) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    innerpo_gen(model, tok, ids[:2], args.k, args)  # warm up
    t0, c0 = time.perf_counter(), time.process_time()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        n = innerpo_gen(model, tok, ids, args.k, args)
    print(
        f"innerpo HFGenerator under the profiler: {n} tokens, {time.perf_counter() - t0:.1f} s, {time.process_time() - c0:.1f} CPU s"
    )
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
