#!/usr/bin/env python
"""innerpo's DPO step against TRL 1.16's DPOTrainer, on the same pairs (issue #5).

    python benchmarks/vs_trl.py                  # bundled SmolLM2-135M, synthetic + GENIES alpaca_easy (~12 min here)
    python benchmarks/vs_trl.py --model tiny-random --data synthetic      # fast check of the script itself
    python benchmarks/vs_trl.py --configs innerpo,innerpo_single --repeats 3   # what the shared-prompt forward is worth

TRL (1.16, in the `test` extra) is a benchmark-only dependency: nothing in innerpo imports it.
The last line printed is `speedup_vs_trl=<innerpo pairs/s / the faster TRL configuration's>`
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
  innerpo_single  (only with --configs) innerpo with models.forward.SHARED_PROMPT_MAX_SHARE = 0,
                  i.e. without the shared-prompt forward: the step as it was before that path
The first three run in every repeat; naive, innerdpo and eval in the first --secondary-repeats.

What is held equal. The base model from innerpo.models.load.load_base, fp32 (TRL's bf16 default
off), no gradient/activation checkpointing anywhere (TRL's default off), LoRA r=16, alpha=32,
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
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BATCH = 8
BETA = 0.1
LORA_R, LORA_ALPHA = 16, 32.0
SWEEP_SEEDS = 5
EVAL_BATCH = 16  # EvalConfig.batch_size, also the loop's reference-pass batch size
MAIN_CONFIGS = ("trl_default", "trl_precompute", "innerpo")
SECONDARY_CONFIGS = ("naive", "innerdpo", "eval")
CONFIGS = MAIN_CONFIGS + SECONDARY_CONFIGS
# not in the default schedule: innerpo's DPO with the shared-prompt forward switched off
# (models.forward.SHARED_PROMPT_MAX_SHARE = 0), to measure what that path is worth
EXTRA_CONFIGS = ("innerpo_single",)
RESULT_TAG = "@@RESULT@@"


# --------------------------------------------------------------------------------------
# shared by the workers
# --------------------------------------------------------------------------------------


def dataset_spec(args) -> str:
    return "synthetic" if args.dataset == "synthetic" else f"genies:{args.genies_dist}"


def n_pairs(args) -> int:
    """Enough pairs for warm-up + timed steps inside one epoch, a multiple of the batch."""
    n = max(args.pairs, BATCH * (args.steps + 1))
    return -(-n // BATCH) * BATCH


def make_cfg(args, method=None):
    from innerpo.config import DataConfig, MethodConfig, ModelConfig, TrainConfig, TrainingConfig

    total = args.steps + 1
    return TrainConfig(
        model=ModelConfig(base_model=args.model, dtype="float32", lora_r=LORA_R, lora_alpha=LORA_ALPHA, lora_dropout=0.0),
        data=DataConfig(dataset=dataset_spec(args), genies_dir=args.genies_dir, batch_size=BATCH, max_length=args.max_length,
                        truncation="drop", group_by_length=True, max_train_pairs=n_pairs(args)),
        training=TrainingConfig(lr=args.lr, warmup_ratio=0.0, max_grad_norm=1.0, max_steps=total, seed=args.seed, eval_every=0),
        method=method or MethodConfig(losses=["dpo"], weights=[1.0], beta=BETA),
    )


def prepare(args, tok):
    """(PairTokenizer, pairs, items): the first n kept pairs after the loop's data shuffle."""
    from innerpo.data.sources import load_pairs
    from innerpo.data.tokenize import PairTokenizer
    from innerpo.train.loop import DATA_SEED

    pairs = load_pairs(dataset_spec(args), "train", args.genies_dir)
    random.Random(DATA_SEED).shuffle(pairs)
    pair_tok = PairTokenizer(tok, args.max_length, truncation="drop")
    kept, items, n = [], [], n_pairs(args)
    for p in pairs:
        it = pair_tok(p)
        if it is not None:
            kept.append(p)
            items.append(it)
            if len(items) == n:
                break
    if len(items) < n:
        raise SystemExit(f"{dataset_spec(args)}: only {len(items)} pairs fit --max-length={args.max_length}; need {n}")
    return pair_tok, kept, items


def epoch_order(items, cfg) -> list[int]:
    """The pair indices of the loop's first epoch, batch after batch (innerpo's sampler)."""
    from innerpo.data.batching import EpochBatchSampler, item_length

    sampler = EpochBatchSampler(len(items), cfg.data.batch_size, seed=cfg.training.seed, lengths=[item_length(i) for i in items])
    sampler.set_epoch(0)
    return [i for b in sampler for i in b]


def init_lora(model, seed: int, b_scale: float) -> str:
    """Overwrite every LoRA tensor with values fixed by (seed, its name); returns their digest."""
    import torch

    h = hashlib.blake2b(digest_size=8)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if "lora_" not in name:
                continue
            g = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
            if "lora_A" in name:
                bound = 1.0 / math.sqrt(p.shape[1])
                p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * bound)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * b_scale)
            h.update(name.encode())
            h.update(p.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def batch_fingerprint(input_ids, attention_mask, completion_mask) -> str:
    rows = (input_ids.tolist(), attention_mask.long().tolist(), completion_mask.long().tolist())
    return hashlib.blake2b(json.dumps(rows).encode(), digest_size=8).hexdigest()


def reset_peak() -> bool:
    """Reset the RSS high-water mark (VmHWM) of this process; False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def vm_hwm_mb() -> float | None:
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def emit(result: dict) -> None:
    result.update(peak_mb=max_rss_mb(), train_peak_mb=result.get("train_peak_mb"))
    print(RESULT_TAG + json.dumps(result), flush=True)


def step_stats(marks: list[float]) -> list[float]:
    """Per-step durations from [start, end of step 1, end of step 2, ...]."""
    return [b - a for a, b in zip(marks, marks[1:])]


# --------------------------------------------------------------------------------------
# workers (one configuration per process)
# --------------------------------------------------------------------------------------


def worker_trl(args, precompute: bool) -> None:
    import datasets
    import torch
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import DPOConfig, DPOTrainer

    from innerpo.models.load import load_base

    datasets.disable_progress_bars()
    cfg = make_cfg(args)
    base, tok = load_base(cfg.model)
    pair_tok, pairs, items = prepare(args, tok)
    order = epoch_order(items, cfg)

    def row(p):
        if pair_tok.use_template:
            return {"prompt": p.prompt_messages(), "chosen": [{"role": "assistant", "content": p.chosen}], "rejected": [{"role": "assistant", "content": p.rejected}]}
        return {"prompt": p.prompt_text(), "chosen": p.chosen, "rejected": p.rejected}  # TRL appends EOS, as PairTokenizer does

    ds = datasets.Dataset.from_list([row(pairs[i]) for i in order])
    out_dir = tempfile.mkdtemp(prefix="trl_out_", dir=os.environ.get("INNERPO_CACHE"))  # removed with the parent's cache root
    targs = DPOConfig(
        output_dir=out_dir,
        per_device_train_batch_size=BATCH,
        max_steps=args.steps + 1,
        learning_rate=args.lr,
        warmup_steps=0,
        max_grad_norm=1.0,
        weight_decay=0.0,
        beta=BETA,
        loss_type=["sigmoid"],
        max_length=args.max_length,
        precompute_ref_log_probs=precompute,
        bf16=False,  # TRL defaults to bf16 mixed precision; every configuration here is fp32
        activation_checkpointing=False,  # TRL defaults to gradient checkpointing; none here
        use_cpu=True,
        train_sampling_strategy="sequential",  # rows are already in innerpo's batch order
        report_to=[],
        save_strategy="no",
        disable_tqdm=True,
        seed=args.seed,
    )
    assert not targs.gradient_checkpointing and not targs.bf16 and not targs.fp16
    peft_config = LoraConfig(r=LORA_R, lora_alpha=LORA_ALPHA, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")

    timing = {"precompute_s": None}
    real_precompute = DPOTrainer._precompute_ref_logps

    def timed_precompute(self, dataset, name, batch_size):
        t = time.perf_counter()
        out = real_precompute(self, dataset, name, batch_size)
        timing["precompute_s"] = time.perf_counter() - t
        return out

    DPOTrainer._precompute_ref_logps = timed_precompute
    t0 = time.perf_counter()
    trainer = DPOTrainer(model=base, args=targs, train_dataset=ds, processing_class=tok, peft_config=peft_config)
    setup_s = time.perf_counter() - t0

    # TRL's own tokenization against innerpo's, pair by pair
    tds = trainer.train_dataset
    same = sum(
        tuple(tds[k]["prompt_ids"]) == items[i].prompt and tuple(tds[k]["chosen_ids"]) == items[i].chosen and tuple(tds[k]["rejected_ids"]) == items[i].rejected
        for k, i in enumerate(order)
    )
    digest = init_lora(trainer.model, args.seed, args.b_init)

    seen = {"loss": [], "real": [], "padded": [], "fp": []}
    real_compute_loss = trainer.compute_loss

    def compute_loss(model, inputs, *a, **k):
        loss = real_compute_loss(model, inputs, *a, **k)
        seen["loss"].append(loss.detach().item())
        b = inputs["input_ids"].shape[0] // 2
        seen["real"].append(inputs["attention_mask"].sum().item() / b)
        seen["padded"].append(inputs["input_ids"].numel() / b)
        if len(seen["fp"]) < 2:
            seen["fp"].append(batch_fingerprint(inputs["input_ids"], inputs["attention_mask"], inputs["completion_mask"]))
        return loss

    trainer.compute_loss = compute_loss
    marks: list[float] = []
    peak = {}

    class Clock(TrainerCallback):
        def on_step_begin(self, a, state, control, **kw):
            if not marks:
                peak["reset"] = reset_peak()
                marks.append(time.perf_counter())

        def on_step_end(self, a, state, control, **kw):
            marks.append(time.perf_counter())

    trainer.add_callback(Clock())
    trainer.train()
    times = step_stats(marks)
    emit({
        "config": "trl_precompute" if precompute else "trl_default",
        "step_s": times[1:], "warmup_s": times[0], "loss1": seen["loss"][0], "loss2": seen["loss"][1] if len(seen["loss"]) > 1 else None,
        "real_tok_per_pair": statistics.fmean(seen["real"]), "padded_tok_per_pair": statistics.fmean(seen["padded"]),
        "fingerprints": seen["fp"], "lora_digest": digest, "same_tokens": same, "n_pairs": len(items),
        "precompute_s": timing["precompute_s"], "setup_s": setup_s,
        "train_peak_mb": vm_hwm_mb() if peak.get("reset") else None, "threads": torch.get_num_threads(),
    })


def worker_innerpo(args, name: str) -> None:
    """innerpo's training step, as innerpo.train.loop.train runs it (its pieces, its order)."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from innerpo.config import MethodConfig
    from innerpo.methods.base import build_method
    from innerpo.models import ref_cache
    from innerpo.models.load import add_lora, load_base, model_settings
    from innerpo.train.checkpoint import BatchStream
    from innerpo.train.loop import make_loader, optimizer_step, prepare_training
    from innerpo.train.metrics import StepMetrics
    from innerpo.train.run_dir import MetricsLog

    if name == "innerpo_single":
        from innerpo.models import forward

        forward.SHARED_PROMPT_MAX_SHARE = 0.0  # every batch takes the single [2B, T] pass
    mcfg = MethodConfig(losses=["dpo"], weights=[1.0], beta=BETA, hidden_loss="innerpo" if name == "innerdpo" else "none")
    cfg = make_cfg(args, mcfg)
    set_seed(cfg.training.seed)
    accelerator = Accelerator()
    method = build_method(cfg.method)
    base, tok = load_base(cfg.model)
    model = add_lora(base, cfg.model, cfg.training.seed)
    method.bind(model)
    pair_tok, _, items = prepare(args, tok)
    digest = init_lora(model, args.seed, args.b_init)

    # reference table: a miss (build) into a fresh root, then a hit as the next seed's run sees it
    assert method.loss.uses_reference and method.cacheable_reference
    settings = {**pair_tok.settings(), **model_settings(cfg.model), **method.reference_settings()}
    root = Path(tempfile.mkdtemp(prefix="ref_", dir=os.environ.get("INNERPO_CACHE")))  # removed with the parent's cache root
    t = time.perf_counter()
    table, hit = ref_cache.reference_table(model, items, tok.pad_token_id, cfg.eval.batch_size, settings, method.reference_rows, root=root)
    build_s = time.perf_counter() - t
    assert not hit
    ref_cache._FINGERPRINTS.clear()  # a new run hashes the base weights again
    t = time.perf_counter()
    table, hit = ref_cache.reference_table(model, items, tok.pad_token_id, cfg.eval.batch_size, settings, method.reference_rows, root=root)
    load_s = time.perf_counter() - t
    assert hit
    method.use_reference_table(table)

    # --- from here on, innerpo.train.loop.train, step for step -------------------------
    loader = make_loader(items, cfg, tok.pad_token_id)
    total_steps = cfg.training.max_steps
    model, method, params, optimizer, loader, scheduler = prepare_training(accelerator, model, method, loader, cfg, total_steps)
    log = MetricsLog(root / "metrics.jsonl")
    batches = BatchStream(loader)

    losses, real, padded, fps = [], [], [], []
    peak_reset = reset_peak()
    marks = [time.perf_counter()]
    for step in range(1, total_steps + 1):
        window = StepMetrics()
        batch = next(batches)
        out = method.loss(method.loss_inputs(model, batch))
        if not torch.isfinite(out.loss):
            raise SystemExit(f"non-finite loss at step {step}")
        accelerator.backward(out.loss / cfg.training.grad_accum)
        window.add({"loss": out.loss.detach(), **out.metrics, "padding_share": batch.padding_share}, batch.num_pairs)
        extra = method.after_backward(model)
        grad_norm = optimizer_step(accelerator, params, optimizer, scheduler, cfg.training.max_grad_norm)
        means = window.means()
        log.write({"step": step, "lr": scheduler.get_last_lr()[0], "grad_norm": grad_norm, **means, **extra})
        marks.append(time.perf_counter())
        # bookkeeping for the report (a few ms; it lands in the next step's time, as on the TRL side)
        losses.append(means["loss"])
        b = batch.num_pairs
        real.append(batch.attention_mask.sum().item() / b)
        padded.append(batch.input_ids.numel() / b)
        if len(fps) < 2:
            fps.append(batch_fingerprint(batch.input_ids, batch.attention_mask, batch.completion_mask))
    times = step_stats(marks)
    emit({
        "config": name, "step_s": times[1:], "warmup_s": times[0], "loss1": losses[0], "loss2": losses[1] if len(losses) > 1 else None,
        "real_tok_per_pair": statistics.fmean(real), "padded_tok_per_pair": statistics.fmean(padded), "fingerprints": fps,
        "lora_digest": digest, "n_pairs": len(items), "ref_build_s": build_s, "ref_load_s": load_s,
        "train_peak_mb": vm_hwm_mb() if peak_reset else None, "threads": torch.get_num_threads(),
    })


def worker_naive(args) -> None:
    """Policy forward + backward the plain way, on the loop's batches: the yardstick."""
    import torch

    from innerpo.models.load import add_lora, load_base
    from innerpo.train.loop import make_loader

    cfg = make_cfg(args)
    torch.manual_seed(cfg.training.seed)
    base, tok = load_base(cfg.model)
    model = add_lora(base, cfg.model, cfg.training.seed)
    _, _, items = prepare(args, tok)
    digest = init_lora(model, args.seed, args.b_init)
    params = [p for p in model.parameters() if p.requires_grad]
    loader = make_loader(items, cfg, tok.pad_token_id)
    loader.batch_sampler.set_epoch(0)  # the loop's first epoch (steps + 1 <= batches per epoch)
    batches = iter(loader)
    model.train()
    fps = []
    peak_reset = reset_peak()
    marks = [time.perf_counter()]
    for _ in range(cfg.training.max_steps):
        batch = next(batches)
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits.float()  # [2B, T, V]
        logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, batch.input_ids[:, 1:, None]).squeeze(-1)
        total = (logp * batch.completion_mask[:, 1:]).sum()
        total.backward()
        for p in params:
            p.grad = None
        marks.append(time.perf_counter())
        if len(fps) < 2:
            fps.append(batch_fingerprint(batch.input_ids, batch.attention_mask, batch.completion_mask))
    times = step_stats(marks)
    emit({"config": "naive", "step_s": times[1:], "warmup_s": times[0], "fingerprints": fps, "lora_digest": digest,
          "n_pairs": len(items), "train_peak_mb": vm_hwm_mb() if peak_reset else None, "threads": torch.get_num_threads()})


def worker_eval(args) -> None:
    """score_pairs (base from the cache; base cold) against a bare forward over the same batches."""
    import torch

    from innerpo.data.batching import collate
    from innerpo.eval.accuracy import score_pairs
    from innerpo.models.forward import logp_rows
    from innerpo.models.load import add_lora, load_base, model_settings
    from innerpo.models.ref_cache import reference_table

    cfg = make_cfg(args)
    base, tok = load_base(cfg.model)
    model = add_lora(base, cfg.model, cfg.training.seed)
    pair_tok, _, items = prepare(args, tok)
    init_lora(model, args.seed, args.b_init)
    pad = tok.pad_token_id
    settings = {**pair_tok.settings(), **model_settings(cfg.model)}  # what evaluate_suite passes
    # rows_pass's batches: sorted by length, EVAL_BATCH pairs each
    order = sorted(range(len(items)), key=lambda i: len(items[i].prompt) + max(len(items[i].chosen), len(items[i].rejected)))
    batches = [collate([items[i] for i in order[s : s + EVAL_BATCH]], pad) for s in range(0, len(order), EVAL_BATCH)]

    def bare():
        model.eval()
        with torch.no_grad():
            for b in batches:
                model(input_ids=b.input_ids, attention_mask=b.attention_mask)

    # the first evaluation of this base model on these pairs builds the base table (a cache miss; also the warm-up)
    reference_table(model, items, pad, EVAL_BATCH, settings, logp_rows)
    runs = {"bare": [], "cached": [], "cold": []}
    fns = {
        "bare": bare,
        "cached": lambda: score_pairs(model, items, pad, EVAL_BATCH, base_settings=settings),
        "cold": lambda: score_pairs(model, items, pad, EVAL_BATCH, base_settings=None),
    }
    for _ in range(args.eval_rounds):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            runs[k].append(time.perf_counter() - t)
    emit({"config": "eval", "n_pairs": len(items), **{f"{k}_s": v for k, v in runs.items()}, "threads": torch.get_num_threads()})


def run_worker(args) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    name = args.worker
    if name.startswith("trl_"):
        worker_trl(args, precompute=name == "trl_precompute")
    elif name in ("innerpo", "innerdpo", "innerpo_single"):
        worker_innerpo(args, name)
    elif name == "naive":
        worker_naive(args)
    elif name == "eval":
        worker_eval(args)
    else:
        raise SystemExit(f"unknown worker {name!r}")


# --------------------------------------------------------------------------------------
# parent: schedule, collect, report
# --------------------------------------------------------------------------------------


def worker_env(cache_root: Path) -> dict:
    env = dict(os.environ)
    env.update(
        INNERPO_CACHE=str(cache_root),
        TQDM_DISABLE="1",
        TOKENIZERS_PARALLELISM="false",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_VERBOSITY="error",
        PYTHONWARNINGS="ignore",
    )
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    return env


def prepare_cache(model: str) -> Path:
    """A private innerpo cache for the workers (reference tables land there, not in the
    user's cache), sharing the user's converted bundled model (converted once if needed)."""
    root = Path(tempfile.mkdtemp(prefix="vs_trl_cache_"))
    if model != "tiny-random":
        from innerpo.paths import cache_dir

        real = cache_dir()
        subprocess.run([sys.executable, "-c", "from innerpo.models import bundled, load; bundled.converted_dir()"], check=True,
                       env={**os.environ, "PYTHONPATH": str(REPO / "src")})
        (root / "models").symlink_to(real / "models", target_is_directory=True)
    return root


def call_worker(args, name: str, dataset: str, env: dict, log_dir: Path) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--dataset", dataset,
           "--model", args.model, "--steps", str(args.steps), "--pairs", str(args.pairs), "--max-length", str(args.max_length),
           "--lr", str(args.lr), "--seed", str(args.seed), "--b-init", str(args.b_init), "--genies-dist", args.genies_dist,
           "--eval-rounds", str(args.eval_rounds)]
    if args.genies_dir:
        cmd += ["--genies-dir", args.genies_dir]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - t
    log = log_dir / f"{dataset}-{name}-{int(time.time() * 1000)}.log"
    log.write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    lines = [l for l in proc.stdout.splitlines() if l.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-25:])
        raise SystemExit(f"worker {name} on {dataset} failed (exit {proc.returncode}); log {log}\n{tail}")
    result = json.loads(lines[-1][len(RESULT_TAG):])
    result["wall_s"] = wall
    return result


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


def fmt(x, spec=".3f", none="-"):
    return none if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def summarize(runs: dict[str, list[dict]]) -> dict:
    """Per configuration: median step time over all timed steps of all repeats, etc."""
    out = {}
    for name, rs in runs.items():
        if name == "eval":
            out[name] = {k: med([x for r in rs for x in r[f"{k}_s"]]) for k in ("bare", "cached", "cold")}
            out[name]["n_pairs"] = rs[0]["n_pairs"]
            continue
        steps = [x for r in rs for x in r["step_s"]]
        s = med(steps)
        out[name] = {
            "s_step": s, "pairs_s": BATCH / s, "run_medians": [med(r["step_s"]) for r in rs],
            "peak_mb": max(r["peak_mb"] for r in rs), "train_peak_mb": max((r.get("train_peak_mb") or 0) for r in rs) or None,
            "loss1": rs[0].get("loss1"), "loss2": rs[0].get("loss2"),
            "losses1": [r.get("loss1") for r in rs], "losses2": [r.get("loss2") for r in rs],
            "real": rs[0].get("real_tok_per_pair"), "padded": rs[0].get("padded_tok_per_pair"),
            "fingerprints": rs[0].get("fingerprints"), "lora_digest": rs[0].get("lora_digest"),
            "same_tokens": rs[0].get("same_tokens"), "n_pairs": rs[0]["n_pairs"],
            "precompute_s": med([r.get("precompute_s") for r in rs]), "ref_build_s": med([r.get("ref_build_s") for r in rs]),
            "ref_load_s": med([r.get("ref_load_s") for r in rs]), "threads": rs[0].get("threads"),
        }
    return out


def report(dataset: str, args, s: dict) -> tuple[list[tuple[str, bool | None, str]], float | None]:
    """Print the tables of one dataset; return (targets, speedup over the faster TRL configuration)."""
    trl = [k for k in ("trl_default", "trl_precompute") if k in s]
    inn = s.get("innerpo")
    first = next(v for k, v in s.items() if k != "eval")
    print(f"\n=== {dataset}{'' if dataset == 'synthetic' else ' (' + args.genies_dist + ')'}: {first['n_pairs']} pairs, batch {BATCH}, "
          f"max_length {args.max_length}, {args.model} fp32, LoRA r{LORA_R}/alpha{LORA_ALPHA:g} all-linear, "
          f"{first['threads']} torch threads; 1 warm-up + {args.steps} timed steps per process; repeats: "
          + ", ".join(f"{k} {len(v['run_medians'])}" for k, v in s.items() if k != "eval") + " ===")
    if inn and trl:
        t = s[trl[0]]
        print(f"token sequences: TRL's own tokenization equals innerpo's for {t['same_tokens']}/{t['n_pairs']} pairs; "
              f"mean tokens per pair seen (chosen + rejected sequences, real / padded): innerpo {fmt(inn['real'], '.1f')} / {fmt(inn['padded'], '.1f')}, "
              f"TRL {fmt(t['real'], '.1f')} / {fmt(t['padded'], '.1f')}")
    fps = {k: tuple(v["fingerprints"] or ()) for k, v in s.items() if k != "eval"}
    digests = {k: v["lora_digest"] for k, v in s.items() if k != "eval"}
    same_batches = len(set(fps.values())) == 1
    print(f"first two batches identical across configurations: {same_batches}; LoRA init identical: {len(set(digests.values())) == 1}")
    head = f"{'configuration':<16}{'s/step':>9}{'run medians':>22}{'pairs/s':>9}{'peak MB':>9}{'train MB':>9}{'loss step 1':>13}{'loss step 2':>13}{'innerpo x':>11}"
    print(head)
    print("-" * len(head))
    for k, v in s.items():
        if k == "eval":
            continue
        ratio = inn["pairs_s"] / v["pairs_s"] if inn and k != "innerpo" else None
        label = "naive fwd+bwd" if k == "naive" else k
        print(f"{label:<16}{fmt(v['s_step']):>9}{' '.join(fmt(x) for x in v['run_medians']):>22}{fmt(v['pairs_s'], '.2f'):>9}"
              f"{fmt(v['peak_mb'], '.0f'):>9}{fmt(v['train_peak_mb'], '.0f'):>9}{fmt(v['loss1'], '.6f'):>13}{fmt(v['loss2'], '.6f'):>13}{fmt(ratio, '.2f'):>11}")
    print("('innerpo x' = innerpo's pairs/s over this row's; naive has no optimizer step and no loss)")

    # reference costs and the 5-seed sweep
    if inn:
        n = inn["n_pairs"]
        steps_per_epoch = n / BATCH
        print(f"\nreference costs ({n} pairs): innerpo table build {fmt(inn['ref_build_s'], '.2f')} s, load (hit) {fmt(inn['ref_load_s'], '.2f')} s"
              + (f"; TRL precompute {fmt(s['trl_precompute']['precompute_s'], '.2f')} s per run" if "trl_precompute" in s else "")
              + (f"; InnerDPO table build {fmt(s['innerdpo']['ref_build_s'], '.2f')} s, load {fmt(s['innerdpo']['ref_load_s'], '.2f')} s" if "innerdpo" in s else ""))
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
        print(f"\nevaluation ({n} pairs, batch {EVAL_BATCH}, adapter + base): bare forward {fmt(e['bare'], '.2f')} s ({n / e['bare']:.1f} pairs/s); "
              f"score_pairs base cached {fmt(e['cached'], '.2f')} s ({n / e['cached']:.1f} pairs/s, {e['cached'] / e['bare']:.2f}x bare); "
              f"base cold {fmt(e['cold'], '.2f')} s ({n / e['cold']:.1f} pairs/s, {e['cold'] / e['bare']:.2f}x bare, two passes)")

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
        d2 = max(abs(inn["loss2"] - s[k]["loss2"]) for k in trl) if inn["loss2"] is not None and all(s[k]["loss2"] is not None for k in trl) else None
        targets.append(("first-step losses equal within 1e-4 (innerpo vs each TRL configuration)", d1 <= 1e-4 and same_batches,
                        f"max |diff| {d1:.2e}" + (f"; step 2: {d2:.2e}" if d2 is not None else "") + ("" if same_batches else "; batches differ!")))
        pk = min(s[k]["peak_mb"] for k in trl)
        targets.append(("innerpo peak memory <= TRL's (process RSS high-water mark)", inn["peak_mb"] <= pk,
                        f"{inn['peak_mb']:.0f} MB vs {pk:.0f} MB (lower TRL)"))
    if inn and "naive" in s:
        r = inn["s_step"] / s["naive"]["s_step"]
        targets.append(("innerpo whole step <= 1.0x naive forward+backward", r <= 1.0, f"{r:.2f}x"))
    if inn and "innerdpo" in s:
        r = s["innerdpo"]["pairs_s"] / inn["pairs_s"]
        targets.append(("InnerDPO >= 0.85x innerpo DPO pairs/s", r >= 0.85, f"{r:.2f}x"))
    if "eval" in s:
        r = s["eval"]["cached"] / s["eval"]["bare"]
        targets.append(("evaluation (base cached) <= 1.25x bare forward time", r <= 1.25, f"{r:.2f}x"))
    print(f"\ntargets ({dataset}):")
    for text, ok, detail in targets:
        print(f"  [{'PASS' if ok else 'FAIL'}] {text}: {detail}")
    return targets, speedup


def load_snapshot() -> str:
    try:
        return "load average " + " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return ""


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2-135m-instruct", help="smollm2-135m-instruct (bundled) or tiny-random")
    p.add_argument("--data", choices=("synthetic", "genies", "both"), default="both")
    p.add_argument("--genies-dir", default=str((REPO / ".." / "shared" / "data" / "genies").resolve()))
    p.add_argument("--genies-dist", default="alpaca_easy", help="GENIES distribution for --data genies/both")
    p.add_argument("--steps", type=int, default=1, help="timed optimizer steps per configuration and repeat (after 1 warm-up)")
    p.add_argument("--repeats", type=int, default=2, help="rounds of the alternating schedule (each a fresh process per configuration)")
    p.add_argument("--secondary-repeats", type=int, default=1,
                   help="rounds in which naive, innerdpo and eval also run (the first ones); the default keeps the whole run near 15 min")
    p.add_argument("--pairs", type=int, default=24, help="pairs in the dataset (reference passes cover all of them)")
    p.add_argument("--max-length", type=int, default=512, help="max prompt + completion tokens, the same for TRL and innerpo")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--b-init", type=float, default=0.03, help="std of the fixed LoRA-B init (0: peft's B = 0, loss = log 2 at step 1)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads per worker (0: torch's default). 1 by default: on this shared 2-core machine a second "
                        "OpenMP thread competing with other jobs makes every configuration several times slower and erratic")
    p.add_argument("--eval-rounds", type=int, default=1, help="bare / cached / cold rounds per eval worker (per repeat)")
    p.add_argument("--configs", default=",".join(CONFIGS), help="comma list from " + ",".join(CONFIGS + EXTRA_CONFIGS))
    p.add_argument("--log-dir", default=None, help="where worker logs go (default: a temp directory)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--dataset", default="synthetic", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        run_worker(args)
        return

    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    bad = set(configs) - set(CONFIGS) - set(EXTRA_CONFIGS)
    if bad:
        p.error(f"unknown configurations {sorted(bad)}")
    datasets = {"synthetic": ["synthetic"], "genies": ["genies"], "both": ["synthetic", "genies"]}[args.data]
    cache_root = prepare_cache(args.model)
    env = worker_env(cache_root)
    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="vs_trl_logs_"))
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"vs_trl: {args.model}, data {args.data}, configurations {','.join(configs)}; {os.cpu_count()} CPUs, {load_snapshot()} at start; worker logs in {log_dir}", flush=True)
    t_all = time.perf_counter()
    results: dict[str, dict] = {}
    try:
        run_all(args, datasets, configs, env, log_dir, results)
    finally:
        shutil.rmtree(cache_root, ignore_errors=True)  # reference tables, TRL output dirs; the model symlink, not its target
    speedups = []
    for dataset in datasets:
        _, sp = report(dataset, args, results[dataset])
        speedups.append(sp)
    print(f"\ntotal wall time {time.perf_counter() - t_all:.0f} s; {load_snapshot()} at the end")
    main_speedup = next((x for x in speedups if x is not None), None)
    print(f"speedup_vs_trl={fmt(main_speedup, '.3f', 'nan')}")


def run_all(args, datasets, configs, env, log_dir, results) -> None:
    for dataset in datasets:
        runs: dict[str, list[dict]] = {c: [] for c in configs if c not in SECONDARY_CONFIGS or args.secondary_repeats > 0}
        for rep in range(args.repeats):
            for c in configs:  # alternating: A B C ..., A B C ...
                if c in SECONDARY_CONFIGS and rep >= args.secondary_repeats:
                    continue
                r = call_worker(args, c, dataset, env, log_dir)
                runs[c].append(r)
                brief = f"median step {med(r['step_s']):.3f} s" if "step_s" in r else f"bare {med(r['bare_s']):.2f} s, cached {med(r['cached_s']):.2f} s"
                print(f"  [{dataset} {rep + 1}/{args.repeats}] {c:<15} {brief}  ({r['wall_s']:.0f} s wall, {load_snapshot()})", flush=True)
        results[dataset] = summarize(runs)


if __name__ == "__main__":
    main()
