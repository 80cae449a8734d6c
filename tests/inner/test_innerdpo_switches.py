"""InnerDPO's reduction switches from ReprPO's InnerDPOLossConfig: the norm order p,
detach_rejected (ReprPO's detach_ref), the lower trust-region clamp (clamp_bottom), the
hidden weight (inner_policy_weights) and WPO weighting of the hidden term; values by
hand on a 2-D example, direction of a step, what each option is read with."""

import math

import pytest
import torch

from innerpo.inner import HiddenInputs, InnerDPOLoss, StateQuad
from innerpo.inner.geometry import decompose
from innerpo.inner.innerdpo import inner_weight
from innerpo.inner.pooling import unit_tokens
from innerpo.losses.base import LossInputs, SeqLogps

R2 = math.sqrt(2.0)


def quad(pc, pr=(0.0, 0.0), rc=(2.0, 2.0), rr=(0.0, 0.0), grad=False):
    """One pair in 2-D; d_ref = (2, 2): n₂ = 2√2, n₁ = 4, u = (1, 1)/√2, ‖u‖₁ = √2."""
    t = [torch.tensor([list(v)], dtype=torch.float64) for v in (pc, pr, rc, rr)]
    if grad:
        t[0].requires_grad_()
        t[1].requires_grad_()
    return StateQuad(*t)


def x_of(q, wpo=None):
    lp = SeqLogps(torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64))
    x = LossInputs(lp, lp, lp, lp, hidden=HiddenInputs(pooled={"0": q}))
    if wpo is not None:
        x.policy_chosen = SeqLogps(lp.sum, lp.ntok, wpo=torch.tensor(wpo[0], dtype=torch.float64))
        x.policy_rejected = SeqLogps(lp.sum, lp.ntok, wpo=torch.tensor(wpo[1], dtype=torch.float64))
    return x


def test_norm_order_by_hand():
    # d_π = (3, 1): s = 4/√2 = 2√2, orthogonal part (1, −1): o₂ = √2, o₁ = 2; p-size of s·u: 2√2·‖u‖₁ = 4
    q = quad((3.0, 1.0))
    g2, g1 = decompose(*q), decompose(*q, p=1)
    assert float(g2.para) == pytest.approx(2 * R2) and float(g2.orth_norm) == pytest.approx(R2)
    assert (
        float(g1.para) == pytest.approx(4.0)
        and float(g1.orth_norm) == pytest.approx(2.0)
        and float(g1.ref_norm) == pytest.approx(4.0)
    )
    margins = lambda method, p: float(InnerDPOLoss(method, norm_p=p).layer_margins(HiddenInputs(pooled={"0": q}))["0"])  # noqa: E731
    assert margins("para_signed", 2) == pytest.approx(2 * R2) and margins("para_signed", 1) == pytest.approx(4.0)
    assert margins("para_orth_signed", 2) == pytest.approx(R2) and margins("para_orth_signed", 1) == pytest.approx(2.0)
    assert (
        margins("pars_rat", 1) == pytest.approx(margins("pars_rat", 2)) == pytest.approx(0.0)
    )  # a ratio along u: p-free
    # at initialisation every p gives s = n and o ≈ 0 (ReprPO's p = 1 projection would not)
    init = decompose(*quad((2.0, 2.0)), p=1)
    assert float(init.para) == pytest.approx(float(init.ref_norm)) and float(init.orth_norm) < 1e-5


def test_inner_weight_by_hand():
    assert float(inner_weight(*quad((3.0, 1.0)))) == 1.0  # |s| = 2√2 ≥ o = √2
    # d_π = (−1, 3): s = √2, orthogonal part (−2, 2), o = 2√2: w = a(a+b)/(a²+b²) = √2·3√2/(2+8) = 0.6
    q = quad((-1.0, 3.0))
    assert float(inner_weight(*q)) == pytest.approx(0.6, abs=1e-4)
    assert float(inner_weight(*quad((2.0, 2.0)))) == 1.0  # initialisation
    out = InnerDPOLoss("para_signed", beta=1.0, inner_policy_weights=True)(x_of(q))
    assert out.loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(-0.6 * R2))), abs=1e-4)
    assert float(out.metrics["weights/inner"]) == pytest.approx(0.6, abs=1e-4)


def test_inner_weight_is_a_constant_and_the_step_still_raises_s():
    q = quad((-1.0, 3.0), grad=True)
    loss = InnerDPOLoss("para_signed", beta=1.0, inner_policy_weights=True)
    out = loss(x_of(q))
    g_pc, g_pr = torch.autograd.grad(out.loss, [q.policy_chosen, q.policy_rejected])
    plain = InnerDPOLoss("para_signed", beta=1.0)
    q2 = quad((-1.0, 3.0), grad=True)
    p_pc, _ = torch.autograd.grad(plain(x_of(q2)).loss, [q2.policy_chosen, q2.policy_rejected])
    # w·s with w constant: the margin's gradient is w·u, the loss's σ'-factor differs only through the value
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    ratio = 0.6 * (1 - sig(0.6 * R2)) / (1 - sig(R2))
    torch.testing.assert_close(g_pc, p_pc * ratio, rtol=1e-3, atol=1e-6)
    new = StateQuad(q.policy_chosen - g_pc, q.policy_rejected - g_pr, q.ref_chosen, q.ref_rejected)
    assert float(decompose(*new).para.detach()) > float(decompose(*q).para.detach())


def test_detach_rejected_moves_only_the_chosen_side():
    q = quad((3.0, 1.0), pr=(0.5, -0.5), grad=True)
    out = InnerDPOLoss("pars_rat", detach_rejected=True)(x_of(q))
    g_pc, g_pr = torch.autograd.grad(out.loss, [q.policy_chosen, q.policy_rejected], allow_unused=True)
    assert g_pr is None and g_pc.abs().sum() > 0
    q2 = quad((3.0, 1.0), pr=(0.5, -0.5), grad=True)
    both = InnerDPOLoss("pars_rat")(x_of(q2))
    assert both.loss.item() == out.loss.item()  # the value is unchanged
    torch.testing.assert_close(torch.autograd.grad(both.loss, q2.policy_chosen)[0], g_pc)


def test_lower_trust_region_is_clamp_bottom():
    # pars_rat: d_π = (3, 1) gives s/n − 1 = 0; d_π = (4, 4): s = 4√2, n = 2√2 → 1
    low = quad((3.0, 1.0), grad=True)
    out = InnerDPOLoss("pars_rat", trust_region=0.5, trust_region_mode="lower")(x_of(low))
    assert out.loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(-0.5))))  # max(0, 0.5)
    assert float(out.metrics["hidden/clamped"]) == 1.0
    assert torch.autograd.grad(out.loss, low.policy_chosen)[0].abs().sum() == 0  # below τ: no gradient
    high = quad((4.0, 4.0), grad=True)
    out = InnerDPOLoss("pars_rat", trust_region=0.5, trust_region_mode="lower")(x_of(high))
    assert out.loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(-1.0))))
    assert float(out.metrics["hidden/clamped"]) == 0.0
    assert torch.autograd.grad(out.loss, high.policy_chosen)[0].abs().sum() > 0


def test_policy_weights_on_the_hidden_term():
    # two pairs with ℓ = −1 and −3 (per-token means, one token each side)
    q = StateQuad(*[torch.cat([a, a]) for a in quad((3.0, 1.0))])
    x = x_of(q)
    x.policy_chosen = SeqLogps(
        torch.zeros(2, dtype=torch.float64),
        torch.ones(2, dtype=torch.float64),
        wpo=torch.tensor([-0.5, -2.0], dtype=torch.float64),
    )
    x.policy_rejected = SeqLogps(
        torch.zeros(2, dtype=torch.float64),
        torch.ones(2, dtype=torch.float64),
        wpo=torch.tensor([-0.5, -1.0], dtype=torch.float64),
    )
    s = [1 / (1 + math.exp(1 / 3)), 1 / (1 + math.exp(1.0))]
    w = [v / (sum(s) / 2 + 1e-6) for v in s]
    base = InnerDPOLoss("para_signed")(x)
    out = InnerDPOLoss(
        "para_signed",
        policy_weighting=__import__("innerpo.losses.weighting", fromlist=["PolicyWeights"]).PolicyWeights(True),
    )(x)
    assert out.loss.item() == pytest.approx(base.loss.item() * (w[0] + w[1]) / 2)  # equal pairs: the mean weight
    assert float(out.metrics["weights/policy"]) == pytest.approx((w[0] + w[1]) / 2)


def test_unit_tokens_before_pooling():
    h = torch.tensor([[[3.0, 4.0], [0.0, 10.0]]])
    torch.testing.assert_close(unit_tokens(h), torch.tensor([[[0.6, 0.8], [0.0, 1.0]]]), atol=1e-6, rtol=0)
    torch.testing.assert_close(unit_tokens(h, p=1), torch.tensor([[[3 / 7, 4 / 7], [0.0, 1.0]]]), atol=1e-6, rtol=0)


def test_what_each_switch_is_read_with():
    from innerpo.errors import ConfigError
    from innerpo.methods.build import build_method
    from innerpo.methods.config import MethodConfig

    ok = dict(hidden_loss="innerpo")
    build_method(MethodConfig(**ok, align_method="para_signed", norm_p=1.0))
    build_method(MethodConfig(**ok, inner_policy_weights=True, norm_p=1.0, detach_rejected=True))
    build_method(MethodConfig(**ok, trust_region=1.0, trust_region_mode="lower"))
    build_method(MethodConfig(**ok, norm_before_reduce=True, norm_p=1.0))
    with pytest.raises(ConfigError, match=r"norm_p=1\.0.*does not read it"):
        build_method(MethodConfig(**ok, norm_p=1.0))  # pars_rat is a ratio along u: p cannot change it
    with pytest.raises(ConfigError, match="inner_policy_weights"):
        build_method(MethodConfig(inner_policy_weights=True))  # plain DPO
    with pytest.raises(ConfigError, match="norm_p"):
        build_method(MethodConfig(**ok, align_method="para_signed", norm_p=0.5))
    # a p-norm depends on the basis: an orthogonal transform is then not refused as inert
    from innerpo.inner.innerdpo import InnerDPOParams

    assert InnerDPOLoss.rotation_invariant(InnerDPOParams(align_method="para_signed"))
    assert not InnerDPOLoss.rotation_invariant(InnerDPOParams(align_method="para_signed", norm_p=1.0))
