"""The matrix-multiply floor of innerpo's DPO step: FLOPs it must do / GEMM speed at those shapes.

Imported by vs_trl.py (its `roofline` worker); measured in the same run as the steps it is
compared with. The count, per batch of B pairs with real (unpadded) token counts, prompt
P_i and completions C_i (chosen), R_i (rejected), for every nn.Linear of the decoder
(in → out; SmolLM2: q, k, v, o, gate, up, down in each of 30 blocks) and LoRA rank r:

  body tokens      n = Σ_i (P_i + C_i + R_i)   (each prompt once: innerpo's shared-prompt pass)
  head tokens      m = Σ_i (C_i + R_i)          (log-probs of completion tokens only)
  base forward     2·n·in·out   per linear
  base backward    2·n·in·out   per linear: the input gradient only (the base is frozen,
                                no weight gradient), down to the first block's LoRA inputs
  LoRA             6·n·r·(in + out) per linear: forward, input gradient, weight gradients of A and B
  head             2·m·d·V forward + 2·m·d·V input gradient (tied/frozen head: no weight gradient)

Not counted: attention's score and value products (QK^T, AV; printed as a share of the
count), elementwise work (norms, activations, rotary, softmax, the optimizer) and the
reference, which is read from the cache. The floor is Σ_GEMMs FLOPs / (that GEMM's own
measured FLOP/s): each distinct [M×K]·[K×N] shape is timed with torch.mm in fp32 and in
bf16 on this machine, one thread, in the same process. So a step at 1.0× its floor would
be doing nothing but these GEMMs at the speed torch reaches on them in isolation.
"""

from __future__ import annotations

import statistics
import time

import torch


def linear_shapes(model) -> list[tuple[int, int]]:
    """(in, out) of every nn.Linear of the decoder body (not the LM head; LoRA's own excluded)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    head = base.get_output_embeddings()
    out = []
    for name, module in base.named_modules():
        if type(module) is torch.nn.Linear and module is not head and "lora_" not in name:
            out.append((module.in_features, module.out_features))
    return out


def step_gemms(
    linears: list[tuple[int, int]], r: int, d: int, vocab: int, n: int, m: int
) -> list[tuple[str, tuple[int, int, int], int]]:
    """(group, (M, K, N), count) of every GEMM a step must run: an [M×K]·[K×N] product, count times."""
    gemms: dict[tuple[str, tuple[int, int, int]], int] = {}

    def add(group, shape):
        gemms[(group, shape)] = gemms.get((group, shape), 0) + 1

    for k_in, k_out in linears:
        add("base forward", (n, k_in, k_out))
        add("base input grad", (n, k_out, k_in))
        add("lora", (n, k_in, r))  # A forward
        add("lora", (n, r, k_out))  # B forward
        add("lora", (n, k_out, r))  # input grad through B
        add("lora", (n, r, k_in))  # input grad through A
        add("lora", (k_out, n, r))  # grad of B: dY^T · (X A)
        add("lora", (r, n, k_in))  # grad of A: (dY B)^T · X
    add("head forward", (m, d, vocab))
    add("head input grad", (m, vocab, d))
    return [(g, s, c) for (g, s), c in gemms.items()]


def gemm_flops(shape: tuple[int, int, int]) -> int:
    m, k, n = shape
    return 2 * m * k * n


def attention_flops(batches: list[dict], d: int, layers: int) -> float:
    """QK^T and AV forward + backward (≈ 3× forward), causal (half the square), per step, mean over batches."""
    per = []
    for b in batches:
        f = 0.0
        for p, c, rj in zip(b["prompt"], b["chosen"], b["rejected"]):
            f += sum(t * t for t in (p, p + c, p + rj)) - p * p  # prompt once, completions attend to it
        per.append(3 * 2 * 2 * d * layers * f / 2)
    return statistics.fmean(per)


def time_gemm(shape: tuple[int, int, int], dtype: torch.dtype, min_s: float = 0.15) -> float:
    """Seconds of one torch.mm at `shape` in `dtype` (median of runs after a warm-up)."""
    m, k, n = shape
    g = torch.Generator().manual_seed(0)
    a = torch.randn(m, k, generator=g).to(dtype)
    b = torch.randn(k, n, generator=g).to(dtype)
    torch.mm(a, b)
    times = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < min_s and len(times) < 50):
        t = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def floor(
    batches: list[dict],
    linears,
    r: int,
    d: int,
    vocab: int,
    layers: int,
    dtypes=(("fp32", torch.float32), ("bf16", torch.bfloat16)),
) -> dict:
    """The step's GEMM floor per precision, at the mean token counts of `batches`.

    batches: per step {"prompt": [P_i], "chosen": [C_i], "rejected": [R_i]} real token counts.
    """
    n = round(
        statistics.fmean(sum(p + c + rj for p, c, rj in zip(b["prompt"], b["chosen"], b["rejected"])) for b in batches)
    )
    m = round(statistics.fmean(sum(c + rj for c, rj in zip(b["chosen"], b["rejected"])) for b in batches))
    gemms = step_gemms(linears, r, d, vocab, n, m)
    groups: dict[str, float] = {}
    for g, s, c in gemms:
        groups[g] = groups.get(g, 0.0) + c * gemm_flops(s)
    total = sum(groups.values())
    out = {
        "n_tokens": n,
        "m_tokens": m,
        "gflop": total / 1e9,
        "gflop_by_group": {g: f / 1e9 for g, f in groups.items()},
        "attention_share": attention_flops(batches, d, layers) / total,
    }
    for label, dtype in dtypes:
        seconds = {}
        for _, s, _ in gemms:
            if s not in seconds:
                seconds[s] = time_gemm(s, dtype)
        floor_s = sum(c * seconds[s] for _, s, c in gemms)
        out[label] = {
            "floor_s": floor_s,
            "gflops": total / floor_s / 1e9,
            "gflops_by_shape": {f"{s[0]}x{s[1]}x{s[2]}": gemm_flops(s) / t / 1e9 for s, t in seconds.items()},
        }
    return out


def print_section(r: dict, step_s: dict) -> dict[str, float]:
    """Print the count and the floor beside the measured steps; returns {precision: step / floor}."""
    groups = ", ".join(f"{g} {f:.1f}" for g, f in r["gflop_by_group"].items())
    print(
        f"\nroofline (GEMM floor of the innerpo DPO step, mean timed batch: {r['n_tokens']} body tokens, {r['m_tokens']} head tokens): "
        f"{r['gflop']:.1f} GFLOP ({groups}); attention products, not counted, would add {100 * r['attention_share']:.1f}%"
    )
    ratios = {}
    for prec in ("fp32", "bf16"):
        f = r[prec]
        shapes = ", ".join(f"{k} {v:.0f}" for k, v in list(f["gflops_by_shape"].items())[:4])
        line = f"  {prec}: same-shape GEMMs run at {f['gflops']:.0f} GFLOP/s overall (e.g. {shapes} GFLOP/s), floor {f['floor_s']:.3f} s/step"
        if step_s.get(prec):
            ratios[prec] = step_s[prec] / f["floor_s"]
            line += f"; innerpo step {step_s[prec]:.3f} s = {ratios[prec]:.2f}x the floor"
        print(line)
    return ratios


# --- what a profiled step spends beyond the floor --------------------------------------------

ELEMENTWISE = {
    "aten::mul",
    "aten::mul_",
    "aten::add",
    "aten::add_",
    "aten::sub",
    "aten::div",
    "aten::div_",
    "aten::neg",
    "aten::pow",
    "aten::rsqrt",
    "aten::sqrt",
    "aten::mean",
    "aten::sum",
    "aten::silu",
    "aten::silu_backward",
    "aten::cat",
    "aten::exp",
    "aten::clone",
    "aten::index_add",
    "aten::gather",
    "aten::embedding",
    "aten::embedding_dense_backward",
    "aten::index",
    "aten::index_select",
    "aten::slice_backward",
    "aten::lerp_",
    "aten::addcdiv_",
    "aten::addcmul_",
    "aten::linalg_vector_norm",
    "aten::_foreach_norm",
    "aten::clamp",
    "aten::sigmoid",
    "aten::where",
    "aten::masked_fill",
    "aten::log_sigmoid_forward",
    "aten::log_sigmoid_backward",
    "aten::logsumexp",
}
ALLOC = {
    "aten::fill_",
    "aten::zero_",
    "aten::zeros",
    "aten::zeros_like",
    "aten::empty",
    "aten::empty_strided",
    "aten::empty_like",
}


def op_group(event, r: int, vocab: int) -> str:
    """The group of one profiler event (self time), by op name and input shapes."""
    parent = event
    while parent is not None:
        if parent.name.startswith("Optimizer.step"):
            return "optimizer (AdamW)"
        parent = parent.cpu_parent
    name = event.name
    shapes = [tuple(s) for s in (event.input_shapes or []) if isinstance(s, (list, tuple)) and len(s)]
    dims = {d for s in shapes for d in s}
    if name in ("aten::mm", "aten::addmm", "aten::bmm"):
        (m, k), n = shapes[0][-2:], shapes[1][-1]
        if r in (m, k, n):  # A or B forward, an input gradient through them, or their weight gradients
            return f"GEMM LoRA (rank {r})"
        return "GEMM head" if vocab in dims else "GEMM base (frozen linears)"
    if "scaled_dot_product" in name or "flash_attention" in name:
        return "attention kernels"
    if vocab in dims:
        return "vocab-wide elementwise (log-sum-exp, casts)"
    if name in ("aten::copy_", "aten::_to_copy"):
        return "dtype casts and copies"
    if name in ELEMENTWISE:
        return "elementwise (norms, rotary, SiLU, residual, LoRA scale, clipping)"
    if name in ALLOC:
        return "allocation and zero-fill"
    return "framework (autograd engine, views, dispatch)"


def op_groups(prof, steps: int, r: int, vocab: int) -> dict[str, float]:
    """Self CPU seconds per step by op group over a torch.profiler run of `steps` steps, largest first."""
    groups: dict[str, float] = {}
    for event in prof.events():
        g = op_group(event, r, vocab)
        groups[g] = groups.get(g, 0.0) + event.self_cpu_time_total / 1e6 / steps
    return dict(sorted(groups.items(), key=lambda kv: -kv[1]))
