"""Mixed precision (innerpo.models.precision): what runs in bf16, what stays float32,
and how far a bf16 run's numbers are from the fp32 run's (tiny-random, seconds)."""

import dataclasses
import json

import pytest
import torch

from innerpo.data.batching import collate
from innerpo.data.config import DataConfig
from innerpo.data.pairs import Pair
from innerpo.data.tokenize import PairTokenizer
from innerpo.eval.config import EvalConfig
from innerpo.methods.build import build_method
from innerpo.methods.config import MethodConfig
from innerpo.models import precision, ref_cache
from innerpo.models.config import ModelConfig
from innerpo.models.forward import forward_pairs
from innerpo.models.load import add_lora, load_base
from innerpo.train import loop
from innerpo.train.config import TrainConfig, TrainingConfig

MODEL = ModelConfig(base_model="tiny-random", lora_r=4)


def lora_model(prec: str):
    base, tok = load_base(MODEL)
    model = add_lora(base, MODEL, seed=0)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(len(n))) * 0.1)
    return precision.prepare_model(model, prec), tok


def batch_for(tok):
    pt = PairTokenizer(tok, 128)
    pairs = [
        Pair("Please answer this question briefly: what is 2+2?", "4, of course.", "Five"),
        Pair("Please answer this question briefly: name a colour.", "Blue", "I would rather not say anything."),
    ]
    return collate(pt.tokenize_all(pairs, "t")[0], tok.pad_token_id)


def test_bf16_keeps_trained_weights_embeddings_and_outputs_in_float32():
    model, tok = lora_model("bf16")
    dtypes = {n: p.dtype for n, p in model.named_parameters()}
    assert all(d == torch.float32 for n, d in dtypes.items() if "lora_" in n)
    assert any(d == torch.bfloat16 for n, d in dtypes.items() if "base_layer" in n)
    assert model.get_input_embeddings().weight.dtype == torch.float32
    assert model.get_base_model().config._attn_implementation == precision.FP32_SDPA  # CPU: float32 attention
    out = forward_pairs(model, batch_for(tok))
    assert out.chosen.sum.dtype == torch.float32
    loss = (out.chosen.sum - out.rejected.sum).sum()
    loss.backward()
    assert all(p.grad.dtype == torch.float32 for n, p in model.named_parameters() if p.requires_grad)


def test_bf16_log_probs_are_close_to_fp32():
    """Same weights, same batch: bf16 rounding moves a completion's summed log-prob by
    far less than a nat per token (tolerance: 0.05 nats per token, measured ~0.01)."""
    (m32, tok), (m16, _) = lora_model("fp32"), lora_model("bf16")
    batch = batch_for(tok)
    with torch.no_grad():
        a, b = forward_pairs(m32, batch), forward_pairs(m16, batch)
    ntok = torch.cat([a.chosen.ntok, a.rejected.ntok])
    diff = (torch.cat([a.chosen.sum, a.rejected.sum]) - torch.cat([b.chosen.sum, b.rejected.sum])).abs() / ntok
    assert diff.max() < 0.05, diff
    assert diff.max() > 0  # bf16 really ran: the numbers are not bit-identical


def dpo_loss(model, batch, beta=0.1):
    """Sigmoid DPO loss against the same model with the adapter off, in its precision."""
    with torch.no_grad(), model.disable_adapter():
        ref = forward_pairs(model, batch)
    out = forward_pairs(model, batch)
    margin = (out.chosen.sum - ref.chosen.sum) - (out.rejected.sum - ref.rejected.sum)
    return -torch.nn.functional.logsigmoid(beta * margin).mean()


def test_bf16_first_step_loss_is_within_0_01_of_fp32():
    """Non-zero LoRA B, so policy and reference differ and the loss is not log 2 by
    construction (measured: |bf16 - fp32| ~ 1e-3 here)."""
    (m32, tok), (m16, _) = lora_model("fp32"), lora_model("bf16")
    batch = batch_for(tok)
    l32, l16 = dpo_loss(m32, batch).item(), dpo_loss(m16, batch).item()
    assert abs(l32 - 0.6931) > 0.01  # the adapter moved the loss away from log 2
    assert abs(l16 - l32) < 0.01, (l16, l32)


def test_fp16_is_refused_on_cpu_before_anything_is_written(tmp_path):
    cfg = tiny_cfg(tmp_path, precision="fp16")
    with pytest.raises(precision.PrecisionError, match="use bf16 on CPU"):
        loop.train(cfg, evaluate=False)
    assert not (tmp_path / "run").exists()
    with pytest.raises(precision.PrecisionError, match="fp32, bf16, fp16"):
        precision.check_precision("bfloat16")


def test_reference_tables_are_keyed_by_precision(tmp_path):
    rows = build_method(MethodConfig()).reference_rows
    tables = {}
    for prec in ("fp32", "bf16", "bf16"):
        model, tok = lora_model(prec)
        items = PairTokenizer(tok, 64).tokenize_all([Pair(f"q{i}?", "yes" * (i + 1), "no") for i in range(4)], "t")[0]
        table, hit = ref_cache.reference_table(model, items, tok.pad_token_id, 2, {}, rows, root=tmp_path)
        tables.setdefault(prec, []).append((table, hit))
    assert not tables["fp32"][0][1] and not tables["bf16"][0][1]  # bf16 did not reuse the fp32 file
    assert tables["bf16"][1][1]  # a second bf16 run did
    assert len(list(tmp_path.glob("*.safetensors"))) == 2
    assert not torch.equal(tables["fp32"][0][0]["chosen_sum"], tables["bf16"][0][0]["chosen_sum"])


def tiny_cfg(tmp_path, name="run", method=None, **training) -> TrainConfig:
    rows = [
        {
            "prompt": f"What is {i} plus one? Answer with a number.",
            "chosen": f"It is {i + 1}.",
            "rejected": f"{i + 2}" * (1 + i % 3),
        }
        for i in range(16)
    ]
    data = tmp_path / "pairs.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    return TrainConfig(
        model=MODEL,
        data=DataConfig(dataset=str(data), batch_size=4, max_length=64),
        training=TrainingConfig(
            **{"max_steps": 2, "eval_every": 0, "seed": 3, "lr": 2e-3, "warmup_ratio": 0.0, **training}
        ),
        eval=EvalConfig(max_pairs=8),
        method=method or MethodConfig(),
        output_dir=str(tmp_path / name),
    )


def losses(run) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines() if "loss" in line]


def test_bf16_training_tracks_the_fp32_loss_curve(tmp_path, monkeypatch):
    """50 DPO steps from peft's init (B = 0, both start at log 2) on the same batches:
    the bf16 loss stays within 0.06 of the fp32 loss at every step (measured here: max
    gap 0.030, final losses 0.297 fp32 / 0.269 bf16) and falls as far."""
    monkeypatch.setenv("INNERPO_CACHE", str(tmp_path / "cache"))
    fp32 = losses(loop.train(tiny_cfg(tmp_path, "fp32", max_steps=50), evaluate=False))
    bf16 = losses(loop.train(tiny_cfg(tmp_path, "bf16", max_steps=50, precision="bf16"), evaluate=False))
    assert len(fp32) == len(bf16) == 50
    gaps = [abs(a - b) for a, b in zip(fp32, bf16)]
    assert max(gaps) < 0.06, max(gaps)
    assert fp32[-1] < fp32[0] - 0.1 and bf16[-1] < bf16[0] - 0.1  # both really trained


def test_hidden_state_method_stays_finite_in_bf16(tmp_path, monkeypatch):
    monkeypatch.setenv("INNERPO_CACHE", str(tmp_path / "cache"))
    method = MethodConfig(hidden_loss="innerpo", collect="side", layers="1,2")
    run = loop.train(tiny_cfg(tmp_path, "inner", method=method, max_steps=4, precision="bf16"), evaluate=False)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    assert all(
        isinstance(v, float) and v == v and abs(v) != float("inf")
        for r in rows
        for v in r.values()
        if isinstance(v, float)
    )


def test_a_bf16_run_is_evaluated_like_an_fp32_run(tmp_path, monkeypatch):
    """The final evaluation of a bf16 run (scoring, base rows, greedy generation samples)
    runs in the run's precision: it completes and writes the same files as fp32."""
    monkeypatch.setenv("INNERPO_CACHE", str(tmp_path / "cache"))
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"shifts:\n  in_domain: {{dataset: {tmp_path / 'pairs.jsonl'}}}\n")
    cfg = tiny_cfg(tmp_path, "bf16", precision="bf16")
    cfg = dataclasses.replace(
        cfg, eval=dataclasses.replace(cfg.eval, suite=str(suite), samples_per_shift=2, max_new_tokens=8)
    )
    run = loop.train(cfg)
    summary = json.loads((run / "summary.json").read_text())
    scored = summary["shifts"]["in_domain"]
    assert scored["n_pairs"] == 8 and 0 <= scored["adapter_accuracy"] <= 1 and 0 <= scored["base_accuracy"] <= 1
    assert (run / "samples.md").is_file() and (run / "pairs.parquet").is_file()


def test_bf16_tied_head_gets_its_own_bf16_copy_with_autocasts_numbers():
    """The tied head is stored in bf16 once (what autocast casts it to on every call) while
    the embedding keeps float32: log-probs are bit-identical to the tied float32 head's."""
    model, tok = lora_model("bf16")
    base = model.get_base_model()
    head, embedding = base.get_output_embeddings().weight, base.get_input_embeddings().weight
    assert head.dtype == torch.bfloat16 and embedding.dtype == torch.float32 and not head.requires_grad
    assert torch.equal(head, embedding.to(torch.bfloat16))
    batch = batch_for(tok)
    with torch.no_grad():
        untied = forward_pairs(model, batch)
        tied = torch.nn.Linear(embedding.shape[1], embedding.shape[0], bias=False)
        tied.weight = embedding  # the fp32 tied head as before: autocast casts it per call
        base.set_output_embeddings(tied)
        before = forward_pairs(model, batch)
    assert torch.equal(untied.chosen.sum, before.chosen.sum) and torch.equal(untied.rejected.sum, before.rejected.sum)
