import math

import pytest
import torch

from innerpo.inner.align import ALIGN_METHODS, ROTATION_INVARIANT, STATIONARY_AT_INIT, get_align_method
from innerpo.inner.geometry import decompose

METHODS = sorted(ALIGN_METHODS)
# No preference direction by design: state mimicry (ReprPO's cosine_cross_model) and the
# orthogonal-only penalty; pinned by their own tests below.
UNDIRECTED = {"cosine_cross_model", "orth"}
DIRECTED = [m for m in METHODS if m not in UNDIRECTED]
# Methods that are increasing functions of s (at fixed o, n): strictly increasing in s everywhere.
S_BASED = [m for m in METHODS if not m.startswith("cosine") and m not in UNDIRECTED]
RELATIVE = [
    "pars_rat",
    "pars_rat_log",
    "stabilized_ratio",
    "logodds",
    "odds",
    "cosine_policy_margin",
    "cosine_cross_model",
    "cosine_pref_direction",
    "direct_projection",
    "direct_projection_log",
    "orth",
    "para_orth",
    "para_orth2",
]


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


@pytest.mark.parametrize("name", DIRECTED)
def test_step_raises_s_near_init(name, make_states):
    s0, s1, m0, m1 = _step(ALIGN_METHODS[name], make_states(noise=0.05))
    assert (s1 > s0).all(), (s0, s1)
    assert (m1 > m0).all()


@pytest.mark.parametrize("name", S_BASED + ["cosine_pref_direction"])
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
    # cos(h_pc, h_rc) − cos(h_pr, h_rr) = 9/(√18·√5) − 1
    "cosine_cross_model": 9 / math.sqrt(90) - 1,
    "cosine_pref_direction": 3 / math.sqrt(13) - 1,
    # L1 ones: ‖u‖₁ = 1, ‖o‖₁ = 2, ‖d_ref‖₁ = 2
    "para": math.log(4.0),  # symlog(3)
    "orth": -math.log(2.0),  # −log1p(o²/n²) = −log1p(4/4)
    "para_orth": math.log(4.0) - math.log(3.0) - math.log(3.0),  # symlog(3) − log1p(2) − log1p(2)
    "para_orth2": -1.0,  # (3 − 2)·1 − 2
    "direct_projection_log": math.log(2.0),  # symlog(3 − 2)
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
    assert len(ALIGN_METHODS) == 18
    assert {"para", "para_orth", "para_orth2", "orth", "direct_projection_log"} <= set(ALIGN_METHODS)  # the journal's
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


def test_stabilized_floor_percentile_and_mean_fraction_by_hand():
    # n = (1, 2, 3, 4) along one axis, s = n + 1 for every pair.
    n = torch.tensor([1.0, 2.0, 3.0, 4.0])
    h_rc, h_rr = torch.stack([n, torch.zeros(4)], -1), torch.zeros(4, 2)
    h_pc = torch.stack([n + 1, torch.zeros(4)], -1)
    fn = ALIGN_METHODS["stabilized_ratio"]
    # 50th percentile of (1, 2, 3, 4) = 2.5 → denominators (2.5, 2.5, 3, 4)
    m = fn(h_pc, h_rr, h_rc, h_rr, floor=0.5)
    assert torch.allclose(m, 1 / torch.tensor([2.5, 2.5, 3.0, 4.0]), atol=1e-6)
    # mean fraction: 0.5 × mean 2.5 = 1.25 → denominators (1.25, 2, 3, 4)
    m = fn(h_pc, h_rr, h_rc, h_rr, floor=0.5, floor_mode="mean_fraction")
    assert torch.allclose(m, 1 / torch.tensor([1.25, 2.0, 3.0, 4.0]), atol=1e-6)
    with pytest.raises(ValueError, match="floor_mode"):
        fn(h_pc, h_rr, h_rc, h_rr, floor_mode="median")


@pytest.mark.parametrize("name", sorted(STATIONARY_AT_INIT))
def test_stationary_at_init_by_design(name, make_states):
    _, _, h_rc, h_rr = make_states()
    h_pc, h_pr = h_rc.clone().requires_grad_(), h_rr.clone().requires_grad_()
    m = ALIGN_METHODS[name](h_pc, h_pr, h_rc, h_rr)
    m.sum().backward()
    assert torch.allclose(m, torch.zeros_like(m), atol=1e-6)
    assert h_pc.grad.abs().max() < 1e-6 and h_pr.grad.abs().max() < 1e-6


def test_cosine_cross_model_once_moved_keeps_chosen_and_turns_rejected_away(make_states):
    """ReprPO's state mimicry: after DPO has moved the policy (noise), an ascent step brings the
    chosen state back toward the reference's and turns the rejected state away from it."""
    from innerpo.inner.geometry import safe_cosine

    states = make_states(noise=0.3)
    h_pc, h_pr, h_rc, h_rr = _leaf(states)
    ALIGN_METHODS["cosine_cross_model"](h_pc, h_pr, h_rc, h_rr).sum().backward()
    with torch.no_grad():
        n_pc, n_pr = h_pc + 1e-2 * h_pc.grad, h_pr + 1e-2 * h_pr.grad
    assert (safe_cosine(n_pc, h_rc) > safe_cosine(h_pc, h_rc)).all()
    assert (safe_cosine(n_pr, h_rr) < safe_cosine(h_pr, h_rr)).all()


def test_orth_once_moved_shrinks_the_orthogonal_part_only(make_states):
    states = make_states(noise=0.3)
    h_pc, h_pr, h_rc, h_rr = _leaf(states)
    ALIGN_METHODS["orth"](h_pc, h_pr, h_rc, h_rr).sum().backward()
    g0 = decompose(h_pc, h_pr, h_rc, h_rr)
    with torch.no_grad():
        g1 = decompose(h_pc + 1e-3 * h_pc.grad, h_pr + 1e-3 * h_pr.grad, h_rc, h_rr)
    assert (g1.orth_norm < g0.orth_norm).all()
    assert torch.allclose(g1.para, g0.para.detach(), atol=1e-6)  # the step is orthogonal to u


def test_rotation_invariant_set_is_what_an_orthogonal_map_preserves(make_states):
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(0)))
    states = make_states(noise=0.3)
    for name in METHODS:
        same = torch.allclose(ALIGN_METHODS[name](*states), ALIGN_METHODS[name](*(h @ q.T for h in states)), atol=1e-4)
        assert same == (name in ROTATION_INVARIANT), name
