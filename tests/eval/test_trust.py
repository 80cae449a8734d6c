"""Counts, intervals, samples, periodic held-out evaluation and eval directory names (tiny-random)."""

import json
import math

import pytest

from innerpo.data.config import DataConfig
from innerpo.data.tokenize import PairTokenizer
from innerpo.eval.config import EvalConfig
from innerpo.eval.periodic import held_out_eval
from innerpo.eval.report import evaluate_suite, tables, write_results
from innerpo.eval.stats import paired_difference_interval, wilson_interval
from innerpo.models.config import ModelConfig
from innerpo.models.load import add_lora, load_base, model_settings
from innerpo.train.config import TrainConfig, TrainingConfig
from innerpo.train.evaluate import eval_dir_name


def rows(n_short, n_long):
    short = [
        {"prompt": f"Is {i} even?", "chosen": "yes" if i % 2 == 0 else "no", "rejected": "maybe"}
        for i in range(n_short)
    ]
    long = [{"prompt": f"Tell me about {i}.", "chosen": "x" * 120, "rejected": "y"} for i in range(n_long)]
    # long pairs first: a limit applied before the length rule would score none of the short ones
    return long + short


@pytest.fixture
def tiny_lora(monkeypatch, tmp_path):
    monkeypatch.setenv("INNERPO_CACHE", str(tmp_path / "cache"))
    cfg = ModelConfig(base_model="tiny-random", lora_r=4)
    base, tok = load_base(cfg)
    return add_lora(base, cfg, 0), tok, cfg


def test_long_pairs_are_counted_and_max_pairs_takes_scorable_ones(tmp_path, tiny_lora):
    model, tok, mcfg = tiny_lora
    data = tmp_path / "mixed.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows(n_short=4, n_long=6)))
    suite = tmp_path / "s.yaml"
    suite.write_text(f"name: mine\nshifts:\n  mixed: {{dataset: {data}}}\n")
    cfg = EvalConfig(suite=str(suite), max_pairs=3, samples_per_shift=2, max_new_tokens=4)
    summary, frame = evaluate_suite(model, tok, PairTokenizer(tok, 64), cfg, DataConfig(), model_settings(mcfg))
    s = summary["shifts"]["mixed"]
    assert (s["n_source"], s["n_kept"], s["n_dropped_too_long"], s["n_pairs"]) == (10, 4, 6, 3)
    assert s["few_pairs"] and summary["min_pairs"] == 50
    assert frame["index"].tolist() == [6, 7, 8]  # the first three scorable pairs, by source position
    flags = frame["adapter_correct"].astype(bool)
    assert s["adapter_accuracy_ci"] == pytest.approx(list(wilson_interval(int(flags.sum()), 3)))
    d, lo, hi = paired_difference_interval(flags.tolist(), frame["base_correct"].astype(bool).tolist())
    assert s["change_ci"] == pytest.approx([lo, hi]) and s["change"] == pytest.approx(d)
    text = tables(summary)
    assert (
        "| mixed (few) | 3 |" in text
        and "| mixed | 10 | 4 | 0 | 6 | 3 |" in text
        and "fewer than --eval.min_pairs=50" in text
    )
    # samples: two probes, base and adapter, flagged; written beside the results
    assert s["samples_n"] == 2 and len(summary["samples"]["mixed"]) == 2
    assert {"base", "adapter", "base_problems", "adapter_problems", "prompt", "chosen"} <= set(
        summary["samples"]["mixed"][0]
    )
    write_results(tmp_path / "out", summary, frame)
    md = (tmp_path / "out" / "samples.md").read_text()
    assert "## mixed" in md and "**base**" in md and "**adapter**" in md and "Is 0 even?" in md
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["shifts"]["mixed"]["n_kept"] == 4


def train_cfg(tmp_path, suite_text, dataset):
    suite = tmp_path / "suite.yaml"
    suite.write_text(suite_text)
    return TrainConfig(
        model=ModelConfig(base_model="tiny-random", lora_r=4),
        data=DataConfig(dataset=dataset, max_length=64),
        training=TrainingConfig(eval_every=5, eval_pairs=6),
        eval=EvalConfig(suite=str(suite)),
    )


def held_out(cfg, pair_tok, train_pairs, pad_id):
    return held_out_eval(
        cfg.data,
        cfg.eval,
        pair_tok,
        train_pairs,
        pad_id,
        every=cfg.training.eval_every,
        n_pairs=cfg.training.eval_pairs,
        beta=cfg.method.beta,
    )


def test_periodic_eval_is_held_out_or_off(tmp_path, tiny_lora, capsys):
    model, tok, _ = tiny_lora
    pair_tok = PairTokenizer(tok, 64)
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows(8, 0)))
    # the suite's in_domain shift is the training file: off, and said so
    cfg = train_cfg(tmp_path, f"shifts:\n  in_domain: {{dataset: {data}}}\n", str(data))
    assert held_out(cfg, pair_tok, [], tok.pad_token_id) is None
    assert "is the training data" in capsys.readouterr().out
    # no in_domain shift at all: off (never the first shift, which may be training data)
    cfg = train_cfg(tmp_path, "shifts:\n  other: {dataset: 'synthetic:alt_encoding'}\n", str(data))
    assert held_out(cfg, pair_tok, [], tok.pad_token_id) is None
    assert "has no in_domain shift" in capsys.readouterr().out
    # a held-out split: on; pairs also in the training subset are left out
    from innerpo.data.sources import load_pairs

    cfg = train_cfg(tmp_path, "shifts:\n  in_domain: {dataset: 'synthetic:in_domain', split: test}\n", "synthetic")
    test_pairs = load_pairs("synthetic:in_domain", "test")
    periodic = held_out(cfg, pair_tok, test_pairs[:3], tok.pad_token_id)
    assert len(periodic.items) == 6 and "3 of its pairs are training pairs and were left out" in capsys.readouterr().out

    class Log(list):
        write = list.append

    log = Log()
    row = periodic(model, log, step=0)
    # fresh LoRA (B = 0): policy == reference, so the margin is 0 and the DPO loss log 2
    assert row["eval/rewards/margins"] == pytest.approx(0.0, abs=1e-6) and row["eval/loss"] == pytest.approx(
        math.log(2), abs=1e-6
    )
    assert row["eval/n"] == 6 and "eval/base_accuracy" in row and log == [row]
    later = periodic(model, log, step=5)
    assert (
        "eval/base_accuracy" not in later
        and "eval/loss" in later
        and periodic.due(5, 7)
        and periodic.due(7, 7)
        and not periodic.due(6, 7)
    )


def test_eval_dir_names_never_collide_with_the_run_or_other_settings():
    run = EvalConfig(suite="synthetic")
    assert eval_dir_name(run, run) == "eval-synthetic"
    assert (
        eval_dir_name(EvalConfig(suite="synthetic", max_pairs=50, batch_size=4), run) == "eval-synthetic-max_pairs=50"
    )
    assert (
        eval_dir_name(EvalConfig(suite="/x/mine.yaml", coherence_threshold=1.0), run)
        == "eval-mine-coherence_threshold=1.0"
    )
    assert eval_dir_name(EvalConfig(name="v2"), run) == "eval-v2"
    with pytest.raises(ValueError, match="--eval.name='../up'"):
        eval_dir_name(EvalConfig(name="../up"), run)
