"""innerpo's workers, one configuration per process: the DPO step (and InnerDPO, bf16, without
the shared-prompt forward) run from the loop's own pieces, a naive forward+backward on the same
batches, evaluation against a bare forward, the GEMM floor (benchmarks/roofline.py) and the
long-shift evaluation (benchmarks/eval_long.py)."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from .measure import batch_fingerprint, emit, reset_peak, step_stats, timed_rounds, vm_hwm_mb
from .shared import BETA, EVAL_BATCH, LORA_R, init_lora, make_cfg, precision_of, prepare


def worker_innerpo(args, name: str, profile: bool = False) -> None:
    """innerpo's training step, as innerpo.train.loop.train runs it (its pieces, its order).

    profile: run the timed steps (all but the warm-up) under torch.profiler and add their
    self CPU time per step by op group (roofline.op_groups) to the result; the step times
    then include the profiler's own overhead (benchmarks/step_profile.py)."""
    import contextlib

    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from innerpo.methods.build import build_method
    from innerpo.methods.config import MethodConfig
    from innerpo.models import ref_cache
    from innerpo.models.load import add_lora, load_base, model_settings
    from innerpo.models.precision import prepare_model
    from innerpo.train.allocator import keep_freed_memory
    from innerpo.train.checkpoint import BatchStream
    from innerpo.train.loop import make_loader, optimizer_step, prepare_training
    from innerpo.train.metrics import StepMetrics
    from innerpo.train.run_dir import MetricsLog

    if name == "innerpo_single":
        from innerpo.models import forward

        forward.SHARED_PROMPT_MAX_SHARE = 0.0  # every batch takes the single [2B, T] pass
    mcfg = MethodConfig(
        losses=["dpo"], weights=[1.0], beta=BETA, hidden_loss="innerpo" if name == "innerdpo" else "none"
    )
    cfg = make_cfg(args, mcfg, precision_of(name))
    keep_freed_memory()  # as train() does first
    set_seed(cfg.training.seed)
    accelerator = Accelerator()
    method = build_method(cfg.method)
    base, tok = load_base(cfg.model)
    model = prepare_model(add_lora(base, cfg.model, cfg.training.seed), cfg.training.precision, accelerator.device)
    method.bind(model)
    pair_tok, _, items = prepare(args, tok)
    digest = init_lora(model, args.seed, args.b_init)

    # reference table: a miss (build) into a fresh root, then a hit as the next seed's run sees it
    assert method.loss.uses_reference and method.cacheable_reference
    settings = {**pair_tok.settings(), **model_settings(cfg.model), **method.reference_settings()}
    root = Path(
        tempfile.mkdtemp(prefix="ref_", dir=os.environ.get("INNERPO_CACHE"))
    )  # removed with the parent's cache root
    t = time.perf_counter()
    table, hit = ref_cache.reference_table(
        model, items, tok.pad_token_id, cfg.eval.batch_size, settings, method.reference_rows, root=root
    )
    build_s = time.perf_counter() - t
    assert not hit
    ref_cache._FINGERPRINTS.clear()  # a new run hashes the base weights again
    t = time.perf_counter()
    table, hit = ref_cache.reference_table(
        model, items, tok.pad_token_id, cfg.eval.batch_size, settings, method.reference_rows, root=root
    )
    load_s = time.perf_counter() - t
    assert hit
    method.use_reference_table(table)

    # --- from here on, innerpo.train.loop.train, step for step -------------------------
    loader = make_loader(items, cfg, tok.pad_token_id)
    total_steps = cfg.training.max_steps
    model, method, params, optimizer, loader, scheduler = prepare_training(
        accelerator, model, method, loader, cfg, total_steps
    )
    log = MetricsLog(root / "metrics.jsonl")
    batches = BatchStream(loader)

    losses, real, padded, fps = [], [], [], []
    peak_reset = reset_peak()
    marks = [time.perf_counter()]
    profiler = contextlib.nullcontext()
    for step in range(1, total_steps + 1):
        if profile and step == 2:
            profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True)
            profiler.__enter__()
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
    profiler.__exit__(None, None, None)
    times = step_stats(marks)
    groups = None
    if profile:
        import roofline

        groups = roofline.op_groups(profiler, total_steps - 1, LORA_R, model.config.vocab_size)
    emit(
        {
            "config": name,
            "step_s": times[1:],
            "profile": groups,
            "warmup_s": times[0],
            "loss1": losses[0],
            "loss2": losses[1] if len(losses) > 1 else None,
            "real_tok_per_pair": statistics.fmean(real),
            "padded_tok_per_pair": statistics.fmean(padded),
            "fingerprints": fps,
            "lora_digest": digest,
            "n_pairs": len(items),
            "ref_build_s": build_s,
            "ref_load_s": load_s,
            "train_peak_mb": vm_hwm_mb() if peak_reset else None,
            "threads": torch.get_num_threads(),
        }
    )


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
    emit(
        {
            "config": "naive",
            "step_s": times[1:],
            "warmup_s": times[0],
            "fingerprints": fps,
            "lora_digest": digest,
            "n_pairs": len(items),
            "train_peak_mb": vm_hwm_mb() if peak_reset else None,
            "threads": torch.get_num_threads(),
        }
    )


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
    order = sorted(
        range(len(items)), key=lambda i: len(items[i].prompt) + max(len(items[i].chosen), len(items[i].rejected))
    )
    batches = [collate([items[i] for i in order[s : s + EVAL_BATCH]], pad) for s in range(0, len(order), EVAL_BATCH)]

    def bare():
        model.eval()
        with torch.no_grad():
            for b in batches:
                model(input_ids=b.input_ids, attention_mask=b.attention_mask)

    # the first evaluation of this base model on these pairs builds the base table (a cache miss; also the warm-up)
    reference_table(model, items, pad, EVAL_BATCH, settings, logp_rows)
    fns = {
        "bare": bare,
        "cached": lambda: score_pairs(model, items, pad, EVAL_BATCH, base_settings=settings),
        "cold": lambda: score_pairs(model, items, pad, EVAL_BATCH, base_settings=None),
    }
    runs = timed_rounds(fns, args.eval_rounds)
    emit(
        {
            "config": "eval",
            "n_pairs": len(items),
            **{f"{k}_s": v for k, v in runs.items()},
            "threads": torch.get_num_threads(),
        }
    )


def worker_roofline(args) -> None:
    """The GEMM floor of the innerpo step on the timed batches (benchmarks/roofline.py)."""
    import roofline
    import torch

    from innerpo.models.load import add_lora, load_base
    from innerpo.train.loop import make_loader

    cfg = make_cfg(args)
    base, tok = load_base(cfg.model)
    model = add_lora(base, cfg.model, cfg.training.seed)
    _, _, items = prepare(args, tok)
    loader = make_loader(items, cfg, tok.pad_token_id)
    loader.batch_sampler.set_epoch(0)
    timed = list(loader)[1 : cfg.training.max_steps]  # the steps after the warm-up, as the step workers time them
    batches = [
        {
            "prompt": [len(items[i].prompt) for i in b.index.tolist()],
            "chosen": [len(items[i].chosen) for i in b.index.tolist()],
            "rejected": [len(items[i].rejected) for i in b.index.tolist()],
        }
        for b in timed
    ]
    c = model.config
    out = roofline.floor(
        batches, roofline.linear_shapes(model), LORA_R, c.hidden_size, c.vocab_size, c.num_hidden_layers
    )
    emit({"config": "roofline", **out, "n_pairs": len(items), "threads": torch.get_num_threads()})


def worker_eval_long(args, precision: str) -> None:
    import eval_long
    import torch

    out = eval_long.run(args, precision, init_lora, EVAL_BATCH)
    emit({"config": "eval_long" + ("_bf16" if precision == "bf16" else ""), **out, "threads": torch.get_num_threads()})
