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


def test_shared_prompt_pass_gives_the_same_values_and_gradients(tiny_model):
    """forward_pairs may run each pair's prompt once (keys/values reused by both
    completions); asking for hidden states forces the plain [2B, T] pass. Both must agree
    in log-probs and in the gradients they send to LoRA weights."""
    from innerpo.models import forward
    from innerpo.models.config import ModelConfig
    from innerpo.models.load import add_lora

    model, tok = tiny_model
    model = add_lora(model, ModelConfig(base_model="tiny-random", lora_r=4), seed=0)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    pt = PairTokenizer(tok, 256)
    long_prompt = "Please read this carefully and answer with one word only: " * 3
    items = [pt(Pair(long_prompt + "colour?", "Blue", "No")), pt(Pair(long_prompt + "animal?", "A cat", "Dog"))]
    batch = collate(items, tok.pad_token_id)
    assert forward._shared_prompt_plan(model, model.config, batch) is not None  # the shared path is taken

    def run(**kw):
        model.zero_grad()
        out = forward_pairs(model, batch, **kw)
        (out.chosen.sum - out.rejected.sum).sum().backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        return torch.cat([out.chosen.sum, out.rejected.sum]).detach(), grads

    shared_lp, shared_g = run()
    plain_lp, plain_g = run(output_hidden_states=True)
    torch.testing.assert_close(shared_lp, plain_lp, rtol=1e-5, atol=1e-5)
    assert shared_g.keys() == plain_g.keys() and shared_g
    for n in plain_g:
        torch.testing.assert_close(shared_g[n], plain_g[n], rtol=1e-4, atol=1e-5)  # float32 summation order
