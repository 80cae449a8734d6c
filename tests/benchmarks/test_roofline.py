"""The GEMM floor's FLOP count (benchmarks/roofline.py), by hand on one small linear layer."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import roofline  # noqa: E402


def test_flop_count_by_hand():
    # one Linear 4 -> 6, LoRA r = 2, hidden 4, vocab 10, n = 5 body tokens, m = 3 head tokens:
    # base forward 2·5·4·6 = 240, base input grad 240, LoRA 6·5·2·(4+6) = 600,
    # head forward 2·3·4·10 = 240, head input grad 240; total 1560
    gemms = roofline.step_gemms([(4, 6)], r=2, d=4, vocab=10, n=5, m=3)
    by_group = {}
    for group, shape, count in gemms:
        by_group[group] = by_group.get(group, 0) + count * roofline.gemm_flops(shape)
    assert by_group == {
        "base forward": 240,
        "base input grad": 240,
        "lora": 600,
        "head forward": 240,
        "head input grad": 240,
    }


def test_linear_shapes_skip_head_and_lora(tiny_model):
    from innerpo.models.config import ModelConfig
    from innerpo.models.load import add_lora

    model, _ = tiny_model
    shapes = roofline.linear_shapes(model)
    c = model.config
    assert len(shapes) == 7 * c.num_hidden_layers  # q, k, v, o, gate, up, down per block
    assert roofline.linear_shapes(add_lora(model, ModelConfig(base_model="tiny-random", lora_r=4), seed=0)) == shapes


def test_floor_is_flops_over_measured_speed():
    batches = [{"prompt": [3], "chosen": [2], "rejected": [1]}]
    out = roofline.floor(batches, [(8, 8)], r=2, d=8, vocab=16, layers=1, dtypes=(("fp32", torch.float32),))
    assert out["n_tokens"] == 6 and out["m_tokens"] == 3
    assert out["fp32"]["floor_s"] > 0
    assert abs(out["fp32"]["gflops"] - out["gflop"] / out["fp32"]["floor_s"]) < 1e-6 * out["fp32"]["gflops"]


def test_op_groups_sort_a_profiled_step_by_shape_and_name():
    """A hand-made step: one base GEMM, one rank-4 LoRA pair, the head over a 50-token
    vocabulary, a cast, an elementwise op and an AdamW step; each lands in its group and
    the per-step seconds add up to the profiled self time."""
    x = torch.randn(6, 8)
    w, a, b = torch.randn(8, 8), torch.randn(8, 4), torch.randn(4, 8, requires_grad=True)
    head = torch.randn(8, 50)
    opt = torch.optim.AdamW([b])
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(2):
            h = torch.mm(x, w) + torch.mm(torch.mm(x, a), b)  # base + LoRA
            logits = torch.mm(h.bfloat16().float(), head)  # a cast, then the head
            torch.logsumexp(logits, -1).sum().backward()
            opt.step()
    groups = roofline.op_groups(prof, steps=2, r=4, vocab=50)
    assert {
        "GEMM base (frozen linears)",
        "GEMM LoRA (rank 4)",
        "GEMM head",
        "dtype casts and copies",
        "optimizer (AdamW)",
        "elementwise (norms, rotary, SiLU, residual, LoRA scale, clipping)",
    } <= set(groups)
    assert list(groups.values()) == sorted(groups.values(), reverse=True)
    total = sum(e.self_cpu_time_total for e in prof.events()) / 1e6 / 2
    assert abs(sum(groups.values()) - total) < 1e-9


def test_scoring_pass_gemms_by_hand():
    """The long-shift evaluation's floor counts each body linear over the body tokens and
    the head over completion tokens, forward only (benchmarks/eval_long.py)."""
    import eval_long

    shapes = eval_long.scoring_gemms([(4, 6), (6, 4)], d=4, vocab=10, n=5, m=3)
    assert shapes == [(5, 4, 6), (5, 6, 4), (3, 4, 10)]
    assert sum(roofline.gemm_flops(s) for s in shapes) == 2 * 5 * 4 * 6 + 2 * 5 * 6 * 4 + 2 * 3 * 4 * 10  # 720
    more = eval_long.scoring_gemms([(4, 6), (6, 4)], d=4, vocab=10, n=6, m=3)
    assert sum(map(roofline.gemm_flops, more)) > 720  # one more body token, more work
