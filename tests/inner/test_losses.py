import math

import pytest
import torch
import torch.nn.functional as F

from innerpo.inner import HiddenInputs, InnerDPOLoss, PrefVecLoss, RankLoss, ReprPOMSELoss, RerouteRetainLoss, StateQuad
from innerpo.inner.align import ALIGN_METHODS
from innerpo.inner.geometry import decompose
from innerpo.inner.innerdpo import token_drift
from innerpo.inner.transforms import LayerTransforms
from innerpo.losses.base import LossInputs, SeqLogps


def _x(hidden):
    lp = SeqLogps(torch.zeros(1), torch.ones(1))
    return LossInputs(lp, lp, lp, lp, hidden=hidden)


def _pooled(states, layers=("3", "5")):
    """Same states at every layer, with the policy states as fresh leaves per layer."""
    h_pc, h_pr, h_rc, h_rr = states
    quads, leaves = {}, []
    for k in layers:
        pc, pr = h_pc.clone().requires_grad_(), h_pr.clone().requires_grad_()
        leaves.append((pc, pr))
        quads[k] = StateQuad(pc, pr, h_rc, h_rr)
    return HiddenInputs(pooled=quads), leaves


LOSS_CONFIGS = {
    "inner_dpo/pars_rat/dpo": lambda: InnerDPOLoss("pars_rat"),
    "inner_dpo/logodds/ipo": lambda: InnerDPOLoss("logodds", beta=0.5, loss_type="ipo"),
    "inner_dpo/para_signed_log/tr_upper": lambda: InnerDPOLoss("para_signed_log", trust_region=5.0),
    "inner_dpo/stabilized/tr_both": lambda: InnerDPOLoss(
        "stabilized_ratio", trust_region=5.0, trust_region_mode="both"
    ),
    "inner_dpo/cosine_policy_margin": lambda: InnerDPOLoss("cosine_policy_margin", beta=5.0),
    "prefvec": lambda: PrefVecLoss(),
    "prefvec/angle": lambda: PrefVecLoss(angle_weight=1.0, trust_region=2.0),
    "reroute_retain": lambda: RerouteRetainLoss(),
    "mse": lambda: ReprPOMSELoss(),
    "rank": lambda: RankLoss(),
    "rank/ipo": lambda: RankLoss(loss_type="ipo"),
}
S_RAISING = [k for k in LOSS_CONFIGS if not k.startswith(("rank", "mse"))]  # mse lowers s by design


def _descend(loss, states, lr=1e-3):
    hidden, leaves = _pooled(states)
    out = loss(_x(hidden))
    out.loss.backward()
    with torch.no_grad():
        new = [(pc - lr * pc.grad, pr - lr * pr.grad) for pc, pr in leaves]
    return hidden, leaves, new, out


@pytest.mark.parametrize("name", S_RAISING)
def test_descent_step_raises_s(name, make_states):
    states = make_states(noise=0.05)
    _, _, new, _ = _descend(LOSS_CONFIGS[name](), states)
    _, _, h_rc, h_rr = states
    s0 = decompose(*states).para
    for pc, pr in new:
        s1 = decompose(pc, pr, h_rc, h_rr).para
        assert (s1 > s0).all(), (name, s0, s1)


@pytest.mark.parametrize("name", [k for k in S_RAISING if "cosine" not in k])
def test_descent_step_raises_s_when_negative(name, negative_s_states):
    states = negative_s_states()
    _, _, new, _ = _descend(LOSS_CONFIGS[name](), states)
    _, _, h_rc, h_rr = states
    s0 = decompose(*states).para
    for pc, pr in new:
        assert (decompose(pc, pr, h_rc, h_rr).para > s0).all()


@pytest.mark.parametrize("name", ["rank", "rank/ipo"])
def test_rank_descent_raises_rho(name, make_states):
    states = make_states(noise=0.05)
    loss = LOSS_CONFIGS[name]()
    hidden, leaves, new, out = _descend(loss, states)
    _, _, h_rc, h_rr = states
    hidden2 = HiddenInputs(pooled={k: StateQuad(pc, pr, h_rc, h_rr) for k, (pc, pr) in zip(hidden.layers, new)})
    assert loss(_x(hidden2)).metrics["rank/rho"] > out.metrics["rank/rho"]
    assert loss(_x(hidden2)).loss < out.loss


def test_reroute_descent_moves_the_named_distances(make_states):
    states = make_states(noise=0.05)
    _, _, new, _ = _descend(RerouteRetainLoss(alpha=1.0), states, lr=1e-2)
    h_pc, h_pr, h_rc, h_rr = states
    for pc, pr in new:
        assert ((pr - h_rc).norm(dim=-1) > (h_pr - h_rc).norm(dim=-1)).all()  # rejected pushed off
        assert ((pc - h_rc).norm(dim=-1) < (h_pc - h_rc).norm(dim=-1)).all()  # chosen pulled back


@pytest.mark.parametrize("name", sorted(LOSS_CONFIGS))
def test_finite_value_and_gradient(name, case):
    _, states = case
    hidden, leaves = _pooled(states)
    out = LOSS_CONFIGS[name]()(_x(hidden))
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    for pc, pr in leaves:
        assert torch.isfinite(pc.grad).all() and torch.isfinite(pr.grad).all()
    assert all(torch.isfinite(v) for v in out.metrics.values())
    assert all(not v.requires_grad for v in out.metrics.values())


@pytest.mark.parametrize("method", sorted(set(ALIGN_METHODS) - {"cosine_cross_model", "orth"}))  # undirected by design
def test_inner_dpo_every_align_method_raises_s(method, make_states):
    states = make_states(noise=0.05, dtype=torch.float64)  # some margins move s by < float32 resolution
    _, _, new, _ = _descend(InnerDPOLoss(method), states)
    _, _, h_rc, h_rr = states
    s0 = decompose(*states).para
    for pc, pr in new:
        assert (decompose(pc, pr, h_rc, h_rr).para > s0).all(), method


# Hand-computed 2-D example (see test_align): pars_rat margin = 0.5 at both layers.
H = [torch.tensor([[3.0, 3.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([[2.0, 1.0]]), torch.tensor([[0.0, 1.0]])]


def _hand(loss, extra_layer=None):
    pooled = {"0": StateQuad(*H)}
    if extra_layer is not None:
        pooled["1"] = StateQuad(*extra_layer)
    return loss(_x(HiddenInputs(pooled=pooled)))


def test_inner_dpo_hand_values():
    assert _hand(InnerDPOLoss("pars_rat", beta=1.0)).loss.item() == pytest.approx(math.log1p(math.exp(-0.5)), rel=1e-6)
    assert _hand(InnerDPOLoss("pars_rat", beta=2.0)).loss.item() == pytest.approx(math.log1p(math.exp(-1.0)), rel=1e-6)
    # IPO: (0.5 − 1/(2·0.5))² = 0.25
    assert _hand(InnerDPOLoss("pars_rat", beta=0.5, loss_type="ipo")).loss.item() == pytest.approx(0.25, rel=1e-6)
    # trust region: min(0.5, 0.3) = 0.3
    out = _hand(InnerDPOLoss("pars_rat", trust_region=0.3))
    assert out.loss.item() == pytest.approx(math.log1p(math.exp(-0.3)), rel=1e-6)
    assert out.metrics["hidden/clamped"].item() == 1.0
    assert out.metrics["hidden/margin/0"].item() == pytest.approx(0.5, rel=1e-6)
    assert out.metrics["hidden/margin"].item() == pytest.approx(0.3, rel=1e-6)
    # para_signed: s = 3 → −log σ(3)
    assert _hand(InnerDPOLoss("para_signed")).loss.item() == pytest.approx(math.log1p(math.exp(-3.0)), rel=1e-6)


def test_inner_dpo_layer_average_and_two_sided_clamp():
    # Layer "1": d_pi = (−4, 0) against d_ref = (2, 0): pars_rat = −3.
    layer1 = [
        torch.tensor([[-4.0, 0.0]]),
        torch.tensor([[0.0, 0.0]]),
        torch.tensor([[2.0, 0.0]]),
        torch.tensor([[0.0, 0.0]]),
    ]
    out = _hand(InnerDPOLoss("pars_rat"), layer1)
    assert out.metrics["hidden/margin/1"].item() == pytest.approx(-3.0)
    assert out.loss.item() == pytest.approx(-F.logsigmoid(torch.tensor((0.5 - 3.0) / 2)).item(), rel=1e-6)
    upper = _hand(InnerDPOLoss("pars_rat", trust_region=1.0), layer1)
    assert upper.metrics["hidden/margin"].item() == pytest.approx((0.5 - 3.0) / 2)
    both = _hand(InnerDPOLoss("pars_rat", trust_region=1.0, trust_region_mode="both"), layer1)
    assert both.metrics["hidden/margin"].item() == pytest.approx((0.5 - 1.0) / 2)
    assert both.metrics["hidden/clamped"].item() == 0.5


def test_inner_dpo_trust_region_stops_gradient_beyond_tau(make_states):
    # policy chosen moved 2·d_ref further along u: pars_rat = 2 > τ = 0.5 for every pair
    h_pc, h_pr, h_rc, h_rr = make_states(noise=0.0)
    hidden, leaves = _pooled([h_rc + 2 * (h_rc - h_rr), h_pr, h_rc, h_rr])
    InnerDPOLoss("pars_rat", trust_region=0.5)(_x(hidden)).loss.backward()
    for pc, pr in leaves:
        assert pc.grad.abs().max() == 0 and pr.grad.abs().max() == 0


def _token_hidden(seed=0, b=3, tc=5, tr=4, d=6, drift_rej=0.3, drift_cho=0.05):
    g = torch.Generator().manual_seed(seed)
    rc, rr = torch.randn(b, tc, d, generator=g), torch.randn(b, tr, d, generator=g)
    pc = (rc + drift_cho * torch.randn(b, tc, d, generator=g)).requires_grad_()
    pr = (rr + drift_rej * torch.randn(b, tr, d, generator=g)).requires_grad_()
    cm = torch.ones(b, tc)
    cm[0, -2:] = 0  # right padding
    rm = torch.ones(b, tr)
    rm[1, :1] = 0  # left padding
    return HiddenInputs.from_tokens({"4": StateQuad(pc, pr, rc, rr)}, cm, rm), pc, pr


def test_token_drift_values():
    ref = torch.ones(1, 3, 2)
    pol = ref.clone()
    pol[0, 0] += torch.tensor([3.0, 4.0])  # token 0 drifts by 5
    mask = torch.tensor([[1, 1, 0]])
    # mean drift 2.5 over two tokens, reference token norm √2
    assert token_drift(pol, ref, mask).item() == pytest.approx(2.5 / math.sqrt(2), rel=1e-5)


def test_token_constraint_penalises_rejected_drift():
    hidden, pc, pr = _token_hidden()
    plain = InnerDPOLoss("pars_rat")(_x(hidden))
    constrained = InnerDPOLoss("pars_rat", token_constraint=1.0)(_x(hidden))
    pen = constrained.metrics["hidden/token_penalty"]
    assert pen > 0
    assert constrained.metrics["hidden/margin"].item() == pytest.approx(
        plain.metrics["hidden/margin"].item() - pen.item(), rel=1e-5
    )
    # the penalty's gradient reduces the rejected side's token drift
    hidden, pc, pr = _token_hidden()
    q = hidden.tokens["4"]
    rm = hidden.rejected_mask
    before = token_drift(pr, q.ref_rejected, rm).detach()
    hidden.pooled = {k: StateQuad(*(h.detach() for h in v)) for k, v in hidden.pooled.items()}  # penalty only
    InnerDPOLoss("pars_rat", token_constraint=1.0)(_x(hidden)).loss.backward()
    with torch.no_grad():
        after = token_drift(pr - 0.05 * pr.grad, q.ref_rejected, rm)
    assert (after < before).all()


def test_token_constraint_finite_at_init_and_bf16():
    for dtype in (torch.float32, torch.bfloat16):
        g = torch.Generator().manual_seed(0)
        rc, rr = torch.randn(2, 4, 6, generator=g).to(dtype), torch.randn(2, 3, 6, generator=g).to(dtype)
        pc, pr = rc.clone().requires_grad_(), rr.clone().requires_grad_()
        hidden = HiddenInputs.from_tokens({"1": (pc, pr, rc, rr)}, torch.ones(2, 4), torch.ones(2, 3))
        out = InnerDPOLoss("logodds", token_constraint=0.5)(_x(hidden))
        out.loss.backward()
        assert torch.isfinite(out.loss) and torch.isfinite(pc.grad).all() and torch.isfinite(pr.grad).all()


def test_rank_token_level_matches_ReprPO_order():
    hidden, pc, pr = _token_hidden()
    out = RankLoss(token_level=True)(_x(hidden))
    out.loss.backward()
    assert torch.isfinite(out.loss) and pc.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="tokens"):
        RankLoss(token_level=True)(_x(HiddenInputs(pooled=hidden.pooled)))


def test_rank_hand_value():
    # One dim pair: lp of (0, 0) is log(1/2) each; policy chosen (1, 0) → lp = (log σ(1), log σ(−1)).
    z = torch.zeros(1, 2)
    pc = torch.tensor([[1.0, 0.0]])
    out = RankLoss(beta=1.0)(_x(HiddenInputs(pooled={"0": StateQuad(pc, z, z, z)})))
    rho = torch.log_softmax(pc, -1) - math.log(0.5)
    assert out.loss.item() == pytest.approx((-F.logsigmoid(rho)).mean().item(), rel=1e-6)


def test_prefvec_hand_values():
    # d_ref = (2, 0); chosen moves (1, 1), rejected moves (−1, 0): proj = (1 − (−1))/2 = 1,
    # orth = (1 + 0)/2 = 0.5, angle = 1 − cos((4, 1), (2, 0)).
    h_rc, h_rr = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 0.0]])
    h_pc, h_pr = torch.tensor([[3.0, 1.0]]), torch.tensor([[-1.0, 0.0]])
    loss = PrefVecLoss(orth_weight=2.0, angle_weight=1.0, floor=0.0)
    out = loss(_x(HiddenInputs(pooled={"0": StateQuad(h_pc, h_pr, h_rc, h_rr)})))
    angle = 1 - 4 / math.sqrt(17)
    assert out.loss.item() == pytest.approx(-1.0 + 2 * 0.5 + angle, abs=1e-5)
    assert out.metrics["prefvec/proj"].item() == pytest.approx(1.0, rel=1e-5)


def test_reroute_hand_values():
    # n = 2; ‖h_pr − h_rc‖ = 4 → reroute log 2; ‖h_pc − h_rc‖² = 1 → retain log1p(1/4)
    h_rc, h_rr = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 0.0]])
    h_pc, h_pr = torch.tensor([[2.0, 1.0]]), torch.tensor([[-2.0, 0.0]])
    out = RerouteRetainLoss(alpha=3.0, trust_region=None)(
        _x(HiddenInputs(pooled={"0": StateQuad(h_pc, h_pr, h_rc, h_rr)}))
    )
    assert out.loss.item() == pytest.approx(-math.log(2) + 3 * math.log1p(0.25), rel=1e-5)
    capped = RerouteRetainLoss(alpha=0.0, trust_region=0.5)(
        _x(HiddenInputs(pooled={"0": StateQuad(h_pc, h_pr, h_rc, h_rr)}))
    )
    assert capped.loss.item() == pytest.approx(-0.5, rel=1e-5)


def test_metrics_names(make_states):
    hidden, _ = _pooled(make_states())
    m = InnerDPOLoss("pars_rat", trust_region=1.0)(_x(hidden)).metrics
    for key in [
        "hidden/margin/3",
        "hidden/margin/5",
        "hidden/margin",
        "hidden/clamped",
        "hidden/para",
        "hidden/orth",
        "hidden/ref_norm",
        "hidden/cos/chosen",
        "hidden/cos/rejected",
        "hidden/cos/pref",
    ]:
        assert key in m, key


def test_errors(make_states):
    with pytest.raises(ValueError, match="unknown align method"):
        InnerDPOLoss("nope")
    with pytest.raises(ValueError, match="takes no"):
        InnerDPOLoss("pars_rat", align_kwargs={"smoothing": 0.2})
    InnerDPOLoss("logodds", align_kwargs={"smoothing": 0.2})
    with pytest.raises(ValueError, match="beta"):
        InnerDPOLoss(beta=0.0)
    with pytest.raises(ValueError, match="loss_type"):
        InnerDPOLoss(loss_type="kto")
    with pytest.raises(ValueError, match="trust_region"):
        InnerDPOLoss(trust_region=-1.0)
    with pytest.raises(ValueError, match="trust_region_mode"):
        InnerDPOLoss(trust_region_mode="sideways")
    with pytest.raises(ValueError, match="needs hidden states"):
        InnerDPOLoss()(_x(None))
    hidden, _ = _pooled(make_states())
    with pytest.raises(ValueError, match="token-level"):
        InnerDPOLoss(token_constraint=1.0)(_x(hidden))
    with pytest.raises(ValueError, match="empty"):
        HiddenInputs(pooled={})
    for cls, name in ((ReprPOMSELoss, "mse"), (RerouteRetainLoss, "reroute_retain"), (PrefVecLoss, "prefvec")):
        for bad in (-0.1, 1.5, float("nan")):
            with pytest.raises(ValueError, match=rf"{name}: floor must be in \[0, 1\]"):
                cls(floor=bad)
        cls(floor=0.0), cls(floor=1.0)  # both ends allowed


def test_loss_owns_and_trains_its_transform(make_states):
    torch.manual_seed(0)
    states = make_states()
    lt = LayerTransforms("etherplus", ["3", "5"], 8, n_blocks=2)
    with torch.no_grad():
        for p in lt.parameters():
            p.add_(0.3 * torch.randn_like(p))
    loss = InnerDPOLoss("pars_rat", transform=lt)
    assert {id(p) for p in loss.parameters()} == {id(p) for p in lt.parameters()}
    hidden, _ = _pooled(states)
    loss(_x(hidden)).loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in lt.parameters())
    # an orthogonal transform is invisible to the margin: its parameters get no gradient
    ortho = LayerTransforms("oft", ["3", "5"], 8, n_blocks=2)
    hidden, _ = _pooled(states)
    InnerDPOLoss("pars_rat", transform=ortho)(_x(hidden)).loss.backward()
    assert all(p.grad is None or p.grad.abs().max() < 1e-5 for p in ortho.parameters())


def test_inner_dpo_trust_region_scopes_by_hand():
    # layers: pars_rat 0.5 (layer 0) and −3 (layer 1); τ = 1, upper
    layer1 = [
        torch.tensor([[-4.0, 0.0]]),
        torch.tensor([[0.0, 0.0]]),
        torch.tensor([[2.0, 0.0]]),
        torch.tensor([[0.0, 0.0]]),
    ]
    pair = _hand(InnerDPOLoss("pars_rat", trust_region=1.0, trust_region_scope="pair"), layer1)
    assert pair.metrics["hidden/margin"].item() == pytest.approx(-1.25)  # min(mean(0.5, −3), 1)
    high = [
        torch.tensor([[10.0, 0.0]]),
        torch.tensor([[0.0, 0.0]]),
        torch.tensor([[2.0, 0.0]]),
        torch.tensor([[0.0, 0.0]]),
    ]  # pars_rat 4
    pl = _hand(InnerDPOLoss("pars_rat", trust_region=1.0), high)  # per layer: (0.5 + 1)/2
    pr = _hand(InnerDPOLoss("pars_rat", trust_region=1.0, trust_region_scope="pair"), high)  # min(2.25, 1)
    assert pl.metrics["hidden/margin"].item() == pytest.approx(0.75)
    assert pr.metrics["hidden/margin"].item() == pytest.approx(1.0)


def test_inner_dpo_batch_scope_stops_the_whole_batch_beyond_tau(make_states):
    h_pc, h_pr, h_rc, h_rr = make_states(noise=0.0)
    far = h_rc + 2 * (h_rc - h_rr)  # pars_rat 2 for every pair
    hidden, leaves = _pooled([far, h_pr, h_rc, h_rr])
    out = InnerDPOLoss("pars_rat", trust_region=0.5, trust_region_scope="batch")(_x(hidden))
    assert out.metrics["hidden/margin"].item() == pytest.approx(0.5, abs=1e-5)  # batch mean shifted to τ
    out.loss.backward()
    assert all(pc.grad.abs().max() == 0 for pc, _ in leaves)
    hidden, leaves = _pooled(make_states(noise=0.05))  # near init: below τ, the gradient flows
    InnerDPOLoss("pars_rat", trust_region=0.5, trust_region_scope="batch")(_x(hidden)).loss.backward()
    assert all(pc.grad.abs().max() > 0 for pc, _ in leaves)


def test_inner_dpo_simper_form_by_hand_and_direction(make_states):
    # pars_rat 0.5 at both layers: −symlog(0.5) = −log 1.5
    assert _hand(InnerDPOLoss("pars_rat", loss_type="simper")).loss.item() == pytest.approx(-math.log(1.5), rel=1e-6)
    states = make_states(noise=0.05, dtype=torch.float64)
    _, _, new, _ = _descend(InnerDPOLoss("para_signed", loss_type="simper"), states)
    s0 = decompose(*states).para
    assert all((decompose(pc, pr, *states[2:]).para > s0).all() for pc, pr in new)


def test_mse_hand_values_and_its_documented_direction(make_states):
    # n = 2; ‖h_rc − h_pr‖ = 4 → reroute log 2; ‖h_rc − h_pc‖² = 1 → retain log1p(1/4)
    h_rc, h_rr = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 0.0]])
    h_pc, h_pr = torch.tensor([[2.0, 1.0]]), torch.tensor([[-2.0, 0.0]])
    out = ReprPOMSELoss(alpha=0.6)(_x(HiddenInputs(pooled={"0": StateQuad(h_pc, h_pr, h_rc, h_rr)})))
    assert out.loss.item() == pytest.approx(math.log(2) + 0.6 * math.log1p(0.25), rel=1e-5)
    # the source's direction: rejected pulled toward the reference's chosen state, so s falls
    states = make_states(noise=0.05, dtype=torch.float64)
    _, leaves, new, _ = _descend(ReprPOMSELoss(), states)
    h_rc = states[2]
    for (pc, pr), (npc, npr) in zip(leaves, new):
        assert ((npr - h_rc).norm(dim=-1) < (pr - h_rc).norm(dim=-1)).all()
        assert (decompose(npc, npr, *states[2:]).para < decompose(pc.detach(), pr.detach(), *states[2:]).para).all()
