"""The TRL worker: TRL 1.16's DPOTrainer on the same pairs, batches and LoRA init as innerpo,
its steps timed by a callback, its own tokenization checked against innerpo's pair by pair.

TRL (in the `test` extra) is a benchmark-only dependency: nothing in innerpo imports it.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

from .measure import batch_fingerprint, emit, reset_peak, step_stats, vm_hwm_mb
from .shared import BATCH, BETA, LORA_ALPHA, LORA_R, epoch_order, init_lora, make_cfg, prepare


def worker_trl(args, precompute: bool, bf16: bool = False) -> None:
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
            return {
                "prompt": p.prompt_messages(),
                "chosen": [{"role": "assistant", "content": p.chosen}],
                "rejected": [{"role": "assistant", "content": p.rejected}],
            }
        return {
            "prompt": p.prompt_text(),
            "chosen": p.chosen,
            "rejected": p.rejected,
        }  # TRL appends EOS, as PairTokenizer does

    ds = datasets.Dataset.from_list([row(pairs[i]) for i in order])
    out_dir = tempfile.mkdtemp(
        prefix="trl_out_", dir=os.environ.get("INNERPO_CACHE")
    )  # removed with the parent's cache root
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
        bf16=bf16,  # TRL's own bf16 mixed precision (its default) for the _bf16 configurations, else fp32
        activation_checkpointing=False,  # TRL defaults to gradient checkpointing; none here
        use_cpu=True,
        train_sampling_strategy="sequential",  # rows are already in innerpo's batch order
        report_to=[],
        save_strategy="no",
        disable_tqdm=True,
        seed=args.seed,
    )
    assert not targs.gradient_checkpointing and targs.bf16 == bf16 and not targs.fp16
    peft_config = LoraConfig(
        r=LORA_R, lora_alpha=LORA_ALPHA, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"
    )

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
        tuple(tds[k]["prompt_ids"]) == items[i].prompt
        and tuple(tds[k]["chosen_ids"]) == items[i].chosen
        and tuple(tds[k]["rejected_ids"]) == items[i].rejected
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
            seen["fp"].append(
                batch_fingerprint(inputs["input_ids"], inputs["attention_mask"], inputs["completion_mask"])
            )
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
    emit(
        {
            "config": ("trl_precompute" if precompute else "trl_default") + ("_bf16" if bf16 else ""),
            "step_s": times[1:],
            "warmup_s": times[0],
            "loss1": seen["loss"][0],
            "loss2": seen["loss"][1] if len(seen["loss"]) > 1 else None,
            "real_tok_per_pair": statistics.fmean(seen["real"]),
            "padded_tok_per_pair": statistics.fmean(seen["padded"]),
            "fingerprints": seen["fp"],
            "lora_digest": digest,
            "same_tokens": same,
            "n_pairs": len(items),
            "precompute_s": timing["precompute_s"],
            "setup_s": setup_s,
            "train_peak_mb": vm_hwm_mb() if peak.get("reset") else None,
            "threads": torch.get_num_threads(),
        }
    )
