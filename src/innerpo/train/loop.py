"""The training loop: one file, read top to bottom.

setup → (micro-batches → loss → backward) × grad_accum → average over processes → clip →
step → log/eval → checkpoint → save.
Everything method-specific lives behind `Method` (innerpo.methods.base): which forward
passes a batch needs, the loss, gradient edits after backward. Extension points for
later work are the plain functions below (`make_loader`, `optimizer_step`, `save_*`);
checkpoints, trackers, signals and data parallelism live in their own modules here.
"""

from __future__ import annotations

import math
import random
import signal
import time
from functools import partial
from pathlib import Path

import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_scheduler

from innerpo.data.batching import EpochBatchSampler, collate_items_indexed, item_length
from innerpo.data.sources import load_examples
from innerpo.data.tokenize import PairTokenizer
from innerpo.data.unpaired import tokenize_examples
from innerpo.errors import ConfigError
from innerpo.eval.periodic import held_out_eval
from innerpo.eval.report import evaluate_suite, tables, write_results
from innerpo.methods.build import build_method
from innerpo.models.checkpointing import enable_checkpointing
from innerpo.models.load import add_lora, load_base, model_settings
from innerpo.models.precision import accelerator_kwargs, precision_of, prepare_model
from innerpo.models.ref_cache import reference_table
from innerpo.train.allocator import keep_freed_memory
from innerpo.train.checkpoint import BatchStream, TrainState, load_checkpoint, resume_checkpoint, save_checkpoint
from innerpo.train.config import TrainConfig
from innerpo.train.distributed import any_process, average_gradients, check_backend, cpu_only, shared_run_dir
from innerpo.train.environment import record as record_environment
from innerpo.train.metrics import StepMetrics
from innerpo.train.run_dir import MetricsLog, new_run_dir, save_adapter, save_config, save_method_params, save_tokenizer
from innerpo.train.signals import Interrupted, stop_requests
from innerpo.train.trackers import log_final, parse_trackers, start_trackers, tracker_sink
from innerpo.train.validate import validate_train

DATA_SEED = 0


class NonFiniteLossError(RuntimeError):
    """Training met a NaN or infinite loss or gradient; the last good adapter was kept."""


def train(cfg: TrainConfig, evaluate: bool = True, resume: bool = False, on_eval=None) -> Path:
    """Train an adapter as `cfg` says; returns the run directory.

    resume: continue the run in `cfg.output_dir` from its newest complete checkpoint
    (`cfg` is the run's saved config; see innerpo.train.checkpoint).
    on_eval: called as on_eval(step, row) on the main process after each periodic
    evaluation after an update (row: the metrics.jsonl row); an exception it raises
    (a tuner's "prune this trial") ends training there.
    """
    t0 = time.time()
    validate_train(cfg)  # settings, data, suite: a bad input stops here, before anything is written
    precision = accelerator_kwargs(
        cfg.training.precision
    )  # refuses a precision this device cannot run, before any write
    # a step's large buffers reuse freed memory instead of page-faulting fresh pages (innerpo.train.allocator)
    keep_freed_memory()
    set_seed(cfg.training.seed)
    pairs = load_examples(
        cfg.data.dataset, cfg.data.split, cfg.data.genies_dir
    )  # pairs, or prompt/completion/label rows
    # The subset is fixed by the data, not the training seed: seeds of a sweep train on
    # the same pairs (and share one reference cache); the seed varies init and order.
    random.Random(DATA_SEED).shuffle(pairs)
    pairs = pairs[: cfg.data.max_train_pairs]
    method = build_method(cfg.method, cfg.method_name, pairs)  # the one build: paired or unpaired rows (KTO, SFT)
    trackers = parse_trackers(cfg.training.report_to)  # a missing extra fails before any output too
    check_backend()
    processes = PartialState(cpu=cpu_only())
    if cfg.data.batch_size % processes.num_processes:
        raise ConfigError(
            f"--data.batch_size={cfg.data.batch_size} must be a multiple of the {processes.num_processes} "
            "processes (each takes an equal shard of every batch)"
        )
    checkpoint = resume_checkpoint(Path(cfg.output_dir)) if resume else None
    run_dir = Path(cfg.output_dir) if resume else shared_run_dir(processes, lambda: new_run_dir(cfg))
    # split_batches: every process takes its shard of each batch, so N processes train on
    # the same batches as one process with the same --data.batch_size
    accelerator = Accelerator(
        cpu=cpu_only(),
        dataloader_config=DataLoaderConfiguration(split_batches=True),
        log_with=trackers or None,
        project_config=ProjectConfiguration(project_dir=str(run_dir), logging_dir=str(run_dir / "tensorboard")),
        **precision,
    )
    main = accelerator.is_main_process
    if accelerator.num_processes > 1:
        accelerator.print(
            f"data parallel: {accelerator.num_processes} processes ({accelerator.distributed_type.value}), "
            f"each {cfg.data.batch_size // accelerator.num_processes} of every {cfg.data.batch_size} "
            "pairs"
        )
    if main and not resume:
        save_config(run_dir, cfg)

    base, tok = load_base(cfg.model)
    model = prepare_model(add_lora(base, cfg.model, cfg.training.seed), cfg.training.precision, accelerator.device)
    if cfg.training.precision == "auto":
        accelerator.print(f"precision auto: {precision_of(model)} on {accelerator.device.type}")
    if cfg.training.gradient_checkpointing:  # recompute blocks in backward (innerpo.models.checkpointing)
        enable_checkpointing(model)
    method.bind(model)
    pair_tok = PairTokenizer(tok, cfg.data.max_length, cfg.data.truncation, cfg.data.chat_template)
    if main and not resume:
        save_tokenizer(run_dir, tok, pair_tok.settings())

    items, report = tokenize_examples(pair_tok, pairs, cfg.data.dataset)
    accelerator.print(report.describe(f"train data {cfg.data.dataset}"))
    periodic = held_out_eval(
        cfg.data,
        cfg.eval,
        pair_tok,
        pairs,
        tok.pad_token_id,
        every=cfg.training.eval_every,
        n_pairs=cfg.training.eval_pairs,
        beta=cfg.method.beta,
    )  # None when off (said why)
    if method.loss.uses_reference and method.cacheable_reference and cfg.training.ref_cache:
        settings = {**pair_tok.settings(), **model_settings(cfg.model), **method.reference_settings()}
        with accelerator.main_process_first():  # the main process builds the cache; the others then read it
            table, hit = reference_table(
                model, items, tok.pad_token_id, cfg.eval.batch_size, settings, method.reference_rows
            )
        method.use_reference_table(table)
        accelerator.print(f"reference pass: {'reused from cache' if hit else 'computed and cached'}")

    loader = make_loader(items, cfg, tok.pad_token_id)
    per_epoch = math.ceil(len(loader) / cfg.training.grad_accum)
    total_steps = cfg.training.max_steps or max(1, math.ceil(cfg.training.epochs * per_epoch))
    model, method, params, optimizer, loader, scheduler = prepare_training(
        accelerator, model, method, loader, cfg, total_steps
    )

    start_trackers(accelerator, cfg, run_dir, trackers)
    log = MetricsLog(run_dir / "metrics.jsonl", enabled=main, sink=tracker_sink(accelerator) if trackers else None)
    state = TrainState()
    if checkpoint:
        state = load_checkpoint(accelerator, checkpoint, model, method)
        log.truncate(state.log_bytes)  # rows a killed process wrote after its checkpoint
        t0 = time.time() - state.elapsed_s
        accelerator.print(f"resuming {run_dir} from {checkpoint.name}")
    elif periodic and not cfg.training.skip_first_eval:
        _eval_once(accelerator, periodic, model, log, step=0)
    if main:  # what this start ran on: versions, commit, machine (innerpo.train.environment)
        record_environment(run_dir, accelerator.device, state.step if checkpoint else None)
    batches = BatchStream(loader, state.epoch, state.position)
    bar = tqdm(
        range(state.step + 1, total_steps + 1),
        initial=state.step,
        total=total_steps,
        desc=f"train {cfg.method_name}",
        unit="step",
        disable=not main,
    )
    pairs_seen = state.pairs_seen
    with stop_requests() as stop:
        for step in bar:
            window = StepMetrics()
            for micro in range(cfg.training.grad_accum):
                batch = next(batches)
                out = method.loss(method.loss_inputs(model, batch))
                if any_process(accelerator, not torch.isfinite(out.loss)):  # every process stops together
                    _stop(
                        run_dir,
                        model,
                        f"loss is {out.loss.item()} at optimizer step {step}, micro-batch "
                        f"{micro + 1}/{cfg.training.grad_accum}",
                        step,
                    )
                accelerator.backward(out.loss / cfg.training.grad_accum)
                window.add(
                    {"loss": out.loss.detach(), **out.metrics, "padding_share": batch.padding_share}, batch.num_pairs
                )
                pairs_seen += batch.num_pairs * accelerator.num_processes
            average_gradients(accelerator, params)
            extra = method.after_backward(model)
            lr = scheduler.get_last_lr()[0]  # the rate this step's update uses
            grad_norm = optimizer_step(accelerator, params, optimizer, scheduler, cfg.training.max_grad_norm)
            if not math.isfinite(grad_norm):
                _stop(run_dir, model, f"gradient norm is {grad_norm} at optimizer step {step}", step)
            means = window.means(accelerator)
            bar.set_postfix(
                loss=f"{means['loss']:.4f}",
                acc=f"{means.get('rewards/accuracies', float('nan')):.2f}",
                margin=f"{means.get('rewards/margins', float('nan')):.3f}",
            )
            if step % cfg.training.log_every == 0 or step == total_steps:
                log.write(
                    {
                        "step": step,
                        "pairs_seen": pairs_seen,
                        "lr": lr,
                        "grad_norm": grad_norm,
                        **means,
                        **extra,
                        "elapsed_s": round(time.time() - t0, 2),
                    }
                )
            if periodic and periodic.due(step, total_steps):
                row = _eval_once(accelerator, periodic, model, log, step)
                if on_eval is not None and row is not None:
                    on_eval(step, row)
            signalled = any_process(accelerator, stop["signal"] is not None)
            if signalled or (cfg.training.save_every and step % cfg.training.save_every == 0):
                state = TrainState(
                    step, pairs_seen, round(time.time() - t0, 2), batches.epoch, batches.position, log.size()
                )
                saved = save_checkpoint(accelerator, run_dir, state, model, method, cfg.training.keep_last)
            if signalled:
                raise Interrupted(
                    stop["signal"] or signal.SIGTERM,
                    f"stopped by a signal after step {step}; checkpoint in {saved}. Continue with: innerpo "
                    f"train --resume {run_dir}",
                )
    bar.close()

    if main:
        save_adapter(run_dir, model)
        save_method_params(run_dir / "method.safetensors", method)
    accelerator.print(f"adapter saved in {run_dir / 'adapter'} ({time.time() - t0:.0f} s)")
    if evaluate and main:
        summary, pair_frame = evaluate_suite(model, tok, pair_tok, cfg.eval, cfg.data, model_settings(cfg.model))
        write_results(run_dir, summary, pair_frame)
        print(tables(summary))
        print(f"results in {run_dir}")
        log_final(accelerator, summary, tables(summary), total_steps)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return run_dir


def prepare_training(accelerator, model, method, loader, cfg: TrainConfig, total_steps: int):
    """AdamW over the adapter's and the method's trainable parameters, warmup then the
    schedule, optimizer, loader and scheduler passed through accelerate; the model is left
    in train mode.

    The model and method are only moved to the device, not wrapped (see
    innerpo.train.distributed for why, and how gradients are averaged instead).
    Returns (model, method, params, optimizer, loader, scheduler).
    """
    model, method = model.to(accelerator.device), method.to(accelerator.device)
    params = [p for p in list(model.parameters()) + list(method.parameters()) if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.training.lr, weight_decay=cfg.training.weight_decay)
    warmup = (
        cfg.training.warmup_steps
        if cfg.training.warmup_steps is not None
        else int(cfg.training.warmup_ratio * total_steps)
    )
    scheduler = get_scheduler(cfg.training.schedule, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)
    optimizer, loader, scheduler = accelerator.prepare(optimizer, loader, scheduler)
    model.train()
    return model, method, params, optimizer, loader, scheduler


def make_loader(items, cfg: TrainConfig, pad_id: int) -> DataLoader:
    lengths = [item_length(i) for i in items]
    sampler = EpochBatchSampler(
        len(items), cfg.data.batch_size, seed=cfg.training.seed, lengths=lengths if cfg.data.group_by_length else None
    )
    # Its own generator: a DataLoader draws a base seed each time an iterator starts, and
    # from the global torch RNG that would shift dropout after a resume (which starts one more).
    generator = torch.Generator().manual_seed(cfg.training.seed)
    return DataLoader(
        list(enumerate(items)),
        batch_sampler=sampler,
        collate_fn=partial(collate_items_indexed, pad_id=pad_id),
        generator=generator,
    )


def optimizer_step(accelerator, params, optimizer, scheduler, max_grad_norm: float) -> float:
    """Clip, step, schedule, zero; returns the pre-clip global gradient norm.

    A non-finite norm skips the update, so the weights stay the last good ones.
    """
    if max_grad_norm > 0:
        norm = float(accelerator.clip_grad_norm_(params, max_grad_norm))
    else:
        norm = float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params if p.grad is not None])))
    if math.isfinite(norm):
        optimizer.step()
        scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return norm


def _eval_once(accelerator, periodic, model, log: MetricsLog, step: int) -> dict | None:
    """The periodic evaluation, run by the main process alone while the others wait; its row (None elsewhere)."""
    row = periodic(model, log, step) if accelerator.is_main_process else None
    accelerator.wait_for_everyone()
    return row


def _stop(run_dir: Path, model, where: str, step: int) -> None:
    """Keep the last good adapter (weights before this step) and stop with a clear message."""
    if PartialState().is_main_process:
        save_adapter(run_dir, model)
    raise NonFiniteLossError(
        f"non-finite value: {where}. Training stopped; the adapter after step {step - 1} is saved in "
        f"{run_dir / 'adapter'}. Lower --training.lr or check the data."
    )
