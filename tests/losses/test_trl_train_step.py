"""One whole DPO training step on tiny-random: TRL 1.16's DPOTrainer against innerpo,
on the identical batch, with the same loss (sigmoid DPO, β = 0.1).

Setup. Both sides start from the same tiny-random Llama (``tiny.build()`` is seeded) with
the same LoRA config (r = 4, α = 8, all linear layers, no dropout). TRL builds its own
adapter from ``peft_config``; its LoRA B matrices are then set to fixed non-zero values
(at init B = 0, so policy = reference and every DPO loss is log 2 whatever the inputs)
and all LoRA weights are copied by name into innerpo's adapter (``models.load.add_lora``),
so the two policies are the same function. Each reference is its model with the adapter
disabled (TRL: ``use_adapter(..., None)``; innerpo: ``model.disable_adapter()``).

Equality of inputs. TRL tokenizes the text itself (DPOTrainer always runs
``_prepare_dataset``), so both sides get the same conversational rows and tokenize them
their own way: TRL renders ``prompt`` with the generation prompt and ``prompt + chosen``
with the chat template and splits at the common prefix; innerpo renders the same two
strings and tokenizes the prompt and the completion text separately
(``PairTokenizer``). The tiny tokenizer maps every byte to one token (no merges), so the
two token sequences coincide; this is not assumed but checked: the batch TRL's
``compute_loss`` receives (``input_ids``, ``attention_mask``, ``completion_mask``, all
pairs in one batch, no truncation) is compared row by row with innerpo's collated
PairBatch (TRL's sampler may permute rows; rows are compared as a sorted list).

Compared: the first step's loss (within 1e-5), every LoRA gradient of that step (TRL's
read just before ``optimizer.step`` with clipping off), and every LoRA weight after one
AdamW step (lr 1e-3, no warmup, no weight decay; innerpo through the loop's
``optimizer_step``).
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("trl")

from innerpo.data.batching import collate  # noqa: E402
from innerpo.data.pairs import Pair  # noqa: E402
from innerpo.data.tokenize import PairTokenizer  # noqa: E402
from innerpo.methods.build import build_method
from innerpo.methods.config import MethodConfig
from innerpo.models import tiny  # noqa: E402
from innerpo.models.config import ModelConfig  # noqa: E402
from innerpo.models.load import add_lora  # noqa: E402

ROWS = [
    ("What is 2 + 2?", "4", "5, I think"),
    ("Name a colour.", "Blue.", "A car"),
    ("Say hi.", "Hi there!", "no"),
    ("Capital of France?", "Paris", "Lyon, the capital city of France"),
]
LR = 1e-3
BETA = 0.1


def lora_params(model) -> dict[str, torch.nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if "lora_" in n}


def test_one_dpo_step_matches_trl(tmp_path):
    import datasets
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import DPOConfig, DPOTrainer

    mcfg = ModelConfig(base_model="tiny-random", lora_r=4, lora_alpha=8.0, lora_dropout=0.0)

    # --- TRL -----------------------------------------------------------------------------
    trl_base, tok = tiny.build()
    ds = datasets.Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": q}],
                "chosen": [{"role": "assistant", "content": c}],
                "rejected": [{"role": "assistant", "content": r}],
            }
            for q, c, r in ROWS
        ]
    )
    args = DPOConfig(
        output_dir=str(tmp_path / "trl"),
        per_device_train_batch_size=len(ROWS),
        max_steps=1,
        learning_rate=LR,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=0.0,
        optim="adamw_torch",
        beta=BETA,
        loss_type=["sigmoid"],
        max_length=None,
        precompute_ref_log_probs=False,
        use_cpu=True,
        bf16=False,  # TRL's configs default to bf16 mixed precision; innerpo trains in float32 on CPU
        activation_checkpointing=False,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        dataloader_num_workers=0,
        seed=0,
    )
    peft_config = LoraConfig(
        r=mcfg.lora_r, lora_alpha=mcfg.lora_alpha, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"
    )
    trainer = DPOTrainer(model=trl_base, args=args, train_dataset=ds, processing_class=tok, peft_config=peft_config)
    trl_model = trainer.model
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for n, p in lora_params(trl_model).items():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)

    # --- innerpo: same base, adapter weights copied from TRL's ------------------------
    model = add_lora(tiny.build()[0], mcfg, seed=0)
    ours, theirs = lora_params(model), lora_params(trl_model)
    assert set(ours) == set(theirs) and ours
    with torch.no_grad():
        for n, p in ours.items():
            p.copy_(theirs[n])
    start = {n: p.detach().clone() for n, p in ours.items()}

    # --- TRL's step, recording its batch, loss and gradients --------------------------
    seen = {}
    real_compute_loss = trainer.compute_loss

    def compute_loss(model_, inputs, *a, **k):
        loss = real_compute_loss(model_, inputs, *a, **k)
        seen.setdefault("inputs", {k: v.detach().clone() for k, v in inputs.items()})
        seen.setdefault("loss", loss.detach().item())
        return loss

    class GradSpy(TrainerCallback):
        def on_pre_optimizer_step(self, args, state, control, **kwargs):
            seen["grads"] = {n: p.grad.detach().clone() for n, p in lora_params(trl_model).items()}

    trainer.compute_loss = compute_loss
    trainer.add_callback(GradSpy())
    trainer.train()

    # --- innerpo's step on the same pairs ------------------------------------------------
    pairs = [Pair((("user", q),), c, r) for q, c, r in ROWS]
    items, report = PairTokenizer(tok, max_length=4096).tokenize_all(pairs, "rows")
    assert report.kept == len(ROWS) and not report.prompt_truncated
    batch = collate(items, tok.pad_token_id)

    # identical inputs, row by row (TRL's sampler may order the pairs differently)
    def rows(ids, attn, comp):
        b = ids.shape[0] // 2
        as_rows = [
            (
                tuple(ids[i][attn[i].bool()].tolist()),
                tuple(comp[i][attn[i].bool()].long().tolist()),
                tuple(ids[i + b][attn[i + b].bool()].tolist()),
                tuple(comp[i + b][attn[i + b].bool()].long().tolist()),
            )
            for i in range(b)
        ]
        return sorted(as_rows)

    t = seen["inputs"]
    assert t["input_ids"].shape == batch.input_ids.shape
    assert rows(t["input_ids"], t["attention_mask"], t["completion_mask"]) == rows(
        batch.input_ids, batch.attention_mask, batch.completion_mask
    )

    from innerpo.train.loop import optimizer_step

    model.train()
    method = build_method(MethodConfig(losses=["dpo"], weights=[1.0], beta=BETA))
    out = method.loss(method.loss_inputs(model, batch))
    assert abs(out.loss.item() - torch.log(torch.tensor(2.0)).item()) > 1e-3, "policy must differ from reference"
    print(f"innerpo {out.loss.item():.8f}  TRL {seen['loss']:.8f}")
    assert out.loss.item() == pytest.approx(seen["loss"], abs=1e-5)

    out.loss.backward()
    # atol 1e-7: innerpo's reference log-probs come from the packed no-grad pass (innerpo.models.packed),
    # TRL's from a padded one; they agree to float rounding (~1e-6 relative), which moves
    # gradient entries near zero by a few 1e-8 (gradients here: median 5e-4, largest 8e-2)
    for n, p in ours.items():
        torch.testing.assert_close(p.grad, seen["grads"][n], rtol=1e-4, atol=1e-7, msg=lambda m: f"{n}: {m}")

    class _Acc:  # the loop's optimizer_step only needs clip_grad_norm_ from accelerate
        @staticmethod
        def clip_grad_norm_(params, max_norm):
            return torch.nn.utils.clip_grad_norm_(params, max_norm)

    params = list(ours.values())
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    optimizer_step(_Acc(), params, opt, sched, max_grad_norm=0.0)
    moved = 0.0
    for n, p in ours.items():
        torch.testing.assert_close(p.detach(), theirs[n].detach(), rtol=0, atol=1e-6, msg=lambda m: f"{n}: {m}")
        moved = max(moved, (p.detach() - start[n]).abs().max().item())
    assert moved > LR / 2, "the step must move the adapter"
