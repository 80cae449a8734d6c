#!/usr/bin/env python
"""innerpo's DPO step against TRL 1.16's DPOTrainer, on the same pairs (issue #5).

    python benchmarks/vs_trl.py                  # bundled SmolLM2-135M, synthetic + GENIES alpaca_easy (~12 min here)
    python benchmarks/vs_trl.py --model tiny-random --data synthetic      # fast check of the script itself
    python benchmarks/vs_trl.py --configs innerpo,innerpo_single --repeats 3   # what the shared-prompt forward is worth

TRL (1.16, in the `test` extra) is a benchmark-only dependency: nothing in innerpo imports it.
The last line printed is `speedup_vs_trl=<innerpo pairs/s / the faster TRL configuration's (fp32)>
bf16_over_fp32=<innerpo bf16 pairs/s / fp32> floor_ratio=<the worse of step / GEMM floor, fp32 and bf16>`
on the first dataset run (synthetic by default).

Configurations, each in its own fresh subprocess (so peak RSS is per configuration), run in
alternating order (A B C ..., A B C ...) to spread the noise of a shared machine:
  trl_default     DPOTrainer with its defaults: a reference forward (adapter disabled) every step
  trl_precompute  the same with precompute_ref_log_probs=True (reference pass in __init__)
  innerpo         innerpo's DPO step, from the loop's own pieces (innerpo.train.loop: make_loader,
                  checkpoint.BatchStream, optimizer_step; methods.base.build_method; the reference table from
                  models.ref_cache.reference_table); the step body is the loop's, line for line
  naive           a plain policy forward + backward on the same batches and LoRA model: full
                  logits, full log-softmax over the vocabulary, masked sum (no optimizer step)
  innerdpo        the innerpo step with MethodConfig(hidden_loss="innerpo") (DPO + InnerDPO), its
                  reference states from the cached table too
  eval            score_pairs (adapter + base; base from the reference cache as in real use, and
                  cold) against a bare `model(input_ids, attention_mask)` no-grad forward over
                  the same batches
  *_bf16          trl_default, trl_precompute and innerpo in bf16 mixed precision (TRL: bf16=True;
                  innerpo: TrainingConfig.precision="bf16"), same pairs, batches and LoRA init
  roofline        the innerpo step's GEMM floor on the timed batches, fp32 and bf16 (benchmarks/roofline.py)
  eval_long(_bf16) once per run: one long GENIES shift scored before/after token batches, and a bare
                  forward (benchmarks/eval_long.py; --eval-shift, --eval-pairs)
  innerpo_single  (only with --configs) innerpo with models.forward.SHARED_PROMPT_MAX_SHARE = 0,
                  i.e. without the shared-prompt forward: the step as it was before that path
The first three run in every repeat; naive, innerdpo and eval in the first --secondary-repeats.

What is held equal. The base model from innerpo.models.load.load_base, fp32 (TRL's bf16 default
off) except in the _bf16 rows, no gradient/activation checkpointing anywhere (TRL's default off), LoRA r=16, alpha=32,
dropout 0 on all linear layers, batch 8 pairs, beta 0.1 sigmoid DPO, AdamW at the same learning
rate, no warmup, global-norm clipping at 1.0, torch threads (--threads, 1 by default: with other
jobs on this 2-core machine a second OpenMP thread makes every configuration several times
slower and erratic). Otherwise TRL keeps its defaults (fused AdamW, linear decay, logging, its
chunked fused LM head, which on CPU scores every position). Every LoRA tensor is overwritten with
the same deterministic values in every configuration (A uniform like peft's init, B normal times
--b-init: non-zero, so the first-step loss is not log 2 by construction), checked by a digest.

Same token sequences. innerpo tokenizes with PairTokenizer (chat template; prompt and completion
tokenized separately; truncation="drop", so no pair is cut) and keeps the first --pairs pairs
after the loop's data shuffle. TRL gets the same pairs as conversational rows (prompt messages,
one assistant message per completion) and tokenizes them itself with the same chat template; its
`max_length` is the same --max-length, which no kept pair exceeds, so TRL cuts nothing. The
script checks TRL's prompt/chosen/rejected ids equal innerpo's for every pair, and reports the
mean real (unpadded) and padded tokens per pair each side fed to the model.
Same batches. innerpo's loader groups pairs by length; TRL gets the rows in that epoch's order
with train_sampling_strategy="sequential", so its batch k is innerpo's batch k (checked with a
fingerprint of the first two padded batches of every configuration). This isolates the cost of a
step: what innerpo's length grouping saves over TRL's default random batches is not in the ratio.

Measured per configuration and process: the duration of each optimizer step (end of one step to
the end of the next: collation, forward, backward, clipping, AdamW, logging) after one warm-up
step; pairs/s = 8 / (median s/step over all timed steps); peak RSS of the whole process
(getrusage ru_maxrss; the target compares this) and of the training phase (VmHWM after a reset
through /proc/self/clear_refs just before the first step); the losses of steps 1 and 2.
Reference costs are reported apart: innerpo's table build (cache miss, into a fresh directory)
and load (hit, with the base-weights fingerprint recomputed as a new run does), TRL's precompute,
and all of it amortized over a 5-seed sweep of one epoch each (innerpo builds the table once and
loads it four times; TRL precomputes in every run). Workers use a private INNERPO_CACHE (the
converted bundled model is shared by a symlink), so nothing lands in the user's cache.

The code is in benchmarks/trl_compare/ (one module per part: see its __init__); this file is the
command line, for the parent and for each `--worker NAME` subprocess.
"""

from __future__ import annotations

import argparse
import sys

from trl_compare.orchestrate import CONFIGS, EXTRA_CONFIGS, run
from trl_compare.shared import REPO, precision_of
from trl_compare.workers_innerpo import worker_eval, worker_eval_long, worker_innerpo, worker_naive, worker_roofline
from trl_compare.workers_trl import worker_trl


def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", default="smollm2-135m-instruct", help="smollm2-135m-instruct (bundled) or tiny-random")
    p.add_argument("--data", choices=("synthetic", "genies", "both"), default="both")
    p.add_argument("--genies-dir", default=str((REPO / ".." / "shared" / "data" / "genies").resolve()))
    p.add_argument("--genies-dist", default="alpaca_easy", help="GENIES distribution for --data genies/both")
    p.add_argument(
        "--steps", type=int, default=1, help="timed optimizer steps per configuration and repeat (after 1 warm-up)"
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=2,
        help="rounds of the alternating schedule (each a fresh process per configuration)",
    )
    p.add_argument(
        "--secondary-repeats",
        type=int,
        default=1,
        help="rounds in which naive, innerdpo and eval also run (the first ones); the default keeps the whole run near 15 min",
    )
    p.add_argument("--pairs", type=int, default=24, help="pairs in the dataset (reference passes cover all of them)")
    p.add_argument(
        "--max-length", type=int, default=512, help="max prompt + completion tokens, the same for TRL and innerpo"
    )
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--b-init",
        type=float,
        default=0.03,
        help="std of the fixed LoRA-B init (0: peft's B = 0, loss = log 2 at step 1)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads per worker (0: torch's default). 1 by default: on this shared 2-core machine a second "
        "OpenMP thread competing with other jobs makes every configuration several times slower and erratic",
    )
    p.add_argument(
        "--eval-rounds", type=int, default=1, help="bare / cached / cold rounds per eval worker (per repeat)"
    )
    p.add_argument(
        "--eval-shift", default="alpaca_hard", help="GENIES distribution (test split) of the long-shift evaluation"
    )
    p.add_argument("--eval-pairs", type=int, default=250, help="pairs of that shift")
    p.add_argument(
        "--eval-max-length",
        type=int,
        default=512,
        help="max tokens per sequence there (prompts cut from the left, as innerpo eval does)",
    )
    p.add_argument(
        "--eval-max-tokens", type=int, default=None, help="token budget per evaluation batch (default: EvalConfig's)"
    )
    p.add_argument("--configs", default=",".join(CONFIGS), help="comma list from " + ",".join(CONFIGS + EXTRA_CONFIGS))
    p.add_argument("--log-dir", default=None, help="where worker logs go (default: a temp directory)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--dataset", default="synthetic", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.eval_max_tokens is None:
        sys.path.insert(0, str(REPO / "src"))
        from innerpo.eval.config import EvalConfig

        args.eval_max_tokens = EvalConfig().max_tokens_per_batch
    if args.worker:
        run_worker(args)
        return

    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    bad = set(configs) - set(CONFIGS) - set(EXTRA_CONFIGS)
    if bad:
        p.error(f"unknown configurations {sorted(bad)}")
    run(args, configs)


def run_worker(args) -> None:
    """This process is one configuration's worker (`--worker NAME`): run it and emit its result."""
    import warnings

    warnings.filterwarnings("ignore")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    name = args.worker
    if name.startswith("trl_"):
        worker_trl(args, precompute=name.startswith("trl_precompute"), bf16=precision_of(name) == "bf16")
    elif name in ("innerpo", "innerdpo", "innerpo_single", "innerpo_bf16"):
        worker_innerpo(args, name)
    elif name == "roofline":
        worker_roofline(args)
    elif name.startswith("eval_long"):
        worker_eval_long(args, precision_of(name))
    elif name == "naive":
        worker_naive(args)
    elif name == "eval":
        worker_eval(args)
    else:
        raise SystemExit(f"unknown worker {name!r}")


if __name__ == "__main__":
    main()
