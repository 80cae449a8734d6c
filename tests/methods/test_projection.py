"""projgrad / projbp: the projection rule, the reference directions, the hooks, and training."""

import json
import math

import pytest
import torch

from innerpo.data.batching import collate
from innerpo.data.config import DataConfig
from innerpo.data.pairs import Pair
from innerpo.data.tokenize import PairTokenizer
from innerpo.eval.config import EvalConfig
from innerpo.inner.pooling import masked_mean
from innerpo.methods.base import OutputMethod
from innerpo.methods.build import build_method
from innerpo.methods.config import MethodConfig
from innerpo.methods.projection import (
    ProjBPMethod,
    ProjGradMethod,
    batch_direction,
    edit_output_grad,
    lora_modules,
    preference_directions,
    project_update,
)
from innerpo.models.config import ModelConfig
from innerpo.models.load import add_lora, load_base
from innerpo.train.config import TrainConfig, TrainingConfig

# --- the pure rule -------------------------------------------------------------------


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def parts(grad, u):
    """Update Δ = −grad split along the unit u: (c [N], orthogonal remainder [N, D])."""
    delta = -grad
    c = delta @ u
    return c, delta - c[:, None] * u


def test_update_never_moves_against_u_and_keeps_the_helpful_parallel_part():
    g = rand(500, 16)
    u = torch.nn.functional.normalize(rand(16, seed=1), dim=0)
    c, _ = parts(g, u)
    c_new, _ = parts(project_update(g, u, orth_scale=0.3), u)
    assert (c < 0).any() and (c > 0).any()
    assert (c_new >= -1e-6).all()
    torch.testing.assert_close(c_new[c < 0], torch.zeros_like(c[c < 0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(c_new[c > 0], c[c > 0])


@pytest.mark.parametrize("orth_scale", [0.0, 0.3, 1.0])
def test_orthogonal_part_is_scaled_exactly(orth_scale):
    g = rand(200, 12, seed=2)
    u = torch.nn.functional.normalize(rand(200, 12, seed=3), dim=1)  # one direction per vector
    new = project_update(g, u, orth_scale)
    delta, delta_new = -g, -new
    o = delta - (delta * u).sum(1, keepdim=True) * u
    o_new = delta_new - (delta_new * u).sum(1, keepdim=True) * u
    torch.testing.assert_close(o_new, orth_scale * o, atol=1e-6, rtol=1e-5)
    if orth_scale == 1.0:  # helpful vectors pass through untouched
        helpful = (delta * u).sum(1) > 0
        torch.testing.assert_close(new[helpful], g[helpful])


def test_direction_is_normalised_inside():
    g, u = rand(10, 8, seed=4), rand(8, seed=5)
    torch.testing.assert_close(project_update(g, 7.0 * u, 0.5), project_update(g, u / u.norm(), 0.5))


def test_clip_caps_the_norm():
    u = torch.nn.functional.normalize(rand(8, seed=6), dim=0)
    g = -(2.0 * u + 0.1 * rand(8, seed=7))  # helpful: with orth_scale 1 only the clip acts
    out = project_update(g, u, 1.0, clip=0.5)
    assert out.norm().item() == pytest.approx(0.5 * g.norm().item(), rel=1e-5)  # one vector: cap = 0.5 × its norm
    many = rand(64, 8, seed=8) * torch.linspace(0.1, 5, 64)[:, None]  # outlier vectors
    rms = many.norm(dim=1).pow(2).mean().sqrt()
    capped = project_update(many, u, 1.0, clip=0.8)
    assert (capped.norm(dim=1) <= 0.8 * rms * (1 + 1e-5)).all()
    assert (capped.norm(dim=1) < project_update(many, u, 1.0).norm(dim=1) - 1e-4).any()
    torch.testing.assert_close(project_update(many, u, 0.5, clip=1e6), project_update(many, u, 0.5))


@pytest.mark.parametrize("u", [torch.zeros(8), torch.full((8,), 1e-30), torch.full((8,), float("nan"))])
def test_degenerate_direction_leaves_the_gradient_unchanged(u):
    g = rand(5, 8, seed=9)
    out = project_update(g, u, 0.0, clip=0.1)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, g)


def test_dtype_is_kept():
    g = rand(4, 8).to(torch.bfloat16)
    assert project_update(g, rand(8, seed=1), 0.5).dtype == torch.bfloat16


# --- directions ----------------------------------------------------------------------


def test_preference_directions_and_batch_direction():
    chosen, rejected = rand(3, 6, seed=10), rand(3, 6, seed=11)
    rejected[2] = chosen[2]  # identical completions: degenerate pair
    u = preference_directions(torch.cat([chosen, rejected]))
    d = chosen - rejected
    torch.testing.assert_close(u[:2], d[:2] / d[:2].norm(dim=1, keepdim=True))
    assert (u[2] == 0).all()
    torch.testing.assert_close(batch_direction(u), torch.nn.functional.normalize(u[:2].mean(0), dim=0))
    assert (batch_direction(torch.zeros(2, 6)) == 0).all()
    assert (batch_direction(torch.stack([u[0], -u[0]])) == 0).all()  # cancelling pairs


def test_edit_output_grad_uses_plus_u_for_chosen_and_minus_u_for_rejected_rows():
    b, t, d = 3, 5, 6
    grad = rand(2 * b, t, d, seed=12)
    u = torch.nn.functional.normalize(rand(b, d, seed=13), dim=1)
    u[2] = 0  # degenerate pair
    mask = torch.zeros(2 * b, t, dtype=torch.bool)
    mask[:, 2:] = True  # first two tokens are the prompt
    out = edit_output_grad(grad, u, mask, orth_scale=0.25)
    for i in range(2):
        torch.testing.assert_close(out[i, 2:], project_update(grad[i, 2:], u[i], 0.25))
        torch.testing.assert_close(out[b + i, 2:], project_update(grad[b + i, 2:], -u[i], 0.25))
        assert ((-out[i, 2:]) @ u[i] >= -1e-6).all()  # chosen outputs move along +u (or not at all)
        assert ((-out[b + i, 2:]) @ u[i] <= 1e-6).all()  # rejected outputs along −u
    torch.testing.assert_close(out[:, :2], grad[:, :2])  # prompt tokens untouched
    torch.testing.assert_close(out[[2, b + 2]], grad[[2, b + 2]])  # degenerate pair untouched


def test_config_dispatch_and_validation():
    assert isinstance(build_method(MethodConfig(projection="projgrad")), ProjGradMethod)
    method = build_method(MethodConfig(projection="projbp"))
    assert isinstance(method, ProjBPMethod) and not method.cacheable_reference
    assert type(build_method(MethodConfig())) is OutputMethod
    with pytest.raises(ValueError, match=r"projgrad: orth_scale must be in \[0, 1\], got 1.5"):
        build_method(MethodConfig(projection="projgrad", orth_scale=1.5))
    with pytest.raises(ValueError, match="projbp: proj_clip must be a finite number > 0"):
        build_method(MethodConfig(projection="projbp", proj_clip=0.0))
    with pytest.raises(ValueError, match="--method.orth_scale=0.3 is set, but the chosen method"):
        build_method(MethodConfig(orth_scale=0.3))  # no projection reads it


# --- on tiny-random with a real LoRA -----------------------------------------------------

LAST = "layers.3.mlp.down_proj"  # no LoRA module downstream of it


@pytest.fixture
def setup():
    cfg = ModelConfig(base_model="tiny-random", lora_r=4)
    base, tok = load_base(cfg)
    model = add_lora(base, cfg, seed=0)
    with torch.no_grad():  # B ≠ 0, so lora_A gets gradients and policy ≠ reference
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(len(name))))
    pairs = [Pair(f"What is {i} + 1?", str(i + 1), str(i + 2) * (1 + i % 3)) for i in range(3)]
    items, _ = PairTokenizer(tok, 64).tokenize_all(pairs, "test")
    return model, collate(items, tok.pad_token_id)


def reference_units(model, batch) -> dict[str, torch.Tensor]:
    """The definition, recomputed independently: per-pair unit ȳ_c − ȳ_r of each LoRA module's output."""
    pooled, handles = {}, []
    for name, m in lora_modules(model).items():
        handles.append(
            m.register_forward_hook(
                lambda mod, a, out, name=name: pooled.__setitem__(name, masked_mean(out, batch.completion_mask))
            )
        )
    with torch.no_grad(), model.disable_adapter():
        model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    for h in handles:
        h.remove()
    b = batch.num_pairs
    return {n: torch.nn.functional.normalize(p[:b] - p[b:], dim=1) for n, p in pooled.items()}


def lora_grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def hook_count(model) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) + len(m._backward_pre_hooks)
        for m in model.modules()
    )


def test_projgrad_projects_each_lora_b_column_and_leaves_lora_a(setup):
    model, batch = setup
    units = reference_units(model, batch)
    method = build_method(MethodConfig(projection="projgrad", orth_scale=0.3))
    method.loss(method.loss_inputs(model, batch)).loss.backward()
    before = lora_grads(model)
    metrics = method.after_backward(model)
    after = lora_grads(model)
    assert metrics and all(math.isfinite(v) for v in metrics.values())
    assert {"proj/parallel_norm", "proj/orth_norm", "proj/kept_fraction", "proj/cos_before", "proj/cos_after"} <= set(
        metrics
    )
    assert metrics["proj/cos_after"] >= metrics["proj/cos_before"]
    checked = 0
    for name, module in lora_modules(model).items():
        u = torch.nn.functional.normalize(units[name].mean(0), dim=0)
        key = next(k for k in before if k.startswith(name + ".lora_B"))
        c, o = parts(before[key].T, u)  # columns of −∇B in the output space
        c_new, o_new = parts(after[key].T, u)
        assert (c_new >= -1e-7).all()
        torch.testing.assert_close(c_new, c.clamp(min=0), atol=1e-7, rtol=1e-5)
        torch.testing.assert_close(o_new, 0.3 * o, atol=1e-7, rtol=1e-5)
        key_a = key.replace("lora_B", "lora_A")
        assert before[key_a].abs().sum() > 0
        torch.testing.assert_close(after[key_a], before[key_a])  # lora_A left as it is
        checked += 1
    assert checked == 28


def test_projbp_edits_gradients_during_backprop_and_removes_its_hooks(setup):
    model, batch = setup
    hooks_before = hook_count(model)
    dpo = build_method(MethodConfig())
    dpo.loss(dpo.loss_inputs(model, batch)).loss.backward()
    plain = lora_grads(model)
    model.zero_grad(set_to_none=True)

    # Record the last module's input and the gradient reaching its output *before* the edit.
    last_name, last = next((n, m) for n, m in lora_modules(model).items() if n.endswith(LAST))
    seen = {}

    def record(mod, args, out):
        if out.requires_grad:
            seen["x"] = args[0].detach()
            out.register_hook(lambda g: seen.__setitem__("g", g.clone()))

    handle = last.register_forward_hook(record)
    method = build_method(MethodConfig(projection="projbp", orth_scale=0.3))
    method.loss(method.loss_inputs(model, batch)).loss.backward()
    handle.remove()
    edited = lora_grads(model)
    metrics = method.after_backward(model)
    assert metrics and all(math.isfinite(v) for v in metrics.values())
    assert hook_count(model) == hooks_before  # nothing left behind on the model

    # The last module's own lora_B saw the edited output gradient (chosen +u, rejected −u).
    g_new = edit_output_grad(seen["g"], reference_units(model, batch)[last_name], batch.completion_mask, 0.3)
    a, adapter = last.lora_A["default"], "default"
    expected = last.scaling[adapter] * g_new.flatten(0, 1).T @ a(seen["x"]).flatten(0, 1)
    key = f"{last_name}.lora_B.default.weight"
    torch.testing.assert_close(edited[key], expected, atol=1e-6, rtol=1e-4)
    assert not torch.allclose(edited[key], plain[key], rtol=1e-3)

    # Earlier layers see the changed gradient.
    for key in [k for k in plain if ".layers.0." in k]:
        assert not torch.allclose(edited[key], plain[key], rtol=1e-3), key


# --- through the training loop ---------------------------------------------------------


def tiny_cfg(tmp_path, projection: str) -> TrainConfig:
    rows = [
        {"prompt": f"What is {i} + 1?", "chosen": str(i + 1), "rejected": str(i + 2) * (1 + i % 3)} for i in range(8)
    ]
    data = tmp_path / "pairs.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    return TrainConfig(
        model=ModelConfig(base_model="tiny-random", lora_r=4),
        data=DataConfig(dataset=str(data), batch_size=2, max_length=64),
        training=TrainingConfig(max_steps=2, eval_every=0, seed=3, grad_accum=2),
        eval=EvalConfig(max_pairs=4),
        method=MethodConfig(projection=projection),
        method_name=projection,
        output_dir=str(tmp_path / "run"),
    )


@pytest.mark.parametrize("projection", ["projgrad", "projbp"])
def test_trains_two_steps_with_finite_metrics(tmp_path, monkeypatch, projection):
    from innerpo.train import loop

    monkeypatch.setenv("INNERPO_CACHE", str(tmp_path / "cache"))
    run = loop.train(tiny_cfg(tmp_path, projection), evaluate=False)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        assert "proj/cos_after" in row and "proj/kept_fraction" in row
        assert all(math.isfinite(v) for v in row.values() if isinstance(v, (int, float))), row
    assert not (tmp_path / "cache").exists()  # the reference runs every step, nothing cached
