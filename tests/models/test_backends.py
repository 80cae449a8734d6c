"""--model.attn_implementation, --model.load_in_4bit/8bit and --training.precision=auto."""

import importlib.util

import pytest
import torch

from innerpo.data.batching import collate_indexed
from innerpo.data.pairs import Pair
from innerpo.data.tokenize import PairTokenizer
from innerpo.errors import ConfigError
from innerpo.models import backends, forward, precision
from innerpo.models.config import ModelConfig
from innerpo.models.load import add_lora, load_base, model_settings

# --- precision auto ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags, expected", [({"avx512_bf16", "avx2"}, "bf16"), ({"amx_bf16"}, "bf16"), ({"avx2", "avx512f"}, "fp32")]
)
def test_auto_precision_on_cpu_follows_the_bf16_instructions(monkeypatch, flags, expected):
    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    assert precision.resolve_precision("auto", "cpu") == expected
    assert precision.resolve_precision("fp32", "cpu") == "fp32"  # explicit choices are kept


def test_auto_precision_on_cuda_follows_bf16_support(monkeypatch):
    for supported, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda s=supported: s)
        assert precision.resolve_precision("auto", "cuda") == expected


def test_cpu_flags_reads_proc_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx512_bf16\n")
    assert precision.cpu_flags(str(info)) == {"fpu", "sse", "avx512_bf16"}
    assert precision.cpu_flags(str(tmp_path / "none")) == set()


def test_prepare_model_records_the_resolved_precision(tiny_model, monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512_bf16"})
    model, _ = tiny_model
    precision.prepare_model(model, "auto", "cpu")
    assert precision.precision_of(model) == "bf16"  # the reference cache keys by this, never "auto"
    assert precision.accelerator_kwargs("auto") == {}


# --- attention ---------------------------------------------------------------------------


def test_attention_choices_are_checked_with_the_flag_named():
    with pytest.raises(ConfigError, match="--model.attn_implementation=flash_attention_2 needs a CUDA GPU"):
        backends.check_model_options(ModelConfig(attn_implementation="flash_attention_2"), "cpu")
    with pytest.raises(ConfigError, match="flex_attention cannot train on cpu"):
        backends.check_model_options(ModelConfig(attn_implementation="flex_attention"), "cpu")
    backends.check_model_options(ModelConfig(attn_implementation="flex_attention"), "cpu", training=False)
    backends.check_model_options(ModelConfig(attn_implementation="eager"), "cpu")


def test_eager_attention_is_passed_on_and_scoring_steps_aside_from_packing(tiny_tok):
    cfg = ModelConfig(base_model="tiny-random", attn_implementation="eager")
    model, tok = load_base(cfg)
    assert model.config._attn_implementation == "eager"
    assert model_settings(cfg)["attn_implementation"] == "eager"  # a reference table of its own
    assert "attn_implementation" not in model_settings(ModelConfig(base_model="tiny-random"))  # old keys kept
    pairs = [Pair(f"Question {i}?", "yes" * (i + 1), "no") for i in range(3)]
    batch = collate_indexed(list(enumerate(PairTokenizer(tok, 64).tokenize_all(pairs, "t")[0])), tok.pad_token_id)
    with torch.no_grad():
        assert forward._packed_logps(model, batch) is None  # packing reproduces SDPA only
        eager = forward.logp_rows(model, batch)
        sdpa_model, _ = load_base(ModelConfig(base_model="tiny-random"))
        sdpa = forward.logp_rows(sdpa_model, batch)
    torch.testing.assert_close(eager["chosen_sum"], sdpa["chosen_sum"], rtol=1e-4, atol=1e-4)


# --- 4-bit / 8-bit ----------------------------------------------------------------------


def test_quantization_needs_bitsandbytes(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name))
    for flag in ("load_in_4bit", "load_in_8bit"):
        with pytest.raises(ConfigError, match=rf"--model.{flag} needs bitsandbytes: pip install 'innerpo\[qlora\]'"):
            backends.check_model_options(ModelConfig(**{flag: True}), "cpu")


def test_quantization_refusals_name_the_flags():
    with pytest.raises(ConfigError, match="exclude each other"):
        backends.check_model_options(ModelConfig(load_in_4bit=True, load_in_8bit=True), "cpu")
    if importlib.util.find_spec("bitsandbytes") is not None:
        with pytest.raises(ConfigError, match="does not run on mps"):
            backends.check_model_options(ModelConfig(load_in_4bit=True), "mps")


@pytest.mark.parametrize("bits", ["4bit", "8bit"])
def test_quantized_base_trains_lora_against_itself_with_the_adapter_off(bits):
    """bitsandbytes' CPU backend: the base's linear layers quantized, LoRA float32 on top, a
    DPO loss whose reference is the same quantized model with the adapter disabled."""
    pytest.importorskip("bitsandbytes")
    from innerpo.methods.build import build_method
    from innerpo.methods.config import MethodConfig

    cfg = ModelConfig(base_model="tiny-random", lora_r=4, **{f"load_in_{bits}": True})
    model, tok = load_base(cfg)
    layer = model.model.layers[0].self_attn.q_proj
    assert type(layer).__module__.startswith("bitsandbytes")
    assert model_settings(cfg)["quantized"] == bits
    model = add_lora(model, cfg, seed=0)
    pairs = [Pair(f"Question {i}?", "yes" * (i + 1), "no") for i in range(2)]
    batch = collate_indexed(list(enumerate(PairTokenizer(tok, 64).tokenize_all(pairs, "t")[0])), tok.pad_token_id)
    method = build_method(MethodConfig())
    method.bind(model)
    model.train()
    out = method.loss(method.loss_inputs(model, batch))
    # a fresh adapter (lora_B = 0) is the reference exactly: the loss is log 2
    torch.testing.assert_close(out.loss.detach(), torch.tensor(0.6931472), rtol=1e-4, atol=1e-4)
    out.loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if "lora_B" in n]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)
