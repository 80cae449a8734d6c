import pytest
import torch


def make_states(b=4, d=8, noise=0.05, seed=0, dtype=torch.float32):
    """Reference states and policy states = reference + small noise (near initialisation)."""
    g = torch.Generator().manual_seed(seed)
    h_rc = torch.randn(b, d, generator=g)
    h_rr = torch.randn(b, d, generator=g)
    h_pc = h_rc + noise * torch.randn(b, d, generator=g)
    h_pr = h_rr + noise * torch.randn(b, d, generator=g)
    return [h.to(dtype) for h in (h_pc, h_pr, h_rc, h_rr)]


def negative_s_states(b=4, d=8, seed=1):
    """Policy difference = −0.5·d_ref + an orthogonal part: s < 0, o > 0."""
    g = torch.Generator().manual_seed(seed)
    h_rc = torch.randn(b, d, generator=g)
    h_rr = torch.randn(b, d, generator=g)
    d_ref = h_rc - h_rr
    noise = torch.randn(b, d, generator=g)
    u = d_ref / d_ref.norm(dim=-1, keepdim=True)
    orth = noise - (noise * u).sum(-1, keepdim=True) * u
    h_pr = h_rr.clone()
    h_pc = h_pr - 0.5 * d_ref + 0.5 * orth
    return [h_pc, h_pr, h_rc, h_rr]


def zero_dpi_states(b=4, d=8, seed=2):
    g = torch.Generator().manual_seed(seed)
    h_rc = torch.randn(b, d, generator=g)
    h_rr = torch.randn(b, d, generator=g)
    h_p = torch.randn(b, d, generator=g)
    return [h_p.clone(), h_p.clone(), h_rc, h_rr]


def tiny_ref_states(b=4, d=8, seed=3):
    g = torch.Generator().manual_seed(seed)
    h_rc = torch.randn(b, d, generator=g)
    direction = torch.nn.functional.normalize(torch.randn(b, d, generator=g), dim=-1)
    h_rr = h_rc - 1e-8 * direction
    h_pc = h_rc + 0.1 * torch.randn(b, d, generator=g)
    h_pr = h_rr + 0.1 * torch.randn(b, d, generator=g)
    return [h_pc, h_pr, h_rc, h_rr]


CASES = {
    "near_init": lambda: make_states(),
    "negative_s": negative_s_states,
    "zero_dpi": zero_dpi_states,
    "tiny_ref": tiny_ref_states,
    "bfloat16": lambda: make_states(dtype=torch.bfloat16),
}


@pytest.fixture(params=sorted(CASES))
def case(request):
    return request.param, CASES[request.param]()


@pytest.fixture(name="make_states")
def _make_states_fixture():
    return make_states


@pytest.fixture(name="negative_s_states")
def _negative_s_fixture():
    return negative_s_states
