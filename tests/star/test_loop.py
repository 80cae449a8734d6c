"""The STaR loop end to end on tiny-random (real training through innerpo.train.loop) with a
scripted generator, both strategies and rationalization; the saved files are read back
independently of the code that wrote them."""

import json
import math
import re

import pytest
import yaml

from innerpo.data.config import DataConfig
from innerpo.errors import ConfigError, DataError, InputError
from innerpo.methods.config import MethodConfig
from innerpo.models.config import ModelConfig
from innerpo.star.config import StarConfig, StarRunConfig
from innerpo.star.loop import run_star
from innerpo.train.config import TrainingConfig

from .fakes import ScriptedGenerator


def _cfg(tmp_path, out="run", **star) -> StarRunConfig:
    return StarRunConfig(
        star=StarConfig(
            **{
                "num_train_questions": 12,
                "num_eval_questions": 8,
                "iterations": 2,
                "samples_per_question": 4,
                "few_shot": 1,
                "max_new_tokens": 24,
                **star,
            }
        ),
        model=ModelConfig(base_model="tiny-random", lora_r=4),
        data=DataConfig(batch_size=4, max_length=256),
        training=TrainingConfig(lr=1e-3, eval_every=0),
        output_dir=str(tmp_path / out),
    )


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _gold_of(prompt_messages):
    """Right option letter, computed from the question text alone."""
    text = prompt_messages[-1]["content"]
    a, b = map(int, re.match(r"What is (\d+) \+ (\d+)\?", text).groups())
    return next(L for L, v in re.findall(r"\(([A-D])\) (\d+)", text) if int(v) == a + b)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INNERPO_CACHE", str(tmp_path / "cache"))


def test_sft_loop_saves_only_correct_hint_free_rationales(tmp_path):
    run = run_star(_cfg(tmp_path, strategy="sft", p_rationalization=1.0), make_generator=ScriptedGenerator)
    summary = json.loads((run / "summary.json").read_text())
    assert [r["iteration"] for r in summary] == [0, 1, 2]
    for it in (1, 2):
        d = run / f"iter-{it}"
        assert (d / "train" / "adapter" / "adapter_config.json").is_file()
        gen = _jsonl(d / "generated.jsonl")
        assert {g["iteration"] for g in gen} == {it}
        flags = {f for g in gen for f in g["flags"]}
        assert {"repetition", "no_answer", "mentions_hint"} <= flags
        rows = _jsonl(d / "train.jsonl")
        assert rows and all(r["label"] is True for r in rows)
        for r in rows:
            letter = re.findall(r"The answer is \(([A-D])\)", r["completion"])
            assert letter and letter[-1] == _gold_of(r["prompt"])  # correct answers only
            assert "CORRECT" not in r["completion"] and "hint" not in r["completion"].lower()
            assert "so so so" not in r["completion"]  # the degenerate sample never trains
            assert all("CORRECT" not in m["content"] for m in r["prompt"])
            assert len(r["prompt"]) == 2  # zero-shot: system + question
        assert any(g["source"] == "rationalization" and g["correct"] for g in gen)
        metrics = json.loads((d / "metrics.json").read_text())
        assert metrics["rationalized"] > 0 and metrics["degenerate/repetition"] > 0
        sampled = [g for g in gen if g["source"] == "sample"]
        assert metrics["samples"] == len(sampled) == 12 * 4 and metrics["correct_samples"] == sum(
            g["correct"] for g in sampled
        )
        assert list(metrics["sets"]) == ["in_domain", "add2", "add3"]  # the default difficulty shift
        for name, m in metrics["sets"].items():
            assert 0 <= m["rationale_ci_low"] <= m["rationale_accuracy"] <= m["rationale_ci_high"] <= 1
            assert "direct_accuracy" in m and m["rationale_n"] == 8
            evals = _jsonl(d / f"eval-{name}.jsonl")
            assert len(evals) == 8 and sum(e["correct"] for e in evals) == m["rationale_correct"]
            assert m["rationale_accuracy"] == m["rationale_correct"] / 8
            assert sum(e["direct_correct"] for e in evals) == round(m["direct_accuracy"] * 8)
            assert name == "in_domain" or all(e["qid"].startswith(name) for e in evals)
    assert (run / "accuracy.png").stat().st_size > 1000
    text = (run / "accuracy.md").read_text()
    assert "| 2 |" in text and "## add3 (8 questions)" in text and "## training data" in text
    last = json.loads((run / "iter-2" / "metrics.json").read_text())["sets"]["add2"]
    assert f"({last['rationale_correct']}/8) [" in text
    assert yaml.safe_load((run / "iter-1" / "train" / "config.yaml").read_text())["training"]["seed"] == 0
    # the run records where it ran; each iteration's training run records its own start
    env = json.loads((run / "environment.json").read_text())
    assert len(env) == 1 and env[0]["device"] == "cpu" and env[0]["packages"]["torch"]
    assert all(len(json.loads((run / f"iter-{it}" / "train" / "environment.json").read_text())) == 1 for it in (1, 2))
    # a second run into the same directory is refused, not mixed in
    with pytest.raises(ConfigError, match="already holds"):
        run_star(_cfg(tmp_path, strategy="sft"), make_generator=ScriptedGenerator)


def test_dpo_loop_pairs_correct_with_incorrect_and_rpo_loss(tmp_path):
    cfg = _cfg(
        tmp_path, strategy="dpo", p_rationalization=0.0, pairs_per_question=2, reset_each_iteration=False, steps=2
    )
    cfg.method = MethodConfig(losses=["dpo", "sft"], weights=[1.0, 1.0])
    run = run_star(cfg, make_generator=ScriptedGenerator)
    rows = _jsonl(run / "iter-1" / "train.jsonl")
    assert rows
    for r in rows:
        gold = _gold_of(r["prompt"])
        assert re.findall(r"\(([A-D])\)", r["chosen"])[-1] == gold
        assert re.findall(r"\(([A-D])\)", r["rejected"])[-1] != gold
    assert len({r["qid"] for r in rows}) == len(rows)  # one right and one usable wrong sample per question
    metrics = _jsonl(run / "iter-2" / "train" / "metrics.jsonl")
    assert len(metrics) == round(2 * 1.2) and "rewards/margins" in metrics[0] and "sft/loss" in metrics[0]
    # continued training: iteration 2 starts from (and refers to) iteration 1's model
    cfg2 = yaml.safe_load((run / "iter-2" / "train" / "config.yaml").read_text())
    assert cfg2["model"]["init_adapter"] == [str(run / "iter-1" / "train" / "adapter")]


def test_preload_skips_generation(tmp_path):
    first = run_star(_cfg(tmp_path, "a", iterations=1, strategy="sft"), make_generator=ScriptedGenerator)
    calls = []

    class Counting(ScriptedGenerator):
        def generate(self, prompts, k, settings):
            calls.append(settings.temperature)
            return super().generate(prompts, k, settings)

    run = run_star(
        _cfg(tmp_path, "b", iterations=1, strategy="sft", preload=str(first / "iter-1" / "train.jsonl")),
        make_generator=Counting,
    )
    assert all(t == 0 for t in calls)  # evaluation only, no sampling
    assert (run / "iter-1" / "train.jsonl").read_text() == (first / "iter-1" / "train.jsonl").read_text()
    assert not (run / "iter-1" / "generated.jsonl").exists()
    with pytest.raises(DataError, match="needs the pairs a dpo run saves"):
        run_star(
            _cfg(tmp_path, "c", strategy="dpo", preload=str(first / "iter-1" / "train.jsonl")),
            make_generator=ScriptedGenerator,
        )


def test_prompt_eval_scores_each_preamble_without_training(tmp_path):
    cfg = _cfg(tmp_path, mode="prompt_eval", preambles=["Think logically.", "Reflect on your answer."])
    run = run_star(cfg, make_generator=ScriptedGenerator)
    rows = json.loads((run / "summary.json").read_text())
    assert [r["preamble"] for r in rows] == ["(none)", "Think logically.", "Reflect on your answer."]
    assert not list(run.glob("iter-*")) and (run / "environment.json").is_file()
    assert "Think logically." in (run / "accuracy.md").read_text()


def test_cli_bad_question_file_exits_2_naming_the_row(tmp_path, capsys):
    from innerpo.cli import main

    bad = tmp_path / "mmlu_YO-NG.csv"
    bad.write_text(",Question,A,B,C,D,Answer,Subject\n0,Q?,a,b,c,d,Z,x\n")
    with pytest.raises(SystemExit) as e:
        main(["star", f"--star.dataset={bad}", f"--output_dir={tmp_path / 'out'}", "--model.base_model=tiny-random"])
    assert e.value.code == 2
    assert "mmlu_YO-NG.csv, row 2: gold answer 'Z'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing written


def test_a_single_question_file_is_split_into_disjoint_train_and_held_out_sets(tmp_path):
    from innerpo.star.question_sets import training_and_in_domain as _questions

    path = tmp_path / "qs.jsonl"
    path.write_text(
        "".join(
            json.dumps({"question": f"What is {i} + 1?", "options": [str(i), str(i + 1)], "answer": "B"}) + "\n"
            for i in range(30)
        )
    )
    train, test = _questions(StarConfig(dataset=str(path), num_eval_questions=10, num_train_questions=None))
    assert len(test) == 10 and len(train) == 20 and not {q.question for q in train} & {q.question for q in test}
    with pytest.raises(DataError, match="leave none for training"):
        _questions(StarConfig(dataset=str(path), num_eval_questions=30))


def test_cli_bad_star_flags_exit_2_and_a_real_error_is_not_hidden(tmp_path, capsys, monkeypatch):
    """Bad STaR input is one line and exit 2; an error that is not bad input (a bug deep in
    the run) keeps its traceback instead of being passed off as a bad flag."""
    from innerpo.cli import main
    from innerpo.star import loop

    cases = [
        (["--star.temperature=0"], "--star.temperature must be > 0"),
        ([f"--star.preload={tmp_path / 'none.jsonl'}"], "--star.preload: no file"),
        ([f"--star.exemplars={tmp_path / 'none.yaml'}"], "--star.exemplars: file not found"),
        (["--star.dataset=/no/such/questions.jsonl"], "question source not found"),
        (["--training.seed=7"], "a STaR run's training seed is --star.seed"),
    ]
    for flags, message in cases:
        with pytest.raises(SystemExit) as e:
            main(["star", "--model.base_model=tiny-random", f"--output_dir={tmp_path / 'out'}", *flags])
        assert e.value.code == 2, flags
        assert message in capsys.readouterr().err, flags
        assert not (tmp_path / "out").exists()

    def broken(cfg):
        raise ValueError("shape mismatch deep inside the run")

    monkeypatch.setattr(loop, "run_star", broken)
    with pytest.raises(ValueError, match="shape mismatch"):
        main(["star", "--model.base_model=tiny-random", f"--output_dir={tmp_path / 'out'}"])


def test_method_preset_trains_generated_pairs_and_sampled_eval_scores(tmp_path):
    """--star.method hs-none-innerpo (InnerDPO): the dpo strategy, the preset's hidden-state
    loss on the generated pairs (reference cache and hidden-state capture included); pass@k
    and maj@n from sampled held-out rationales, each question's scores saved."""
    from innerpo.star.config import with_method

    cfg = _cfg(tmp_path, iterations=1, steps=2, eval_sets=["synthetic:add2"], eval_samples=4, eval_k=[2])
    cfg = with_method(cfg, "HS-None-InnerPO")
    cfg.method.layers = "0.5"
    run = run_star(cfg, make_generator=ScriptedGenerator)
    saved = yaml.safe_load((run / "iter-1" / "train" / "config.yaml").read_text())
    assert saved["method_name"] == "hs-none-innerpo" and saved["method"]["hidden_loss"] == "innerpo"
    steps = _jsonl(run / "iter-1" / "train" / "metrics.jsonl")
    assert len(steps) == 2 and "hidden/margin" in steps[0] and "dpo/loss" in steps[0]  # captured hidden states
    assert "chosen" in _jsonl(run / "iter-1" / "train.jsonl")[0]
    metrics = json.loads((run / "iter-1" / "metrics.json").read_text())
    for name in ("in_domain", "add2"):
        m = metrics["sets"][name]
        rows = _jsonl(run / "iter-1" / f"eval-{name}.jsonl")
        for r in rows:
            c = r["samples_correct"]
            assert len(r["sample_answers"]) == 4 and r["scores"]["pass@1"] == c / 4
            assert r["scores"]["pass@2"] == pytest.approx(1 - math.comb(4 - c, 2) / math.comb(4, 2))
        for score in ("pass@1", "pass@2", "maj@4"):
            assert m[f"{score}_accuracy"] == pytest.approx(sum(r["scores"][score] for r in rows) / len(rows))
            assert m[f"{score}_ci_low"] <= m[f"{score}_accuracy"] <= m[f"{score}_ci_high"]
    # the scripted sampler: a % 3 == 0 → all wrong; else 1 right, 1 wrong, 1 degenerate, 1 without answer
    rows = _jsonl(run / "iter-1" / "eval-in_domain.jsonl")
    for r in rows:
        a = int(re.match(r"What is (\d+)", r["question"]["question"]).group(1))
        assert r["samples_correct"] == (0 if a % 3 == 0 else 1)
        assert r["scores"]["maj@4"] == (0.0 if a % 3 == 0 else 0.5)  # a 1-1 tie between right and wrong
    assert "pass@2 acc." in (run / "accuracy.md").read_text()


def test_refused_method_settings_stop_before_generation(tmp_path):
    from innerpo.star.config import with_method

    def never(model, tok):
        raise AssertionError("generation started")

    bad_layers = with_method(_cfg(tmp_path, "a"), "hs-none-innerpo")
    bad_layers.method.layers = "99"
    unread = with_method(_cfg(tmp_path, "b"), "ipo")
    unread.method.simpo_gamma = 2.0  # ipo does not read it: innerpo train refuses it
    cases = [
        (bad_layers, "layers"),
        (unread, "simpo_gamma"),
        (with_method(_cfg(tmp_path, "c", strategy="sft"), "ipo"), "cannot go with --star.strategy=sft"),
        (_cfg(tmp_path, "d", p_rationalization=1.5), "p_rationalization=1.5"),
        (_cfg(tmp_path, "e", eval_samples=2, eval_k=[3]), "each k must lie in 1..--star.eval_samples"),
        (_cfg(tmp_path, "f", method="innerdpo-alias-that-does-not-exist"), "unknown method"),
    ]
    for cfg, message in cases:
        with pytest.raises(InputError, match=re.escape(message)):
            run_star(cfg, make_generator=never)
        assert not (tmp_path / cfg.output_dir).exists(), message


def test_p_rationalization_is_a_deterministic_share():
    from innerpo.star.loop import rationalization_draw

    qs = list(range(2000))
    draw = rationalization_draw(qs, 0.3, seed=1, it=2)
    assert draw == rationalization_draw(qs, 0.3, seed=1, it=2) != rationalization_draw(qs, 0.3, seed=2, it=2)
    assert 0.27 < sum(draw) / len(qs) < 0.33  # binomial sd of the share: 0.01
    assert not any(rationalization_draw(qs, 0.0, 1, 2)) and all(rationalization_draw(qs, 1.0, 1, 2))


def test_half_rationalization_asks_fewer_questions(tmp_path):
    run = run_star(_cfg(tmp_path, iterations=1, p_rationalization=0.5, eval_sets=[]), make_generator=ScriptedGenerator)
    metrics = json.loads((run / "iter-1" / "metrics.json").read_text())
    unsolved = 12 - metrics["questions_solved"]
    assert 0 < metrics["rationalization_asked"] < unsolved or unsolved < 2
    assert list(metrics["sets"]) == ["in_domain"]


def test_cli_star_method_loads_the_preset_and_its_flags(tmp_path, monkeypatch):
    from innerpo.cli import main
    from innerpo.star import loop

    seen = []
    monkeypatch.setattr(loop, "run_star", lambda cfg: seen.append(cfg))
    main(["star", "--star.method", "IPO", "--method.beta=0.3", f"--output_dir={tmp_path / 'o'}"])
    (cfg,) = seen
    assert cfg.star.method == "ipo" and cfg.star.resolved_strategy == "dpo"
    assert cfg.method.losses == ["ipo"] and cfg.method.beta == 0.3


def test_each_star_seed_is_its_training_runs_seed(tmp_path):
    from pathlib import Path

    from innerpo.star.validate import training_config

    seeds = {training_config(_cfg(tmp_path, seed=s), 2, Path("it"), []).training.seed for s in (1, 2, 3)}
    assert seeds == {1, 2, 3}  # not the --training.seed default (42) for all of them
