import torch

from innerpo.data.batching import collate
from innerpo.data.pairs import Pair
from innerpo.data.tokenize import PairTokenizer
from innerpo.models.forward import forward_pairs


def naive_logps(model, batch):
    """Reference: full logits, full log-softmax, labels shifted by one, masked sum."""
    logp = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits.log_softmax(-1)
    tok = logp[:, :-1].gather(-1, batch.input_ids[:, 1:, None]).squeeze(-1)
    mask = batch.completion_mask[:, 1:]
    return (tok * mask).sum(1), mask.sum(1)


def test_lean_logps_equal_naive_full_softmax(tiny_model):
    model, tok = tiny_model
    pt = PairTokenizer(tok, 128)
    items = [pt(Pair("What is 2+2?", "4", "5")), pt(Pair("Name a colour, please.", "Blue is a colour.", "No."))]
    batch = collate(items, tok.pad_token_id)
    out = forward_pairs(model, batch)
    sums, counts = naive_logps(model, batch)
    torch.testing.assert_close(torch.cat([out.chosen.sum, out.rejected.sum]), sums, rtol=1e-5, atol=1e-5)
    assert torch.cat([out.chosen.ntok, out.rejected.ntok]).tolist() == counts.tolist()
    assert out.chosen.ntok.tolist() == [len(i.chosen) for i in items]
