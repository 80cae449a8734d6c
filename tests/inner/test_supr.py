import pytest
import torch

from innerpo.inner.supr import head_projector, supr, supr_masks


def test_full_rank_head_projector_is_identity():
    torch.manual_seed(0)
    w = torch.randn(50, 8)
    assert torch.allclose(head_projector(w), torch.eye(8), atol=1e-5)


def test_low_rank_projector_is_a_projector():
    torch.manual_seed(0)
    w = torch.randn(50, 8)
    p = head_projector(w, rank=3)
    assert torch.allclose(p, p.T, atol=1e-6)
    assert torch.allclose(p @ p, p, atol=1e-5)
    assert torch.linalg.matrix_rank(p).item() == 3
    with pytest.raises(ValueError, match="rank"):
        head_projector(w, rank=9)


def test_mask_is_positive_change_above_threshold_for_full_rank_head():
    torch.manual_seed(0)
    w = torch.randn(40, 6)
    x0 = torch.zeros(2, 6)
    x1 = torch.tensor([[0.5, -0.5, 0.05, 0.2, 0.0, 1.0], [0.0, 0.3, -1.0, 0.0, 0.11, 0.09]])
    masks = supr_masks([x0, x1], w, threshold=0.1)
    expected = x1 > 0.1
    assert torch.equal(masks[0], expected)


def test_rank_deficient_head_ignores_changes_it_cannot_read():
    # W reads only the first two coordinates; a change in coordinate 3 is invisible to it.
    w = torch.zeros(10, 4)
    w[:5, 0] = 1.0
    w[5:, 1] = 1.0
    x0 = torch.zeros(1, 4)
    x1 = torch.tensor([[1.0, 0.0, 0.0, 5.0]])
    (mask,) = supr_masks([x0, x1], w, threshold=0.1)
    assert mask.tolist() == [[True, False, False, False]]


def test_supr_outputs_and_gradients():
    torch.manual_seed(0)
    b, d = 3, 5
    last = [torch.randn(b, d) for _ in range(3)]
    pooled = [torch.randn(b, d, requires_grad=True) for _ in range(3)]
    out = supr(pooled, torch.randn(30, d), last_token_states=last)
    assert len(out) == 2 and all(o.shape == (b, d) for o in out)
    masks = supr_masks(last, projector=torch.eye(d))
    for o, p, m in zip(out, pooled[1:], masks):
        assert torch.allclose(o, p * m)
    sum(o.sum() for o in out).backward()
    assert pooled[0].grad is None  # first collected layer is dropped
    assert torch.equal(pooled[1].grad, masks[0].float())
    # masks can be shared (e.g. computed from the reference)
    shared = supr(pooled, masks=masks)
    assert all(torch.equal(a, b_) for a, b_ in zip(shared, out))


def test_supr_bfloat16_and_errors():
    x = [torch.randn(2, 4).bfloat16() for _ in range(2)]
    out = supr(x, projector=torch.eye(4))
    assert out[0].dtype == torch.bfloat16
    with pytest.raises(ValueError, match="two"):
        supr(x[:1], projector=torch.eye(4))
    with pytest.raises(ValueError, match="lm_head_weight"):
        supr(x)
    with pytest.raises(ValueError, match="masks"):
        supr(x, masks=[])


def test_default_threshold_is_relative_to_each_rows_rise():
    # ReprPO's absolute 0.1 keeps nothing when states are small (tiny-random's scale);
    # the default cut, 0.1 × RMS of the row's change, keeps the same coordinates at any scale.
    x0 = torch.zeros(1, 4)
    x1 = torch.tensor([[0.02, -0.01, 0.001, 0.03]])
    assert not supr_masks([x0, x1], projector=torch.eye(4), threshold=0.1)[0].any()
    rms = x1.pow(2).mean().sqrt()
    (mask,) = supr_masks([x0, x1], projector=torch.eye(4))
    assert mask.tolist() == (x1 > 0.1 * rms).tolist() == [[True, False, False, True]]
    (scaled,) = supr_masks([x0 * 1000, x1 * 1000], projector=torch.eye(4))
    assert torch.equal(scaled, mask)
