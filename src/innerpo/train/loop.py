"""The training loop: one file, read top to bottom.

setup → (micro-batches → loss → backward) × grad_accum → clip → step → log/eval → save.
Everything method-specific lives behind `Method` (innerpo.methods.base): which forward
passes a batch needs, the loss, gradient edits after backward. Extension points for
later work are the plain functions below (`make_loader`, `optimizer_step`, `save_*`).
"""

from __future__ import annotations

import math
import random
import time
from contextlib import nullcontext
from functools import partial
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from innerpo.config import TrainConfig
from innerpo.data.batching import EpochBatchSampler, collate_items_indexed, item_length
from innerpo.data.sources import load_examples, load_pairs
from innerpo.data.tokenize import PairTokenizer
from innerpo.data.unpaired import is_unpaired, tokenize_examples
from innerpo.eval.accuracy import score_pairs
from innerpo.eval.report import evaluate_suite, tables, write_results
from innerpo.eval.suites import get_suite
from innerpo.methods.base import build_method
from innerpo.methods.kto import unpaired_method
from innerpo.models.load import add_lora, load_base, model_settings
from innerpo.models.precision import accelerator_kwargs, prepare_model
from innerpo.models.ref_cache import reference_table
from innerpo.train.metrics import StepMetrics
from innerpo.train.run_dir import MetricsLog, new_run_dir, save_adapter, save_config, save_tokenizer


DATA_SEED = 0


class NonFiniteLossError(RuntimeError):
    """Training met a NaN or infinite loss or gradient; the last good adapter was kept."""


def train(cfg: TrainConfig, evaluate: bool = True) -> Path:
    """Train an adapter as `cfg` says; returns the run directory."""
    t0 = time.time()
    set_seed(cfg.training.seed)
    accelerator = Accelerator(**accelerator_kwargs(cfg.training.precision))  # refuses a precision the device cannot run
    method = build_method(cfg.method)  # validates hyperparameters before any slow work
    run_dir = new_run_dir(cfg)
    save_config(run_dir, cfg)

    base, tok = load_base(cfg.model)
    model = prepare_model(add_lora(base, cfg.model, cfg.training.seed), cfg.training.precision, accelerator.device)
    method.bind(model)
    pair_tok = PairTokenizer(tok, cfg.data.max_length, cfg.data.truncation, cfg.data.chat_template)
    save_tokenizer(run_dir, tok, pair_tok.settings())

    pairs = load_examples(cfg.data.dataset, cfg.data.split, cfg.data.genies_dir)  # pairs, or KTO's prompt/completion/label rows
    # The subset is fixed by the data, not the training seed: seeds of a sweep train on
    # the same pairs (and share one reference cache); the seed varies init and order.
    random.Random(DATA_SEED).shuffle(pairs)
    pairs = pairs[: cfg.data.max_train_pairs]
    if is_unpaired(pairs):
        method = unpaired_method(cfg.method, pairs)  # KTO only; refuses data lacking either label
        method.bind(model)
    items, report = tokenize_examples(pair_tok, pairs, cfg.data.dataset)
    accelerator.print(report.describe(f"train data {cfg.data.dataset}"))
    eval_items = _eval_subset(cfg, pair_tok)
    if method.loss.uses_reference and method.cacheable_reference and cfg.training.ref_cache:
        settings = {**pair_tok.settings(), **model_settings(cfg.model), **method.reference_settings()}
        table, hit = reference_table(model, items, tok.pad_token_id, cfg.eval.batch_size, settings, method.reference_rows)
        method.use_reference_table(table)
        accelerator.print(f"reference pass: {'reused from cache' if hit else 'computed and cached'}")

    loader = make_loader(items, cfg, tok.pad_token_id)
    per_epoch = math.ceil(len(loader) / cfg.training.grad_accum)
    total_steps = cfg.training.max_steps or max(1, math.ceil(cfg.training.epochs * per_epoch))
    model, method, params, optimizer, loader, scheduler = prepare_training(accelerator, model, method, loader, cfg, total_steps)

    log = MetricsLog(run_dir / "metrics.jsonl")
    if eval_items and cfg.training.eval_every:
        _periodic_eval(model, eval_items, tok, cfg, log, step=0)
    batches = _forever(loader)
    bar = tqdm(range(1, total_steps + 1), desc=f"train {cfg.method_name}", unit="step", disable=not accelerator.is_main_process)
    pairs_seen = 0
    for step in bar:
        window = StepMetrics()
        for micro in range(cfg.training.grad_accum):
            batch = next(batches)
            last = micro == cfg.training.grad_accum - 1
            with nullcontext() if last else accelerator.no_sync(model):
                out = method.loss(method.loss_inputs(model, batch))
                if not torch.isfinite(out.loss):
                    _stop(run_dir, model, f"loss is {out.loss.item()} at optimizer step {step}, micro-batch {micro + 1}/{cfg.training.grad_accum}", step)
                accelerator.backward(out.loss / cfg.training.grad_accum)
            window.add({"loss": out.loss.detach(), **out.metrics, "padding_share": batch.padding_share}, batch.num_pairs)
            pairs_seen += batch.num_pairs
        extra = method.after_backward(model)
        grad_norm = optimizer_step(accelerator, params, optimizer, scheduler, cfg.training.max_grad_norm)
        if not math.isfinite(grad_norm):
            _stop(run_dir, model, f"gradient norm is {grad_norm} at optimizer step {step}", step)
        means = window.means()
        bar.set_postfix(loss=f"{means['loss']:.4f}", acc=f"{means.get('rewards/accuracies', float('nan')):.2f}", margin=f"{means.get('rewards/margins', float('nan')):.3f}")
        if step % cfg.training.log_every == 0 or step == total_steps:
            log.write({"step": step, "pairs_seen": pairs_seen, "lr": scheduler.get_last_lr()[0], "grad_norm": grad_norm, **means, **extra, "elapsed_s": round(time.time() - t0, 2)})
        if eval_items and cfg.training.eval_every and (step % cfg.training.eval_every == 0 or step == total_steps):
            _periodic_eval(model, eval_items, tok, cfg, log, step)
    bar.close()

    model = accelerator.unwrap_model(model)
    save_adapter(run_dir, model)
    accelerator.print(f"adapter saved in {run_dir / 'adapter'} ({time.time() - t0:.0f} s)")
    if evaluate and accelerator.is_main_process:
        summary = evaluate_suite(model, tok, pair_tok, cfg.eval, cfg.data, model_settings(cfg.model))
        write_results(run_dir, summary, default_suite=True)
        print(tables(summary))
        print(f"results in {run_dir}")
    return run_dir


def prepare_training(accelerator, model, method, loader, cfg: TrainConfig, total_steps: int):
    """AdamW over the adapter's and the method's trainable parameters, warmup then cosine
    decay, everything passed through accelerate; the model is left in train mode.

    Returns (model, method, params, optimizer, loader, scheduler).
    """
    params = [p for p in list(model.parameters()) + list(method.parameters()) if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.training.lr, weight_decay=cfg.training.weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(cfg.training.warmup_ratio * total_steps), total_steps)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    if any(p.requires_grad for p in method.parameters()):
        method = accelerator.prepare(method)
    model.train()
    return model, method, params, optimizer, loader, scheduler


def make_loader(items, cfg: TrainConfig, pad_id: int) -> DataLoader:
    lengths = [item_length(i) for i in items]
    sampler = EpochBatchSampler(len(items), cfg.data.batch_size, seed=cfg.training.seed, lengths=lengths if cfg.data.group_by_length else None)
    return DataLoader(list(enumerate(items)), batch_sampler=sampler, collate_fn=partial(collate_items_indexed, pad_id=pad_id))


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


def _forever(loader):
    epoch = 0
    while True:
        loader.set_epoch(epoch)
        yield from loader
        epoch += 1


def _eval_subset(cfg: TrainConfig, pair_tok: PairTokenizer):
    """A fixed small held-out set for the periodic evaluation: the suite's in-domain shift."""
    if not cfg.training.eval_every:
        return []
    suite = get_suite(cfg.eval.suite)
    name = "in_domain" if "in_domain" in suite.shifts else next(iter(suite.shifts))
    shift = suite.shifts[name]
    pairs = load_pairs(shift.dataset, shift.split, cfg.data.genies_dir)[: cfg.training.eval_pairs]
    return pair_tok.tokenize_all(pairs, f"periodic eval ({shift.dataset})")[0]


def _periodic_eval(model, items, tok, cfg: TrainConfig, log: MetricsLog, step: int) -> None:
    scores = score_pairs(model, items, tok.pad_token_id, cfg.eval.batch_size, desc="periodic eval", with_base=step == 0)
    row = {"step": step, "eval/accuracy": scores["adapter"].accuracy, "eval/nll": scores["adapter"].nll}
    if "base" in scores:
        row.update({"eval/base_accuracy": scores["base"].accuracy, "eval/base_nll": scores["base"].nll})
    log.write(row)


def _stop(run_dir: Path, model, where: str, step: int) -> None:
    """Keep the last good adapter (weights before this step) and stop with a clear message."""
    save_adapter(run_dir, model)
    raise NonFiniteLossError(
        f"non-finite value: {where}. Training stopped; the adapter after step {step - 1} is saved in "
        f"{run_dir / 'adapter'}. Lower --training.lr or check the data."
    )
