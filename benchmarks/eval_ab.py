#!/usr/bin/env python
"""Long-shift evaluation, before and after, interleaved in one process (a quick A/B).

    python benchmarks/eval_ab.py N GENIES_DIR     # e.g. 32 ../shared/data/genies

The same passes benchmarks/eval_long.py times (adapter scored, base from the reference
cache): the previous pass in fp32, the current one in fp32 and in bf16, on the first N
pairs of GENIES alpaca_hard test (max length 512), two rounds in the order before, after,
after-bf16, so a load that changes during the run hits all three alike. One torch thread.
Prints each pass, the medians and the fp32 GEMM floor of the pass.
"""

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
torch.set_num_threads(1)
import eval_long

from innerpo.data.sources import load_pairs
from innerpo.data.tokenize import PairTokenizer
from innerpo.eval.config import EvalConfig
from innerpo.models import ref_cache
from innerpo.models.config import ModelConfig
from innerpo.models.forward import logp_rows
from innerpo.models.load import add_lora, load_base, model_settings
from innerpo.models.precision import prepare_model

n = int(sys.argv[1])
MT = EvalConfig().max_tokens_per_batch
pairs = load_pairs("genies:alpaca_hard", "test", sys.argv[2])[:n]
models = {}
for prec in ("fp32", "bf16"):
    mc = ModelConfig()
    base, tok = load_base(mc)
    m = prepare_model(add_lora(base, mc, 42), prec)
    with torch.no_grad():
        for k, p in m.named_parameters():
            if "lora_B" in k:
                p.normal_(0, 0.03, generator=torch.Generator().manual_seed(0))
    models[prec] = m
pt = PairTokenizer(tok, 512)
items, _ = pt.tokenize_all(pairs, "x")
settings = {**pt.settings(), **model_settings(ModelConfig())}
fns = {}
for prec, m in models.items():
    ref_cache.reference_table(
        m, items, tok.pad_token_id, 16, settings, logp_rows, max_tokens=MT
    )  # base cached, as in use
    p = eval_long.passes(m, items, tok.pad_token_id, 16, settings, MT)
    if prec == "fp32":
        fns["before_fp32"] = p["before"]
    fns[f"after_{prec}"] = p["after"]
res = {k: [] for k in fns}
for r in range(2):
    for k, fn in fns.items():
        t = time.perf_counter()
        s = fn()
        el = time.perf_counter() - t
        res[k].append(el)
        print(
            k,
            f"{el:.1f}s",
            f"{len(items) / el:.3f} pairs/s",
            "acc",
            round(s["adapter"].accuracy, 3),
            "base",
            round(s["base"].accuracy, 3),
            flush=True,
        )
for k, v in res.items():
    print(k, "median", f"{statistics.median(v):.1f}s", f"{len(items) / statistics.median(v):.3f} pairs/s")
f = eval_long.scoring_floor(models["fp32"], items)
print(
    f"fp32 GEMM floor {f['floor_fp32_s']:.1f}s; after_fp32 = {statistics.median(res['after_fp32']) / f['floor_fp32_s']:.2f}x the floor; "
    f"gain {statistics.median(res['before_fp32']) / statistics.median(res['after_fp32']):.2f}x"
)
