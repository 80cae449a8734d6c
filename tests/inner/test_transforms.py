import pytest
import torch

from innerpo.inner.align import ALIGN_METHODS
from innerpo.inner.hidden_inputs import HiddenInputs, StateQuad
from innerpo.inner.transforms import (
    TRANSFORMS,
    ETHERTransform,
    HRATransform,
    LayerTransforms,
    apply_transforms,
    make_transform,
)

D = 12
NAMES = sorted(TRANSFORMS)
ORTHOGONAL = ["none", "ether", "oft", "hra", "ortho"]
IDENTITY_AT_INIT = ["none", "etherplus", "oft", "hra", "ortho"]
TRAINABLE = [n for n in NAMES if n != "none"]


def _build(name, **kw):
    torch.manual_seed(0)
    if name in ("ether", "etherplus", "oft"):
        kw.setdefault("n_blocks", 3)
    if name == "hra":
        kw.setdefault("r", 4)
    return make_transform(name, D, **kw)


def _perturb(t):
    with torch.no_grad():
        for p in t.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return t


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(5, D), (2, 7, D)])
def test_shapes_and_dtype(name, shape):
    t = _build(name)
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(*shape).to(dtype)
        y = t(x)
        assert y.shape == x.shape and y.dtype == dtype and torch.isfinite(y).all()


@pytest.mark.parametrize("name", IDENTITY_AT_INIT)
def test_identity_at_init(name):
    t = _build(name)
    assert torch.allclose(t.matrix(), torch.eye(D), atol=1e-5)
    x = torch.randn(3, D)
    assert torch.allclose(t(x), x, atol=1e-5)


def test_hra_chain_identity_at_init():
    t = HRATransform(D, r=4, orthonormalize=False)
    assert torch.allclose(t.matrix(), torch.eye(D), atol=1e-5)


def test_ether_is_a_block_reflection_at_init():
    t = _build("ether")
    m = t.matrix()
    assert torch.allclose(m @ m, torch.eye(D), atol=1e-5)  # an involution
    assert torch.linalg.det(m).item() == pytest.approx((-1) ** 3, abs=1e-4)  # one reflection per block
    assert not torch.allclose(m, torch.eye(D), atol=1e-2)
    # block diagonal: nothing couples the 3 blocks of 4
    off = m.clone()
    for b in range(3):
        off[4 * b : 4 * b + 4, 4 * b : 4 * b + 4] = 0
    assert off.abs().max() < 1e-6


@pytest.mark.parametrize("name", ORTHOGONAL)
def test_orthogonal_at_any_parameters(name):
    t = _perturb(_build(name))
    m = t.matrix()
    assert torch.allclose(m.T @ m, torch.eye(D), atol=1e-4)
    assert t.orthogonal


def test_hra_chain_orthogonal_after_training():
    t = _perturb(HRATransform(D, r=4, orthonormalize=False))
    m = t.matrix()
    assert torch.allclose(m.T @ m, torch.eye(D), atol=1e-4)


def test_etherplus_is_not_orthogonal_once_trained():
    t = _perturb(_build("etherplus"))
    m = t.matrix()
    assert not t.orthogonal
    assert not torch.allclose(m.T @ m, torch.eye(D), atol=1e-3)


@pytest.mark.parametrize("name", TRAINABLE)
def test_gradients_reach_every_parameter_at_init(name):
    t = _build(name)
    x = torch.randn(6, D)
    target = torch.randn(6, D)
    ((t(x) - target) ** 2).sum().backward()
    params = list(t.named_parameters())
    assert params
    for pname, p in params:
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


def test_hra_chain_gradients():
    t = HRATransform(D, r=4, orthonormalize=False)
    ((t(torch.randn(6, D)) - torch.randn(6, D)) ** 2).sum().backward()
    assert t.u.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ORTHOGONAL)
def test_orthogonal_transforms_leave_margins_unchanged(name):
    """The documented caveat: inner-product margins cannot see an orthogonal transform."""
    t = _perturb(_build(name))
    torch.manual_seed(1)
    states = [torch.randn(4, D) for _ in range(4)]
    for method in ("pars_rat", "logodds", "cosine_policy_margin", "para_orth_signed"):
        fn = ALIGN_METHODS[method]
        assert torch.allclose(fn(*states), fn(*[t(h) for h in states]), atol=1e-4)


def test_bad_configs():
    with pytest.raises(ValueError, match="divide"):
        ETHERTransform(10, n_blocks=4)
    with pytest.raises(ValueError, match="variant"):
        ETHERTransform(8, variant="nope")
    with pytest.raises(ValueError, match="even r"):
        HRATransform(8, r=3, orthonormalize=False)
    with pytest.raises(ValueError, match="r must be"):
        HRATransform(8, r=9)
    with pytest.raises(ValueError, match="unknown transform"):
        make_transform("nope", 8)
    with pytest.raises(ValueError, match="supr"):
        make_transform("supr", 8)
    with pytest.raises(ValueError, match="last dim"):
        make_transform("none", 8)(torch.zeros(2, 7))


def test_layer_transforms_apply_to_hidden_inputs():
    torch.manual_seed(0)
    layers = ["model.layers.3", "7"]
    lt = LayerTransforms("etherplus", layers, D, n_blocks=2)
    _perturb(lt)
    quads = {k: StateQuad(*[torch.randn(2, D) for _ in range(4)]) for k in layers}
    tokens = {k: StateQuad(*[torch.randn(2, 5, D) for _ in range(4)]) for k in layers}
    mask = torch.ones(2, 5)
    hidden = HiddenInputs(pooled=quads, tokens=tokens, chosen_mask=mask, rejected_mask=mask)
    out = apply_transforms(lt, hidden)
    assert out.layers == layers
    assert torch.allclose(out.pooled["7"].ref_chosen, lt("7", quads["7"].ref_chosen))
    assert out.tokens["model.layers.3"].policy_rejected.shape == (2, 5, D)
    # pooling commutes with the (linear) transform
    pooled_after = HiddenInputs.from_tokens(out.tokens, mask, mask).pooled["7"].policy_chosen
    pooled_first = lt("7", HiddenInputs.from_tokens(tokens, mask, mask).pooled["7"].policy_chosen)
    assert torch.allclose(pooled_after, pooled_first, atol=1e-5)
    assert apply_transforms(None, hidden) is hidden
    with pytest.raises(KeyError, match="no transform for layer"):
        lt("9", quads["7"].ref_chosen)
    assert len(list(lt.parameters())) == 4  # u, v per layer


@pytest.mark.parametrize("name", ["ether", "etherplus", "oft", "hra"])
def test_scaled_steps_keep_the_map_and_scale_adams_step(name):
    from innerpo.inner.transforms import scale_steps

    torch.manual_seed(0)
    plain = make_transform(name, D)
    torch.manual_seed(0)
    scaled = scale_steps(make_transform(name, D), 10.0)
    torch.testing.assert_close(plain.matrix(), scaled.matrix())  # same map at the start
    x = torch.randn(5, D)
    moved = {}
    for key, t in (("plain", plain), ("scaled", scaled)):
        before = t.matrix().detach().clone()
        opt = torch.optim.Adam(t.parameters(), lr=1e-3)
        (t(x) ** 3).sum().backward()  # not invariant to the map
        opt.step()
        moved[key] = (t.matrix() - before).abs().max().item()
    assert moved["scaled"] > 5 * moved["plain"] > 0
