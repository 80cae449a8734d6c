"""The CUDA device against the CPU on the same batches: training steps, packed scoring, the
reference cache, resume and greedy generation. Run with `pytest -m gpu tests/gpu` on a GPU."""

import pytest
import torch

from innerpo.data.batching import collate_indexed
from innerpo.data.pairs import Pair
from innerpo.data.tokenize import PairTokenizer
from innerpo.methods.build import build_method
from innerpo.methods.config import MethodConfig
from innerpo.models import forward, tiny
from innerpo.models.config import ModelConfig
from innerpo.models.load import add_lora
from innerpo.models.precision import prepare_model

CUDA = torch.device("cuda")


def _model(precision="fp32", device="cpu"):
    base, tok = tiny.build()
    base.requires_grad_(False)
    model = add_lora(base, ModelConfig(base_model="tiny-random", lora_r=4), seed=0)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(len(n))) * 0.05)
    return prepare_model(model, precision, device).to(device), tok


def _batch(tok, n=4):
    long_prompt = "Please answer with one word: " * 2
    pairs = [Pair(long_prompt + f"question {i}?", "yes " * (i + 1), "no" * (i + 2)) for i in range(n)]
    items = PairTokenizer(tok, 128).tokenize_all(pairs, "t")[0]
    return collate_indexed(list(enumerate(items)), tok.pad_token_id), items


def _step(method_kw, device, precision):
    model, tok = _model(precision, device)
    batch, _ = _batch(tok)
    method = build_method(MethodConfig(**method_kw))
    method.bind(model)
    method.to(device)
    model.train()
    out = method.loss(method.loss_inputs(model, batch.to(device)))
    out.loss.backward()
    grads = {n: p.grad.float().cpu() for n, p in model.named_parameters() if p.grad is not None}
    return out.loss.detach().float().cpu(), grads


@pytest.mark.parametrize("method_kw", [{}, {"hidden_loss": "innerpo", "layers": "1,2"}], ids=["dpo", "innerdpo"])
def test_cuda_bf16_step_agrees_with_the_cpu_step(method_kw):
    loss_cpu, g_cpu = _step(method_kw, "cpu", "fp32")
    loss_gpu, g_gpu = _step(method_kw, CUDA, "bf16")
    torch.testing.assert_close(loss_gpu, loss_cpu, rtol=2e-2, atol=2e-2)  # bf16 GEMMs
    for n in g_cpu:
        cos = torch.nn.functional.cosine_similarity(g_cpu[n].flatten(), g_gpu[n].flatten(), dim=0)
        assert cos > 0.98, (n, float(cos))


def test_cuda_fp32_step_agrees_with_the_cpu_step_closely():
    loss_cpu, g_cpu = _step({}, "cpu", "fp32")
    loss_gpu, g_gpu = _step({}, CUDA, "fp32")
    torch.testing.assert_close(loss_gpu, loss_cpu, rtol=1e-3, atol=1e-4)  # TF32 may be on
    for n in g_cpu:
        torch.testing.assert_close(g_gpu[n], g_cpu[n], rtol=1e-2, atol=1e-4)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_packed_scoring_matches_the_padded_pass_on_cuda(precision):
    model, tok = _model(precision, CUDA)
    batch, _ = _batch(tok, 6)
    batch = batch.to(CUDA)
    with torch.no_grad():
        packed = forward._packed_logps(model, batch)
        assert packed is not None
        out = forward.forward_pairs(model, batch, output_hidden_states=True)  # the plain padded pass
    tol = 1e-3 if precision == "fp32" else 0.1
    torch.testing.assert_close(packed[0].sum, out.chosen.sum, rtol=tol, atol=tol)
    torch.testing.assert_close(packed[1].sum, out.rejected.sum, rtol=tol, atol=tol)


def test_reference_cache_round_trip_on_cuda(tmp_path, monkeypatch):
    from innerpo.models.ref_cache import reference_table

    monkeypatch.setenv("INNERPO_CACHE", str(tmp_path))
    model, tok = _model("bf16", CUDA)
    _, items = _batch(tok, 6)
    method = build_method(MethodConfig())
    first, hit1 = reference_table(model, items, tok.pad_token_id, 4, {"t": 1}, method.reference_rows)
    again, hit2 = reference_table(model, items, tok.pad_token_id, 4, {"t": 1}, method.reference_rows)
    assert (hit1, hit2) == (False, True)
    for k in first:
        torch.testing.assert_close(again[k], first[k])


def test_resume_on_cuda_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    """Two steps, stop, resume for two more: the same adapter as four steps in one go."""
    from safetensors.torch import load_file

    from innerpo.train.config import TrainConfig
    from innerpo.train.loop import train

    monkeypatch.setenv("INNERPO_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "pairs.jsonl"
    data.write_text(
        "".join(
            f'{{"prompt": "What is {i} + {i}?", "chosen": "{2 * i}", "rejected": "{2 * i + 1}"}}\n' for i in range(16)
        )
    )
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"shifts:\n  in_domain: {{dataset: {data}}}\n")

    def cfg(out, steps):
        c = TrainConfig()
        c.model.base_model = "tiny-random"
        c.data.dataset, c.data.batch_size, c.data.max_length = str(data), 4, 64
        c.eval.suite = str(suite)
        c.training.max_steps, c.training.save_every, c.training.eval_every = steps, 2, 0
        c.training.precision = "bf16"
        c.output_dir = str(out)
        return c

    whole = train(cfg(tmp_path / "whole", 4), evaluate=False)
    part = train(cfg(tmp_path / "part", 2), evaluate=False)
    resumed = train(cfg(part, 4), evaluate=False, resume=True)  # from part's step-2 checkpoint
    a = load_file(str(whole / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(resumed / "adapter" / "adapter_model.safetensors"))
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6)


def test_greedy_generation_equals_transformers_generate_on_cuda():
    from innerpo.star.generate import GenSettings, HFGenerator

    base, tok = tiny.build()
    base = base.to(CUDA).eval()
    prompts = [tok("What is two plus two?")["input_ids"], tok("Name a colour.")["input_ids"]]
    settings = GenSettings(max_new_tokens=12, temperature=0.0)
    ours = HFGenerator(base, tok).generate(prompts, 1, settings)
    for p, samples in zip(prompts, ours):
        ids = torch.tensor([p], device=CUDA)
        ref = base.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False)
        ref_text = tok.decode(ref[0, len(p) :].tolist(), skip_special_tokens=True)
        assert ref_text.startswith(samples[0].text)  # ours stops at EOS; generate pads after it
