"""KTO's method-side paths: the mismatched KL batch and forwards on paired data, and
training on unpaired prompt/completion/label data (parsing, tokenization, batching, the
method, end to end through the CLI, refusals)."""

import json
import re

import pytest
import torch

from innerpo.cli import main
from innerpo.data.batching import PairBatch, UnpairedBatch, collate, collate_unpaired, roll_completions
from innerpo.data.pairs import Pair
from innerpo.data.sources import load_examples, load_pairs
from innerpo.data.tokenize import PairTokenizer, TokenizedPair
from innerpo.data.unpaired import TokenizedExample, UnpairedExample, parse_unpaired, tokenize_unpaired
from innerpo.errors import DataError
from innerpo.losses.kto import KL_POLICY_KEY, KL_REF_KEY
from innerpo.methods.build import build_method
from innerpo.methods.config import MethodConfig
from innerpo.methods.kto import KTOUnpairedMethod, mismatched_kl_logps
from innerpo.models.config import ModelConfig
from innerpo.models.forward import forward_pairs
from innerpo.models.load import add_lora, load_base

PAD = 0


def rows_of(ids, attn, comp):
    """(prompt, completion) token lists of each row of a padded batch."""
    out = []
    for i, a, c in zip(ids.tolist(), attn.tolist(), comp.tolist()):
        out.append(([t for t, m, k in zip(i, a, c) if m and not k], [t for t, k in zip(i, c) if k]))
    return out


# --- the mismatched batch ------------------------------------------------------------------


def test_roll_gives_prompt_i_the_completions_of_pair_i_minus_1():
    items = [
        TokenizedPair((1, 2), (10,), (20, 21, 22)),
        TokenizedPair((3,), (11, 12), (23,)),
        TokenizedPair((4, 5, 6), (13, 14, 15), (24, 25)),
    ]
    rolled = roll_completions(collate(items, PAD))
    assert isinstance(rolled, PairBatch) and rolled.num_pairs == 3 and rolled.index is None
    got = rows_of(rolled.input_ids, rolled.attention_mask, rolled.completion_mask)
    assert got == [
        ([1, 2], [13, 14, 15]),
        ([3], [10]),
        ([4, 5, 6], [11, 12]),  # chosen half: prompt i + chosen i−1 (cyclic)
        ([1, 2], [24, 25]),
        ([3], [20, 21, 22]),
        ([4, 5, 6], [23]),  # rejected half: prompt i + rejected i−1
    ]
    # right-padded, masks consistent
    assert rolled.input_ids.shape[1] == max(len(p) + len(c) for p, c in got)
    assert (rolled.completion_mask.long() <= rolled.attention_mask).all()


def test_roll_of_unpaired_batch_and_of_a_single_example():
    items = [TokenizedExample((1,), (10, 11), True), TokenizedExample((2, 3), (12,), False)]
    batch = collate_unpaired(items, PAD)
    assert batch.num_pairs == 2 and batch.labels.tolist() == [True, False]
    rolled = roll_completions(batch)
    assert isinstance(rolled, UnpairedBatch)
    assert rows_of(rolled.input_ids, rolled.attention_mask, rolled.completion_mask) == [([1], [12]), ([2, 3], [10, 11])]
    one = collate([TokenizedPair((1,), (10,), (20,))], PAD)
    same = roll_completions(one)
    assert torch.equal(same.input_ids, one.input_ids) and torch.equal(same.completion_mask, one.completion_mask)


@pytest.fixture(scope="module")
def tiny_lora():
    base, tok = load_base(ModelConfig(base_model="tiny-random", lora_r=4))
    model = add_lora(base, ModelConfig(base_model="tiny-random", lora_r=4), seed=0)
    with torch.no_grad():  # a non-zero adapter, so policy and reference differ
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    model.train()
    return model, tok


def tokenized_pairs(tok, n=3):
    pt = PairTokenizer(tok, 64)
    pairs = [Pair(f"Q{i}?", "yes" * (i + 1), "no") for i in range(n)]
    return pt.tokenize_all(pairs, "t")[0]


def test_kto_paired_loss_inputs_carry_the_mismatched_kl_logps(tiny_lora):
    model, tok = tiny_lora
    batch = collate(tokenized_pairs(tok), tok.pad_token_id)
    method = build_method(MethodConfig(losses=["kto"]))
    x = method.loss_inputs(model, batch)
    kl_p, kl_r = x.extra[KL_POLICY_KEY], x.extra[KL_REF_KEY]
    assert kl_p.shape == kl_r.shape == (6,) and not kl_p.requires_grad and not kl_r.requires_grad
    with torch.no_grad():
        rolled = roll_completions(batch)
        want_p = forward_pairs(model, rolled)
        with model.disable_adapter():
            want_r = forward_pairs(model, rolled)
    torch.testing.assert_close(kl_p, torch.cat([want_p.chosen.sum, want_p.rejected.sum]))
    torch.testing.assert_close(kl_r, torch.cat([want_r.chosen.sum, want_r.rejected.sum]))
    assert not torch.allclose(kl_p, kl_r), "policy KL log-probs must be scored with the adapter on"
    out = method.loss(x)
    assert out.loss.requires_grad and out.metrics["kl"] == pytest.approx(
        max(0.0, (kl_p - kl_r).mean().item()), rel=1e-5
    )


def test_kto_batch_estimate_and_other_losses_run_no_kl_forward(tiny_lora, monkeypatch):
    model, tok = tiny_lora
    batch = collate(tokenized_pairs(tok), tok.pad_token_id)
    import innerpo.methods.kto as kto_methods

    monkeypatch.setattr(kto_methods, "roll_completions", lambda *a: pytest.fail("KL forward ran"))
    for cfg in (MethodConfig(losses=["kto"], kto_kl_estimate="batch"), MethodConfig(losses=["dpo"])):
        assert build_method(cfg).loss_inputs(model, batch).extra == {}


# --- unpaired data ---------------------------------------------------------------------------


def write_unpaired(path, n=12, labels=None):
    labels = labels if labels is not None else [bool(i % 2) for i in range(n)]
    rows = [
        {"prompt": f"What is {i} + 1?", "completion": str(i + 1) if lab else str(i + 5) * 2, "label": lab}
        for i, lab in enumerate(labels)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return str(path)


def test_unpaired_rows_parse_and_validate(tmp_path):
    ex = parse_unpaired(
        {
            "prompt": [{"role": "user", "content": "hi"}],
            "completion": [{"role": "assistant", "content": "yo"}],
            "label": 1,
        },
        "w",
    )
    assert ex == UnpairedExample((("user", "hi"),), "yo", True)
    assert ex.prompt_messages() == [{"role": "user", "content": "hi"}]
    with pytest.raises(DataError, match=r"w: 'label' must be true \(desirable\) or false"):
        parse_unpaired({"prompt": "p", "completion": "c", "label": "yes"}, "w")
    with pytest.raises(DataError, match="w: 'completion' is empty"):
        parse_unpaired({"prompt": "p", "completion": " ", "label": True}, "w")

    f = tmp_path / "u.jsonl"
    write_unpaired(f, 4)
    examples = load_examples(str(f))
    assert all(isinstance(e, UnpairedExample) for e in examples) and [e.label for e in examples] == [
        False,
        True,
        False,
        True,
    ]
    with pytest.raises(DataError, match=r"u.jsonl, line 1: a prompt/completion/label row \(unpaired data\)"):
        load_pairs(str(f))  # eval suites and pair-only callers refuse it clearly

    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(f.read_text() + "\n" + json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}))
    with pytest.raises(DataError, match="row 4 is a pair but row 0 is unpaired"):
        load_examples(str(mixed))


def test_unpaired_tokenization_uses_the_pair_rules(tiny_tok):
    pt = PairTokenizer(tiny_tok, 40)
    long_prompt = "x" * 80
    ex = UnpairedExample(long_prompt, "answer", True)
    items, report = tokenize_unpaired(pt, [ex, UnpairedExample("short", "y" * 60, False)], "src")
    pair = pt(Pair(long_prompt, "answer", "answer"))
    assert items == [TokenizedExample(pair.prompt, pair.chosen, True)]
    assert report.prompt_truncated == 1 and report.dropped_too_long == 1
    assert report.describe("src") == "src: 1/2 examples kept, 1 prompts cut from the left, 1 dropped as too long"


def test_forward_on_an_unpaired_batch_scores_every_row(tiny_lora):
    model, tok = tiny_lora
    pairs = tokenized_pairs(tok, 2)
    examples = [TokenizedExample(p.prompt, p.chosen, True) for p in pairs]
    with torch.no_grad():
        out = forward_pairs(model, collate_unpaired(examples, tok.pad_token_id))
        ref = forward_pairs(model, collate(pairs, tok.pad_token_id))
    assert out.chosen.sum.shape == (2,) and out.rejected.sum.numel() == 0
    torch.testing.assert_close(out.chosen.sum, ref.chosen.sum, rtol=1e-4, atol=1e-4)


def test_unpaired_method_inputs_and_loss(tiny_lora):
    model, tok = tiny_lora
    pairs = tokenized_pairs(tok, 3)
    batch = collate_unpaired(
        [TokenizedExample(p.prompt, p.chosen if i % 2 else p.rejected, bool(i % 2)) for i, p in enumerate(pairs)],
        tok.pad_token_id,
    )
    rows = [UnpairedExample("p", "c", True), UnpairedExample("q", "d", False)]
    method = build_method(MethodConfig(losses=["kto"]), None, rows)
    assert isinstance(method, KTOUnpairedMethod)
    assert method.cacheable_reference is False and method.loss.uses_reference
    x = method.loss_inputs(model, batch)
    assert x.policy.sum.requires_grad and not x.ref.sum.requires_grad
    kl = mismatched_kl_logps(model, batch)
    torch.testing.assert_close(x.kl_policy, kl[KL_POLICY_KEY])
    assert x.kl_policy.shape == (3,)
    out = method.loss(x)
    direct = method.loss.kto.forward_unpaired(x.policy, x.ref, batch.labels, x.kl_policy, x.kl_ref)
    assert out.loss.item() == pytest.approx(direct.loss.item())
    out.loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "lora_" in n)
    model.zero_grad(set_to_none=True)


def test_unpaired_method_refusals():
    examples = [UnpairedExample("p", "c", True), UnpairedExample("q", "d", True)]
    with pytest.raises(ValueError, match=r"kto: the data has 2 desirable \(label=True\) and 0 undesirable"):
        build_method(MethodConfig(losses=["kto"]), None, examples)
    with pytest.raises(ValueError, match=r"which only the kto loss trains on \(this method: dpo\)"):
        build_method(MethodConfig(losses=["dpo"]), None, examples + [UnpairedExample("r", "e", False)])
    with pytest.raises(ValueError, match=r"\(this method: kto \+ sft\)"):
        build_method(MethodConfig(losses=["kto", "sft"], weights=[1.0, 1.0]), None, examples)


@pytest.fixture
def kto_args(tmp_path, monkeypatch):
    """Tiny-random CLI flags: batches of 4, 2 steps, evaluated on a YAML suite of 8 pairs."""
    monkeypatch.setenv("INNERPO_CACHE", str(tmp_path / "cache"))
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        "\n".join(
            json.dumps({"prompt": f"What is {i} + 1?", "chosen": str(i + 1), "rejected": str(i + 2) * 3})
            for i in range(8)
        )
    )
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"shifts:\n  in_domain: {{dataset: {pairs}}}\n")
    return [
        "--model.base_model=tiny-random",
        "--model.lora_r=4",
        "--data.batch_size=4",
        "--data.max_length=64",
        "--training.max_steps=2",
        "--training.eval_every=0",
        f"--eval.suite={suite}",
        "--eval.max_pairs=4",
    ]


def test_kto_trains_end_to_end_on_unpaired_data(kto_args, tmp_path, capsys, monkeypatch):
    from innerpo.train import loop

    # the training reference table holds pairs: an unpaired run scores its reference each step
    monkeypatch.setattr(loop, "reference_table", lambda *a, **k: pytest.fail("pair reference cache used"))
    data = write_unpaired(tmp_path / "unpaired.jsonl")
    run = tmp_path / "run"
    main(["train", "kto", *kto_args, f"--data.dataset={data}", f"--output_dir={run}"])
    out = capsys.readouterr().out
    assert "12/12 examples kept" in out
    rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and rows[0]["pairs_seen"] == 4
    assert {"loss", "kl", "grad_norm"} <= set(rows[1]) and rows[0]["grad_norm"] > 0
    summary = json.loads((run / "summary.json").read_text())  # evaluation still uses the pair suite
    assert summary["shifts"]["in_domain"]["n_pairs"] == 4


def test_kto_refuses_unpaired_data_with_one_label(kto_args, tmp_path, capsys):
    data = write_unpaired(tmp_path / "good_only.jsonl", labels=[True] * 6)
    with pytest.raises(SystemExit) as e:  # refused by validation: exit 2, nothing written
        main(["train", "kto", *kto_args, f"--data.dataset={data}", f"--output_dir={tmp_path / 'run'}"])
    assert e.value.code == 2 and re.search(
        r"6 desirable \(label=True\) and 0 undesirable .* KTO needs both", capsys.readouterr().err
    )
    assert not (tmp_path / "run").exists()


def test_pair_methods_refuse_unpaired_data(kto_args, tmp_path, capsys):
    data = write_unpaired(tmp_path / "unpaired.jsonl")
    with pytest.raises(SystemExit) as e:
        main(["train", "dpo", *kto_args, f"--data.dataset={data}", f"--output_dir={tmp_path / 'run'}"])
    assert e.value.code == 2 and re.search(
        r"which only the kto loss trains on \(this method: dpo\)", capsys.readouterr().err
    )
    assert not (tmp_path / "run").exists()
