#!/usr/bin/env python
"""One command for a GPU session (issue 21): innerpo's step against TRL's on a Llama-3.2-1B-shaped model.

    python benchmarks/gpu_check.py                      # one CUDA GPU, random-weight Llama-3.2-1B shape, < 8 min
    python benchmarks/gpu_check.py --model tiny-random  # CPU, tiny shapes, seconds (tests/benchmarks keeps it working)

The model is built from a LlamaConfig with Llama-3.2-1B's shapes (16 blocks, width 2048, MLP 8192,
32 query / 8 key-value heads, vocabulary 128256, tied head) and random weights: no hub access.
Text is random letters through innerpo's byte-level tiny tokenizer (one token per character, ids
inside the model's vocabulary), so innerpo and TRL read the same strings and the same token counts.

Rows, in one process each run in turn on the same batches (8 pairs, prompt 128 + completion
384 = 512 tokens, LoRA r16 all-linear, bf16 on CUDA, fp32 on CPU):
  innerpo dpo           the loop's DPO step (method.loss_inputs → loss → backward → clip → AdamW),
                        reference log-probs precomputed (innerpo.models.ref_cache.reference_table)
  innerpo dpo ckpt      the same with --training.gradient_checkpointing, also at 2048 tokens
  innerpo innerdpo      DPO + InnerDPO (hidden_loss=innerpo), reference states from the table
  trl precompute        TRL DPOTrainer, precompute_ref_log_probs=True, same LoRA, batch and precision
  packed eval           innerpo's no-grad scoring (innerpo.models.forward.logp_rows) vs a bare forward
  generation            innerpo's STaR decode loop (innerpo.star.generate.HFGenerator) vs batched generate
Per row: s/step (median after warm-up), pairs/s, peak memory (CUDA max allocated; RSS on CPU),
MFU = the step's GEMM FLOPs (benchmarks/roofline.py: base forward and input-gradient GEMMs, LoRA,
head) / step time / the card's bf16 dense peak (--peak-tflops; H100 SXM 989, H200 989, A100 312).
Targets (PASS/FAIL): innerpo ≥ 2× TRL pairs/s; MFU ≥ 30%; checkpointing ≥ 2× lower peak at 2048.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import string
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from roofline import gemm_flops, linear_shapes, step_gemms  # noqa: E402
from trl_compare.measure import max_rss_mb, reset_peak, step_stats, vm_hwm_mb  # noqa: E402

BATCH, LORA_R, LORA_ALPHA, BETA, LR = 8, 16, 32.0, 0.1, 1e-5
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}


def llama_1b_config(vocab: int, pad: int, eos: int):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
        num_key_value_heads=8, max_position_embeddings=131072, rope_theta=500000.0, tie_word_embeddings=True,
        pad_token_id=pad, eos_token_id=eos,
    )  # fmt: skip


def build(args, device):
    """(base model on device, tokenizer): the byte tokenizer with a tiny or a Llama-3.2-1B-shaped body."""
    from transformers import LlamaForCausalLM

    from innerpo.models import tiny

    tok = tiny.build_tokenizer()
    torch.manual_seed(0)
    if args.model == "tiny-random":
        model, _ = tiny.build()
    else:
        with torch.device(device):
            model = LlamaForCausalLM(llama_1b_config(128256, tok.pad_token_id, tok.eos_token_id))
    model = model.to(device=device, dtype=torch.bfloat16 if device.type == "cuda" else torch.float32)
    model.requires_grad_(False).eval()
    return model, tok


def text_pairs(n: int, prompt: int, completion: int, seed: int = 0):
    from innerpo.data.pairs import Pair

    rng = random.Random(seed)
    letters = string.ascii_lowercase + " "

    def s(k):
        return "".join(rng.choice(letters) for _ in range(k))

    # one token per character, and the tokenizer appends EOS to completions: completion - 1 letters
    return [Pair(s(prompt), s(completion - 1), s(completion - 1)) for _ in range(n)]


def peak_reset(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    else:
        reset_peak()


def peak_mb(device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() / 2**20
    return vm_hwm_mb() or max_rss_mb()


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def step_flops(model, tokens_per_pair: int, completion_per_pair: int) -> float:
    """GEMM FLOPs of one DPO step over a batch (roofline.step_gemms; attention not counted)."""
    cfg = model.config
    n, m = BATCH * 2 * tokens_per_pair, BATCH * 2 * completion_per_pair
    gemms = step_gemms(linear_shapes(model), LORA_R, cfg.hidden_size, cfg.vocab_size, n, m)
    return float(sum(c * gemm_flops(s) for _, s, c in gemms))


def innerpo_row(args, device, length: int, method_kw: dict, checkpointing: bool) -> dict:
    """innerpo's training step on `args.steps` batches, timed as the loop runs it."""
    from innerpo.data.batching import collate_indexed
    from innerpo.data.tokenize import PairTokenizer
    from innerpo.methods.build import build_method
    from innerpo.methods.config import MethodConfig
    from innerpo.models.checkpointing import enable_checkpointing
    from innerpo.models.config import ModelConfig
    from innerpo.models.load import add_lora
    from innerpo.models.precision import prepare_model
    from innerpo.models.ref_cache import reference_table

    base, tok = build(args, device)
    model = prepare_model(add_lora(base, ModelConfig(lora_r=LORA_R, lora_alpha=LORA_ALPHA), 0), args.precision, device)
    model.to(device)
    method = build_method(MethodConfig(beta=BETA, **method_kw))
    method.bind(model)
    method.to(device)
    prompt = length // 4
    pair_tok = PairTokenizer(tok, length, "drop", "off")
    pairs = text_pairs(BATCH * (args.steps + 1), prompt, length - prompt)
    items = pair_tok.tokenize_all(pairs, "gpu_check")[0]
    table, _ = reference_table(
        model,
        items,
        tok.pad_token_id,
        BATCH,
        {"gpu_check": length, **method.reference_settings()},
        method.reference_rows,
    )
    method.use_reference_table(table)
    if checkpointing:
        enable_checkpointing(model)
    params = [p for p in list(model.parameters()) + list(method.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=LR)
    batches = [
        collate_indexed(list(enumerate(items))[i : i + BATCH], tok.pad_token_id).to(device)
        for i in range(0, len(items), BATCH)
    ]
    model.train()
    marks = []
    for k, batch in enumerate(batches):
        if k == 1:
            peak_reset(device)
        out = method.loss(method.loss_inputs(model, batch))
        out.loss.backward()
        method.after_backward(model)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync(device)
        marks.append(time.perf_counter())
    step_s = statistics.median(step_stats(marks))
    flops = step_flops(model, length, length - prompt)
    row = {"step_s": step_s, "pairs_s": BATCH / step_s, "peak_mb": peak_mb(device), "flops": flops}
    del model, base, method, opt, batches, table
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def trl_row(args, device, length: int) -> dict:
    """TRL DPOTrainer with precompute_ref_log_probs on the same text pairs, LoRA and precision."""
    import tempfile

    import datasets
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import DPOConfig, DPOTrainer

    datasets.disable_progress_bars()
    base, tok = build(args, device)
    prompt = length // 4
    pairs = text_pairs(BATCH * (args.steps + 1), prompt, length - prompt)
    ds = datasets.Dataset.from_list([{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs])
    bf16 = args.precision == "bf16"
    targs = DPOConfig(
        output_dir=tempfile.mkdtemp(prefix="gpu_check_trl_"), per_device_train_batch_size=BATCH,
        max_steps=args.steps + 1, learning_rate=LR, warmup_steps=0, max_grad_norm=1.0, beta=BETA,
        loss_type=["sigmoid"], max_length=length + 8, precompute_ref_log_probs=True, bf16=bf16,
        activation_checkpointing=False, use_cpu=device.type != "cuda", train_sampling_strategy="sequential",
        report_to=[], save_strategy="no", disable_tqdm=True, seed=0,
    )  # fmt: skip
    lora = LoraConfig(r=LORA_R, lora_alpha=LORA_ALPHA, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = DPOTrainer(model=base, args=targs, train_dataset=ds, processing_class=tok, peft_config=lora)
    marks: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, a, state, control, **kw):
            if not marks:
                peak_reset(device)
                marks.append(time.perf_counter())

        def on_step_end(self, a, state, control, **kw):
            sync(device)
            marks.append(time.perf_counter())

    trainer.add_callback(Clock())
    trainer.train()
    step_s = statistics.median(step_stats(marks)[1:] or step_stats(marks))
    row = {"step_s": step_s, "pairs_s": BATCH / step_s, "peak_mb": peak_mb(device)}
    row["flops"] = step_flops(trainer.model, length, length - prompt)
    del trainer, base
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def eval_row(args, device, length: int) -> dict:
    """Packed no-grad scoring (logp_rows) against a bare model(input_ids, attention_mask) forward."""
    from innerpo.data.batching import collate_indexed
    from innerpo.data.tokenize import PairTokenizer
    from innerpo.models.forward import logp_rows
    from innerpo.models.precision import prepare_model

    base, tok = build(args, device)
    model = prepare_model(base, args.precision, device)
    prompt = length // 4
    items = PairTokenizer(tok, length, "drop", "off").tokenize_all(
        text_pairs(BATCH * args.steps, prompt, length - prompt, seed=1), "eval"
    )[0]
    batches = [
        collate_indexed(list(enumerate(items))[i : i + BATCH], tok.pad_token_id).to(device)
        for i in range(0, len(items), BATCH)
    ]

    def timed(fn) -> float:
        fn(batches[0])
        sync(device)
        t = time.perf_counter()
        for b in batches:
            fn(b)
        sync(device)
        return len(items) / (time.perf_counter() - t)

    with torch.no_grad():
        packed = timed(lambda b: logp_rows(model, b))
        bare = timed(lambda b: base(input_ids=b.input_ids, attention_mask=b.attention_mask, logits_to_keep=1))
    return {"packed_pairs_s": packed, "bare_pairs_s": bare}


def generation_row(args, device) -> dict:
    """innerpo's decode loop against transformers' batched generate, greedy, same prompts."""
    from innerpo.star.generate import GenSettings, HFGenerator

    base, tok = build(args, device)
    rng = random.Random(2)
    prompts = [[rng.randrange(3, len(tok)) for _ in range(64)] for _ in range(args.gen_prompts)]
    settings = GenSettings(max_new_tokens=args.gen_tokens, temperature=0.0, max_rows=len(prompts))
    gen = HFGenerator(base, tok)
    gen.generate(prompts[:2], 1, settings)
    sync(device)
    t = time.perf_counter()
    samples = gen.generate(prompts, 1, settings)
    sync(device)
    ours_s = time.perf_counter() - t
    ours_tokens = sum(s[0].n_tokens for s in samples)
    ids = torch.tensor(prompts, device=device)
    t = time.perf_counter()
    out = base.generate(
        input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=args.gen_tokens, do_sample=False,
        pad_token_id=tok.pad_token_id, eos_token_id=None,
    )  # fmt: skip
    sync(device)
    hf_s = time.perf_counter() - t
    return {"ours_tok_s": ours_tokens / ours_s, "hf_tok_s": (out.shape[1] - ids.shape[1]) * len(prompts) / hf_s}


def card_peak(args, device) -> float | None:
    if args.peak_tflops:
        return args.peak_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name()
    return next((v * 1e12 for k, v in PEAK_TFLOPS.items() if k in name), None)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="llama-3.2-1b-shape", choices=["llama-3.2-1b-shape", "tiny-random"])
    ap.add_argument("--steps", type=int, default=None, help="timed steps per row (default 6 on GPU, 2 on CPU)")
    ap.add_argument("--length", type=int, default=None, help="tokens per sequence (default 512; 64 for tiny)")
    ap.add_argument("--long", type=int, default=None, help="checkpointing's long length (default 2048; 128 for tiny)")
    ap.add_argument("--precision", default=None, help="default: bf16 on CUDA, fp32 on CPU")
    ap.add_argument("--peak-tflops", type=float, default=None, help="the card's dense bf16 peak (default: by name)")
    ap.add_argument("--skip", default="", help="comma list of rows to skip: trl,innerdpo,ckpt,eval,gen")
    ap.add_argument("--gen-prompts", type=int, default=32)
    ap.add_argument("--gen-tokens", type=int, default=None)
    args = ap.parse_args(argv)
    import os
    import tempfile

    os.environ["INNERPO_CACHE"] = tempfile.mkdtemp(prefix="gpu_check_cache_")  # reference tables of this run only
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tiny = args.model == "tiny-random"
    args.steps = args.steps or (2 if device.type == "cpu" else 6)
    args.length = args.length or (64 if tiny else 512)
    args.long = args.long or (128 if tiny else 2048)
    args.precision = args.precision or ("bf16" if device.type == "cuda" else "fp32")
    args.gen_tokens = args.gen_tokens or (16 if tiny else 128)
    if tiny:
        args.gen_prompts = min(args.gen_prompts, 4)
    skip = set(filter(None, args.skip.split(",")))
    peak = card_peak(args, device)
    card = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"device={card} model={args.model} precision={args.precision} batch={BATCH} pairs x {args.length} tokens")
    t0 = time.perf_counter()
    rows = {"innerpo dpo": innerpo_row(args, device, args.length, {}, False)}
    if "trl" not in skip:
        rows["trl precompute"] = trl_row(args, device, args.length)
    if "ckpt" not in skip:
        rows["innerpo dpo ckpt"] = innerpo_row(args, device, args.length, {}, True)
        rows[f"innerpo dpo @{args.long}"] = innerpo_row(args, device, args.long, {}, False)
        rows[f"innerpo dpo ckpt @{args.long}"] = innerpo_row(args, device, args.long, {}, True)
    if "innerdpo" not in skip:
        rows["innerpo innerdpo"] = innerpo_row(args, device, args.length, {"hidden_loss": "innerpo"}, False)
    unit = "GPU MB" if device.type == "cuda" else "RSS MB"
    print(f"{'row':<28}{'s/step':>9}{'pairs/s':>9}{'peak ' + unit:>14}{'MFU':>8}")
    for name, r in rows.items():
        mfu = f"{r['flops'] / r['step_s'] / peak:.1%}" if peak else "-"
        print(f"{name:<28}{r['step_s']:>9.3f}{r['pairs_s']:>9.2f}{r['peak_mb']:>14.0f}{mfu:>8}")
    if "eval" not in skip:
        e = eval_row(args, device, args.length)
        print(f"packed eval: {e['packed_pairs_s']:.2f} pairs/s; bare forward {e['bare_pairs_s']:.2f} pairs/s")
    if "gen" not in skip:
        g = generation_row(args, device)
        print(f"generation (greedy): innerpo {g['ours_tok_s']:.1f} tokens/s; batched generate {g['hf_tok_s']:.1f}")
    ours = rows["innerpo dpo"]
    targets = []
    if "trl precompute" in rows:
        ratio = ours["pairs_s"] / rows["trl precompute"]["pairs_s"]
        targets.append((f"innerpo >= 2x TRL pairs/s: {ratio:.2f}x", ratio >= 2))
    if peak:
        mfu = ours["flops"] / ours["step_s"] / peak
        targets.append((f"MFU >= 30%: {mfu:.1%}", mfu >= 0.30))
    else:
        targets.append(("MFU >= 30%: no card peak known (CPU, or pass --peak-tflops)", None))
    if f"innerpo dpo ckpt @{args.long}" in rows:
        saving = rows[f"innerpo dpo @{args.long}"]["peak_mb"] / rows[f"innerpo dpo ckpt @{args.long}"]["peak_mb"]
        targets.append((f"checkpointing lowers peak >= 2x at {args.long} tokens: {saving:.2f}x", saving >= 2))
    for text, ok in targets:
        print(f"target {'PASS' if ok else 'FAIL' if ok is False else 'N/A'}: {text}")
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
