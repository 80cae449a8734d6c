"""A corpus of bad inputs through the command line: each ends with one clear message on
stderr and exit code 2, before anything is written (no run directory, no outputs/)."""

import json
import os

import pandas as pd
import pytest

from innerpo.cli import main

GOOD = {"prompt": "What is 2 + 2?", "chosen": "4", "rejected": "5"}


def jsonl(rows):
    return "\n".join(json.dumps(r) for r in rows) + "\n"


def msg(role, content):
    return {"role": role, "content": content}


# name -> (files to write {name: text or rows for parquet}, extra flags, method, message regex).
# "{tmp}" in a flag is replaced by the test's directory. The default training file is
# good.jsonl and the default suite good.yaml (one shift on good.jsonl).
CASES = {
    "jsonl_not_json": (
        {"bad.jsonl": jsonl([GOOD]) + "{not json\n"},
        ["--data.dataset={tmp}/bad.jsonl"],
        "dpo",
        r"bad.jsonl, line 2: not valid JSON",
    ),
    "json_malformed": (
        {"bad.json": '[{"prompt": "p",'},
        ["--data.dataset={tmp}/bad.json"],
        "dpo",
        r"bad.json: not valid JSON",
    ),
    "json_not_a_list": (
        {"bad.json": json.dumps(GOOD)},
        ["--data.dataset={tmp}/bad.json"],
        "dpo",
        r"bad.json: expected a JSON list",
    ),
    "parquet_corrupt": (
        {"bad.parquet": "PAR1 this is not parquet"},
        ["--data.dataset={tmp}/bad.parquet"],
        "dpo",
        r"bad.parquet: cannot read as Parquet",
    ),
    "parquet_missing_column": (
        {"bad.parquet": [{"prompt": "p", "chosen": "c"}]},
        ["--data.dataset={tmp}/bad.parquet"],
        "dpo",
        r"bad.parquet, row 0: missing rejected",
    ),
    "csv_short_row": (
        {"bad.csv": "prompt,chosen,rejected\np,c,r\np,c\n"},
        ["--data.dataset={tmp}/bad.csv"],
        "dpo",
        r"bad.csv, line 3: 2 fields, but the header has 3",
    ),
    "csv_unclosed_quote": (
        {"bad.csv": 'prompt,chosen,rejected\np,c,r\n"p,c,r\n'},
        ["--data.dataset={tmp}/bad.csv"],
        "dpo",
        r"bad.csv, line \d: cannot read as CSV",
    ),
    "missing_field": (
        {"bad.jsonl": jsonl([GOOD, {"prompt": "p", "chosen": "c"}])},
        ["--data.dataset={tmp}/bad.jsonl"],
        "dpo",
        r"bad.jsonl, line 2: missing rejected",
    ),
    "empty_field": (
        {"bad.jsonl": jsonl([GOOD, {**GOOD, "chosen": "  "}])},
        ["--data.dataset={tmp}/bad.jsonl"],
        "dpo",
        r"line 2: 'chosen' is empty",
    ),
    "wrong_type": (
        {"bad.jsonl": jsonl([{**GOOD, "rejected": 5}])},
        ["--data.dataset={tmp}/bad.jsonl"],
        "dpo",
        r"line 1: 'rejected' must be a string or a list of messages, got int",
    ),
    "non_string_chat_content": (
        {"bad.jsonl": jsonl([{**GOOD, "prompt": [msg("user", ["x"])]}])},
        ["--data.dataset={tmp}/bad.jsonl"],
        "dpo",
        r"line 1: prompt\[0\] must be a message",
    ),
    "chat_without_assistant": (
        {"bad.jsonl": jsonl([{"chosen": [msg("user", "u")], "rejected": [msg("user", "u")]}])},
        ["--data.dataset={tmp}/bad.jsonl"],
        "dpo",
        r"line 1: 'chosen' is a chat list without an assistant turn",
    ),
    "empty_dataset": (
        {"empty.jsonl": "\n"},
        ["--data.dataset={tmp}/empty.jsonl"],
        "dpo",
        r"empty.jsonl \(train\): no rows",
    ),
    "data_file_missing": (
        {},
        ["--data.dataset={tmp}/nope.jsonl"],
        "dpo",
        r"--data.dataset: data file not found: .*nope.jsonl",
    ),
    "completion_longer_than_any_limit": (
        {"long.jsonl": jsonl([{**GOOD, "chosen": "x" * 300}])},
        ["--data.dataset={tmp}/long.jsonl"],
        "dpo",
        r"none of the 1 pairs fits --data.max_length=64 .*fit with --data.max_length=310",
    ),
    "duplicate_shift_names": (
        {"dup.yaml": "shifts:\n  a: {dataset: {tmp}/good.jsonl}\n  a: {dataset: {tmp}/good.jsonl}\n"},
        ["--eval.suite={tmp}/dup.yaml"],
        "dpo",
        r"dup.yaml, line 3: 'a' is given twice",
    ),
    "unknown_suite": (
        {},
        ["--eval.suite=no-such-suite"],
        "dpo",
        r"--eval.suite='no-such-suite': unknown eval suite; built-in: synthetic",
    ),
    "suite_file_missing": ({}, ["--eval.suite={tmp}/nope.yaml"], "dpo", r"eval suite file not found"),
    "suite_without_shifts": (
        {"s.yaml": "name: x\n"},
        ["--eval.suite={tmp}/s.yaml"],
        "dpo",
        r"s.yaml: expected a mapping with a non-empty 'shifts' mapping",
    ),
    "suite_shift_file_missing": (
        {"s.yaml": "shifts:\n  far: {dataset: {tmp}/nope.jsonl}\n"},
        ["--eval.suite={tmp}/s.yaml"],
        "dpo",
        r"shift 'far' .*data file not found",
    ),
    "suite_shift_unpaired_rows": (
        {
            "u.jsonl": jsonl([{"prompt": "p", "completion": "c", "label": True}]),
            "s.yaml": "shifts:\n  u: {dataset: {tmp}/u.jsonl}\n",
        },
        ["--eval.suite={tmp}/s.yaml"],
        "dpo",
        r"u.jsonl, line 1: a prompt/completion/label row",
    ),
    "suite_shift_nothing_scorable": (
        {
            "long.jsonl": jsonl([{**GOOD, "chosen": "x" * 300}] * 3),
            "s.yaml": "shifts:\n  in_domain: {dataset: {tmp}/good.jsonl}\n  long: {dataset: {tmp}/long.jsonl}\n",
        },
        ["--eval.suite={tmp}/s.yaml"],
        "dpo",
        r"shift 'long' .*none of the 3 pairs fits --data.max_length=64 .*--data.max_length=310",
    ),
    "missing_genies_dir": (
        {},
        ["--data.dataset=genies:alpaca_easy", "--data.genies_dir={tmp}/no-genies"],
        "dpo",
        r"GENIES file not found: .*no-genies/alpaca_easy/train.json; .*no-genies is not a directory",
    ),
    "layer_past_depth": (
        {},
        ["--method.layers=10"],
        "innerpo",
        r"--method.layers='10' \(tiny-random has 4 layers\): bad layer spec piece '10'.*out of range for 4 layers",
    ),
    "unknown_align_method": (
        {},
        ["--method.align_method=no_such_method"],
        "innerpo",
        r"unknown align method 'no_such_method'",
    ),
    "negative_lr": ({}, ["--training.lr=-0.001"], "dpo", r"--training.lr=-0.001: expected >= 0"),
    "nan_beta": ({}, ["--method.beta=nan"], "dpo", r"--method.beta=nan: expected a finite number"),
    "zero_beta": ({}, ["--method.beta=0"], "dpo", r"beta must be a positive finite number, got 0.0"),
    "dropout_out_of_range": (
        {},
        ["--model.lora_dropout=1.5"],
        "dpo",
        r"--model.lora_dropout=1.5: expected in \[0, 1\)",
    ),
    "max_length_too_small": ({}, ["--data.max_length=4"], "dpo", r"--data.max_length=4: expected > 8"),
    "eval_max_pairs_zero": ({}, ["--eval.max_pairs=0"], "dpo", r"--eval.max_pairs=0: expected >= 1"),
    "config_file_missing": ({}, ["--config={tmp}/nope.yaml"], "dpo", r"--config: file not found"),
    "config_unknown_key": (
        {"c.yaml": "training: {learning_rate: 0.1}\n"},
        ["--config={tmp}/c.yaml"],
        "dpo",
        r"c.yaml.training: unknown setting 'learning_rate'",
    ),
    "config_not_yaml": (
        {"c.yaml": "training: {lr: [\n"},
        ["--config={tmp}/c.yaml"],
        "dpo",
        r"c.yaml, line 2: not valid YAML \(expected the node content",
    ),
    "config_wrong_type": (
        {"c.yaml": "training: {lr: 1e-4}\n"},
        ["--config={tmp}/c.yaml"],
        "dpo",
        r"--training.lr='1e-4': expected a number, got str \(YAML reads 1e-4 as text: write 1.0e-4\)",
    ),
    "collect_modules_unmatched": (
        {},
        ["--method.collect=modules", "--method.collect_modules=.*nope"],
        "hs-none-innerpo",
        r"block 1: --method.collect_modules='\.\*nope' matches no linear module .*self_attn\.q_proj",
    ),
    "flash_attention_without_gpu": (
        {},
        ["--model.attn_implementation=flash_attention_2"],
        "dpo",
        r"--model.attn_implementation=flash_attention_2 needs a CUDA GPU and the flash-attn package",
    ),
    "flex_attention_training_on_cpu": (
        {},
        ["--model.attn_implementation=flex_attention"],
        "dpo",
        r"--model.attn_implementation=flex_attention cannot train on cpu",
    ),
    "four_and_eight_bit": (
        {},
        ["--model.load_in_4bit", "--model.load_in_8bit"],
        "dpo",
        r"--model.load_in_4bit and --model.load_in_8bit exclude each other",
    ),
    "config_bad_choice": (
        {"c.yaml": "data: {truncation: middle}\n"},
        ["--config={tmp}/c.yaml"],
        "dpo",
        r"--data.truncation='middle': expected one of 'drop', 'prompt_left'",
    ),
}


def _write(tmp_path, files):
    (tmp_path / "good.jsonl").write_text(jsonl([GOOD, {**GOOD, "prompt": "What is 3 + 3?", "chosen": "6"}]))
    (tmp_path / "good.yaml").write_text(f"shifts:\n  in_domain: {{dataset: {tmp_path}/good.jsonl}}\n")
    for name, content in files.items():
        path = tmp_path / name
        if isinstance(content, list):
            pd.DataFrame(content).to_parquet(path)
        else:
            path.write_text(content.replace("{tmp}", str(tmp_path)))


def _run(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    return e.value.code, capsys.readouterr().err


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_refused_before_anything_is_written(case, tmp_path, monkeypatch, capsys):
    files, flags, method, message = CASES[case]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INNERPO_CACHE", str(tmp_path / "cache"))
    _write(tmp_path, files)
    before = set(os.listdir(tmp_path))
    run = tmp_path / "run"
    args = [
        "train",
        method,
        "--model.base_model=tiny-random",
        "--training.max_steps=1",
        f"--data.dataset={tmp_path}/good.jsonl",
        "--data.max_length=64",
        f"--eval.suite={tmp_path}/good.yaml",
        f"--output_dir={run}",
    ]
    code, err = _run(args + [f.replace("{tmp}", str(tmp_path)) for f in flags], capsys)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("innerpo train: error: "), err
    assert __import__("re").search(message, err), err
    assert not run.exists() and set(os.listdir(tmp_path)) - {"cache"} == before


def test_unknown_method_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, err = _run(["train", "no-such-method"], capsys)
    assert code == 2 and "no-such-method" in err and not os.listdir(tmp_path)


def test_existing_run_is_not_touched(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, {})
    (tmp_path / "run" / "adapter").mkdir(parents=True)
    code, err = _run(
        [
            "train",
            "dpo",
            "--model.base_model=tiny-random",
            f"--data.dataset={tmp_path}/good.jsonl",
            f"--eval.suite={tmp_path}/good.yaml",
            f"--output_dir={tmp_path / 'run'}",
        ],
        capsys,
    )
    assert code == 2 and "already holds a trained adapter" in err and os.listdir(tmp_path / "run") == ["adapter"]


def test_eval_of_a_missing_run_and_a_bad_suite(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, err = _run(["eval", str(tmp_path / "nope")], capsys)
    assert code == 2 and "is not a run directory" in err
