import math

import pytest
import torch

from innerpo.inner.align import ALIGN_METHODS, get_align_method
from innerpo.inner.geometry import decompose

METHODS = sorted(ALIGN_METHODS)
# Methods that are functions of (s, o, n) only: strictly increasing in s everywhere.
S_BASED = [m for m in METHODS if not m.startswith("cosine")]
RELATIVE = ["pars_rat", "pars_rat_log", "stabilized_ratio", "logodds", "odds",
            "cosine_policy_margin", "cosine_cross_model", "direct_projection"]


def _leaf(states):
    h_pc, h_pr, h_rc, h_rr = states
    return h_pc.clone().requires_grad_(), h_pr.clone().requires_grad_(), h_rc, h_rr


def _step(fn, states, lr=1e-3):
    """One gradient-ascent step on the margin w.r.t. the policy states; returns (s, m) before/after."""
    h_pc, h_pr, h_rc, h_rr = _leaf(states)
    m = fn(h_pc, h_pr, h_rc, h_rr)
    m.sum().backward()
    s0 = decompose(h_pc, h_pr, h_rc, h_rr).para.detach()
    with torch.no_grad():
        n_pc, n_pr = h_pc + lr * h_pc.grad, h_pr + lr * h_pr.grad
        s1 = decompose(n_pc, n_pr, h_rc, h_rr).para
        m1 = fn(n_pc, n_pr, h_rc, h_rr)
    return s0, s1, m.detach(), m1


@pytest.mark.parametrize("name", METHODS)
def test_step_raises_s_near_init(name, make_states):
    s0, s1, m0, m1 = _step(ALIGN_METHODS[name], make_states(noise=0.05))
    assert (s1 > s0).all(), (s0, s1)
    assert (m1 > m0).all()


@pytest.mark.parametrize("name", S_BASED + ["cosine_cross_model"])
def test_step_raises_s_when_s_negative(name, negative_s_states):
    states = negative_s_states()
    assert (decompose(*states).para < 0).all()
    s0, s1, m0, m1 = _step(ALIGN_METHODS[name], states)
    assert (s1 > s0).all()
    assert (m1 > m0).all()


@pytest.mark.parametrize("name", S_BASED)
def test_strictly_increasing_in_s_across_zero(name):
    # d_ref = (2, 0), d_pi = (s, 1): sweep s through negative and positive values.
    fn = ALIGN_METHODS[name]
    s = torch.linspace(-6, 6, 49)
    h_rc = torch.tensor([2.0, 0.0]).expand(49, 2)
    h_rr = torch.zeros(49, 2)
    h_pc = torch.stack([s, torch.ones(49)], -1)
    m = fn(h_pc, torch.zeros(49, 2), h_rc, h_rr)
    assert (m.diff() > 0).all(), m


@pytest.mark.parametrize("name", METHODS)
def test_finite_value_and_gradient(name, case):
    _, states = case
    fn = ALIGN_METHODS[name]
    h_pc, h_pr, h_rc, h_rr = _leaf(states)
    m = fn(h_pc, h_pr, h_rc, h_rr)
    assert m.shape == (states[0].shape[0],)
    assert torch.isfinite(m).all()
    m.sum().backward()
    assert torch.isfinite(h_pc.grad).all() and torch.isfinite(h_pr.grad).all()
    assert h_pc.grad.dtype == states[0].dtype


@pytest.mark.parametrize("name", S_BASED)
def test_gradient_useful_for_negative_s(name, negative_s_states):
    h_pc, h_pr, h_rc, h_rr = _leaf(negative_s_states())
    ALIGN_METHODS[name](h_pc, h_pr, h_rc, h_rr).sum().backward()
    u = torch.nn.functional.normalize(h_rc - h_rr, dim=-1)
    along = ((h_pc.grad - h_pr.grad) * u).sum(-1)  # rate of change of s along the ascent direction
    assert (along > 1e-3).all(), along


@pytest.mark.parametrize("name", RELATIVE)
def test_zero_at_initialisation(name, make_states):
    _, _, h_rc, h_rr = make_states()
    m = ALIGN_METHODS[name](h_rc.clone(), h_rr.clone(), h_rc, h_rr)
    assert torch.allclose(m, torch.zeros_like(m), atol=1e-5)


# Hand-computed 2-D example: d_ref = (2, 0), n = 2, u = (1, 0); d_pi = (3, 2), s = 3, o = 2.
H_PC, H_PR = torch.tensor([[3.0, 3.0]]), torch.tensor([[0.0, 1.0]])
H_RC, H_RR = torch.tensor([[2.0, 1.0]]), torch.tensor([[0.0, 1.0]])
HAND = {
    "para_signed": 3.0,
    "para_signed_log": math.log(4.0),
    "para_orth_signed": 1.0,
    "para_orth_signed_log": math.log(4.0) - math.log(3.0),
    "pars_rat": 0.5,
    "pars_rat_log": math.log(1.5),
    "stabilized_ratio": 0.5,  # B = 1: floor 0.1·2 < 2, so = pars_rat
    "direct_projection": 1.0,
    # cos(h_rc, h_rr) − cos(h_pc, h_pr) = 1/√5 − 1/√2
    "cosine_policy_margin": 1 / math.sqrt(5) - 1 / math.sqrt(2),
    "cosine_cross_model": 3 / math.sqrt(13) - 1,
    # c = 0.1·2 = 0.2: [log(3.2) − log(2.2)] − [log(2.2) − log(0.2)] = log(16/121)
    "logodds": math.log(16 / 121),
    "odds": math.log(16 / 121),  # ℓ < 0: the linear branch
}


@pytest.mark.parametrize("name", sorted(HAND))
def test_hand_computed_2d(name):
    m = ALIGN_METHODS[name](H_PC, H_PR, H_RC, H_RR)
    assert m.item() == pytest.approx(HAND[name], abs=1e-5)


def test_hand_odds_positive_branch():
    # d_pi = (6, 0): s = 6, o = 0 → ℓ = log(6.2/2.2) ≥ 0 and odds = (6.2/0.2)/(2.2/0.2) − 1
    m = ALIGN_METHODS["odds"](torch.tensor([[6.0, 1.0]]), H_PR, H_RC, H_RR)
    assert m.item() == pytest.approx(6.2 / 2.2 - 1, rel=1e-5)


def test_every_method_is_registered_and_unknown_names_fail():
    assert len(ALIGN_METHODS) == 12
    with pytest.raises(ValueError, match="known: para_signed"):
        get_align_method("nope")


def test_stabilized_ratio_caps_tiny_reference_pairs(make_states):
    h_pc, h_pr, h_rc, h_rr = make_states(b=4, noise=0.0)
    h_rr = h_rr.clone()
    h_rr[0] = h_rc[0] - 1e-6  # pair 0: reference chosen ≈ rejected
    h_pc = h_pc.clone()
    h_pc[0] = h_pc[0] + 1.0  # policy separates it by O(1)
    rat = ALIGN_METHODS["pars_rat"](h_pc, h_pr, h_rc, h_rr)
    stab = ALIGN_METHODS["stabilized_ratio"](h_pc, h_pr, h_rc, h_rr)
    assert rat[0].abs() > 1e4 and stab[0].abs() < 100
    assert torch.allclose(rat[1:], stab[1:], atol=1e-5)
