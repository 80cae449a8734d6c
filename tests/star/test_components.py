"""The pieces STaR added below it: SFT on prompt/completion rows and --model.init_adapter;
plus training-data building, the Wilson interval and prompt rendering."""

import pytest
import torch

from innerpo.data.unpaired import UnpairedExample
from innerpo.errors import ConfigError, DataError
from innerpo.methods.build import build_method
from innerpo.methods.config import MethodConfig
from innerpo.methods.kto import KTOUnpairedMethod
from innerpo.methods.sft_unpaired import SFTUnpairedMethod
from innerpo.models.config import ModelConfig
from innerpo.models.load import add_lora, load_base, model_settings
from innerpo.star import build, prompts
from innerpo.star.schema import Question

Q = Question("q1", "What is 2 + 3?", ("4", "5", "6", "7"), "B")


def test_sft_on_unpaired_rows_is_the_mean_per_token_nll(tiny_tok):
    from innerpo.data.batching import collate_unpaired
    from innerpo.data.tokenize import PairTokenizer
    from innerpo.data.unpaired import tokenize_unpaired
    from innerpo.models import tiny

    rows = [UnpairedExample("What is 2 + 3?", "2 + 3 = 5.", True), UnpairedExample("Hi", "Hello there", True)]
    method = build_method(MethodConfig(losses=["sft"], weights=[1.0]), None, rows)
    assert isinstance(method, SFTUnpairedMethod) and not method.loss.uses_reference
    model, tok = tiny.build()
    items, _ = tokenize_unpaired(PairTokenizer(tok, 64), rows, "test")
    batch = collate_unpaired(items, tok.pad_token_id)
    out = method.loss(method.loss_inputs(model, batch))
    # by hand: per-token mean NLL of each completion, then the mean over rows
    expected = []
    for it in items:
        ids = torch.tensor([list(it.prompt) + list(it.completion)])
        logp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)
        targets = ids[0, 1:]
        tok_lp = logp[torch.arange(len(targets)), targets][len(it.prompt) - 1 :]
        expected.append(-tok_lp.mean())
    assert out.loss.item() == pytest.approx(torch.stack(expected).mean().item(), rel=1e-4)
    with pytest.raises(DataError, match="label false"):
        build_method(MethodConfig(losses=["sft"], weights=[1.0]), None, rows + [UnpairedExample("x", "y", False)])
    # KTO still takes unpaired data with both labels
    assert isinstance(
        build_method(MethodConfig(losses=["kto"], weights=[1.0]), None, rows + [UnpairedExample("x", "y", False)]),
        KTOUnpairedMethod,
    )


def test_init_adapter_merges_an_earlier_adapter_into_the_base(tmp_path):
    base, tok = load_base(ModelConfig(base_model="tiny-random"))
    peft = add_lora(base, ModelConfig(base_model="tiny-random", lora_r=4), seed=0)
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    ids = torch.tensor([[5, 6, 7, 8]])
    want = peft(ids).logits
    peft.save_pretrained(tmp_path / "adapter")
    cfg = ModelConfig(base_model="tiny-random", init_adapter=[str(tmp_path / "adapter")])
    merged, _ = load_base(cfg)
    assert torch.allclose(merged(ids).logits, want, atol=1e-4)
    assert not any(p.requires_grad for p in merged.parameters())
    assert "init_adapter" in model_settings(cfg) and "init_adapter" not in model_settings(ModelConfig())
    with pytest.raises(ConfigError, match="not an adapter directory"):
        load_base(ModelConfig(base_model="tiny-random", init_adapter=[str(tmp_path)]))


def test_strip_hint_and_pair_building():
    assert build.strip_hint("5 is (B) 5 (CORRECT). The answer is 5.") == "5 is (B) 5. The answer is 5."
    assert build.strip_hint("The hint says B. The answer is 5.") is None
    j = lambda text, ans, flags=(): build.Judged(Q, text, ans, list(flags))  # noqa: E731
    samples = {
        "q1": [
            j("r1 B", "B"),
            j("w1 A", "A"),
            j("r1  B", "B"),
            j("r2 B", "B"),
            j("w2 C", "C"),
            j("loop", "B", ["repetition"]),
            j("none", None, ["no_answer"]),
        ]
    }
    sft = build.sft_rows(samples, lambda q: q.question)
    assert [r["completion"] for r in sft] == ["r1 B", "r2 B"]  # distinct, correct, not degenerate
    pairs = build.dpo_rows(samples, lambda q: q.question, 3)
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("r1 B", "w1 A"), ("r1 B", "w2 C"), ("r2 B", "w1 A")]
    assert len(build.dpo_rows(samples, lambda q: q.question, 10)) == 4


def test_prompt_rendering_hint_preamble_and_reasoning():
    ex = prompts.load_exemplars(prompts.default_exemplar_file("synthetic"))
    msgs = prompts.messages(ex, Q, 2, hint=True, preamble="Think logically.", reasoning="english")
    assert (
        msgs[0]["role"] == "system"
        and msgs[0]["content"].startswith("Think logically. ")
        and "Reason in English" in msgs[0]["content"]
    )
    assert len(msgs) == 1 + 2 * 2 + 1
    assert msgs[-1]["content"].endswith("(B) 5 (CORRECT)\n(C) 6\n(D) 7")
    assert "(CORRECT)" not in prompts.messages(ex, Q, 2)[-1]["content"]
    numeric = Question("n", "How many?", (), "12")
    assert prompts.render_question(numeric, hint=True).endswith("(Hint: the answer is 12.)")
    for task in ("synthetic", "multiple_choice", "numeric"):
        assert prompts.load_exemplars(prompts.default_exemplar_file(task)).shots


def test_bad_exemplar_file(tmp_path):
    bad = tmp_path / "ex.yaml"
    bad.write_text("instruction: x\nexemplars:\n  - question: q\n")
    with pytest.raises(DataError, match="exemplar 1: needs 'question' and 'rationale'"):
        prompts.load_exemplars(bad)
