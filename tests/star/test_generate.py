"""HFGenerator against transformers' own greedy `generate`, prompt by prompt."""

import torch

from innerpo.models import tiny
from innerpo.star.generate import GenSettings, HFGenerator


def _prompts(tok):
    prefix = "<|im_start|>system\nAdd the numbers.<|im_end|>\n<|im_start|>user\n"
    texts = [prefix + q + "<|im_end|>\n<|im_start|>assistant\n" for q in ("What is 1 + 2?", "What is 13 + 25, please?", "Hi")]
    return [tok(t, add_special_tokens=False)["input_ids"] for t in texts]


def _reference(model, tok, ids, n):
    out = model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    new = out[0, len(ids):].tolist()
    if tok.eos_token_id in new:
        new = new[: new.index(tok.eos_token_id)]
    return tok.decode(new, skip_special_tokens=True)


def test_greedy_equals_per_prompt_generate_with_shared_prefix_and_padding():
    model, tok = tiny.build(seed=1)
    model.eval()
    prompts = _prompts(tok)
    gen = HFGenerator(model, tok)
    # a tiny token budget forces one prompt per batch; a large one puts all three together
    for budget in (10_000, 1):
        out = gen.generate(prompts, 1, GenSettings(max_new_tokens=12, temperature=0.0, batch_tokens=budget))
        for ids, (sample,) in zip(prompts, out):
            assert sample.text == _reference(model, tok, ids, 12)
            assert sample.finish in ("eos", "length") and 0 < sample.n_tokens <= 12


def test_k_samples_share_the_prompt_and_are_reproducible():
    model, tok = tiny.build(seed=1)
    prompts = _prompts(tok)
    gen = HFGenerator(model, tok)
    # top_p ~ 0 keeps only the most likely token: every sample of a prompt is its greedy text
    narrow = gen.generate(prompts, 3, GenSettings(max_new_tokens=10, temperature=1.0, top_p=1e-9))
    greedy = gen.generate(prompts, 1, GenSettings(max_new_tokens=10, temperature=0.0))
    for samples, (g,) in zip(narrow, greedy):
        assert len(samples) == 3 and all(s.text == g.text for s in samples)
    a = gen.generate(prompts, 4, GenSettings(max_new_tokens=10, temperature=1.0, seed=5))
    b = gen.generate(prompts, 4, GenSettings(max_new_tokens=10, temperature=1.0, seed=5))
    assert [[s.text for s in x] for x in a] == [[s.text for s in x] for x in b]
    assert len({s.text for x in a for s in x}) > 3  # sampling does vary


def test_stop_strings_cut_the_text():
    model, tok = tiny.build(seed=1)
    gen = HFGenerator(model, tok)
    assert gen._text(tok("abc\nQ: next", add_special_tokens=False)["input_ids"], ("\nQ:",)) == "abc"
    assert gen._hits_stop(tok("xx\nQ:", add_special_tokens=False)["input_ids"], ("\nQ:",))


def test_batches_respect_token_and_row_caps():
    prompts = [[1] * n for n in (5, 50, 7, 30)]
    batches = HFGenerator.batches(prompts, 2, GenSettings(max_new_tokens=10, batch_tokens=200, max_rows=4))
    assert sorted(i for b in batches for i in b) == [0, 1, 2, 3]
    for b in batches:
        assert len(b) * 2 <= 4 or len(b) == 1
        assert len(b) == 1 or len(b) * 2 * (max(len(prompts[i]) for i in b) + 10) <= 200
