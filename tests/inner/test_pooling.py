import pytest
import torch

from innerpo.inner.pooling import SINK_THRESHOLD, last_real_token, masked_mean, sink_mask


def _hidden(b=2, t=5, d=3):
    return torch.arange(b * t * d, dtype=torch.float32).reshape(b, t, d)


def test_masked_mean_matches_manual():
    h = _hidden()
    mask = torch.tensor([[0, 1, 1, 0, 0], [1, 1, 1, 1, 0]])
    out = masked_mean(h, mask)
    assert torch.allclose(out[0], h[0, 1:3].mean(0))
    assert torch.allclose(out[1], h[1, 0:4].mean(0))


def test_masked_mean_empty_row_is_zero_and_grad_flows():
    h = _hidden().requires_grad_()
    mask = torch.tensor([[0, 0, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    out = masked_mean(h, mask)
    assert torch.equal(out[0], torch.zeros(3))
    out.sum().backward()
    assert torch.equal(h.grad[1, 0], torch.ones(3)) and h.grad[1, 1:].abs().sum() == 0


def test_last_real_token_right_padding():
    h = _hidden()
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    out = last_real_token(h, mask)
    assert torch.equal(out[0], h[0, 2]) and torch.equal(out[1], h[1, 4])


def test_last_real_token_left_padding():
    h = _hidden()
    mask = torch.tensor([[0, 0, 1, 1, 1], [0, 1, 1, 1, 1]])
    out = last_real_token(h, mask)
    assert torch.equal(out[0], h[0, 4]) and torch.equal(out[1], h[1, 4])


def test_last_real_token_completion_mask_and_errors():
    h = _hidden()
    mask = torch.tensor([[0, 1, 1, 0, 0], [0, 0, 0, 1, 0]])
    out = last_real_token(h, mask)
    assert torch.equal(out[0], h[0, 2]) and torch.equal(out[1], h[1, 3])
    with pytest.raises(ValueError, match="rows \\[1\\]"):
        last_real_token(h, torch.tensor([[1, 0, 0, 0, 0], [0, 0, 0, 0, 0]]))
    with pytest.raises(ValueError, match="expected hidden"):
        last_real_token(h, torch.ones(2, 4))


def test_sink_filtering_drops_huge_token_only():
    torch.manual_seed(0)
    h = torch.randn(2, 6, 8)
    h[0, 1] *= 100.0  # a sink in row 0, inside the mask
    h[1, 5] *= 100.0  # a huge token in row 1, but outside the mask
    mask = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0]])
    keep = sink_mask(h, mask, SINK_THRESHOLD)
    assert keep[0].tolist() == [True, False, True, True, True, False]
    assert keep[1].tolist() == mask[1].bool().tolist()
    pooled = masked_mean(h, mask, sink_threshold=SINK_THRESHOLD)
    assert torch.allclose(pooled[0], h[0, [0, 2, 3, 4]].mean(0))
    assert torch.allclose(pooled[1], masked_mean(h, mask)[1])


def test_sink_filtering_never_empties_a_row():
    h = torch.ones(1, 3, 4)
    h[0, 0] *= 5
    mask = torch.ones(1, 3)
    keep = sink_mask(h, mask, threshold=0.1)  # would drop everything
    assert keep.all()
    with pytest.raises(ValueError, match="> 0"):
        sink_mask(h, mask, threshold=0.0)
