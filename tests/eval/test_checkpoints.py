"""`innerpo eval RUN --checkpoint step-N | all` on tiny-random."""

import json

import pytest

from innerpo.cli import main


def test_eval_a_checkpoint_and_all_checkpoints(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INNERPO_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "pairs.jsonl"
    data.write_text(
        "\n".join(
            json.dumps({"prompt": f"What is {i} + 1?", "chosen": str(i + 1), "rejected": str(i + 2) * (1 + i % 3)})
            for i in range(8)
        )
    )
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"shifts:\n  in_domain: {{dataset: {data}}}\n  again: {{dataset: {data}}}\n")
    run = tmp_path / "run"
    main(
        [
            "train",
            "dpo",
            "--model.base_model=tiny-random",
            "--model.lora_r=4",
            f"--data.dataset={data}",
            "--data.batch_size=2",
            "--data.max_length=64",
            "--training.max_steps=2",
            "--training.eval_every=0",
            "--training.lr=1e-2",
            "--training.save_every=1",
            f"--eval.suite={suite}",
            "--eval.max_pairs=8",
            f"--output_dir={run}",
        ]
    )
    final = json.loads((run / "summary.json").read_text())

    main(["eval", str(run), "--checkpoint", "step-1"])
    first = json.loads((run / "checkpoints" / "step-1" / "eval-suite" / "summary.json").read_text())
    assert first["shifts"]["in_domain"]["adapter_nll"] != pytest.approx(
        final["shifts"]["in_domain"]["adapter_nll"], rel=1e-6
    )
    main(["eval", str(run), "--checkpoint", "2"])  # the last checkpoint is the final adapter
    last = json.loads((run / "checkpoints" / "step-2" / "eval-suite" / "summary.json").read_text())
    assert last["shifts"]["in_domain"]["adapter_nll"] == pytest.approx(
        final["shifts"]["in_domain"]["adapter_nll"], rel=1e-6
    )

    capsys.readouterr()
    main(["eval", str(run), "--checkpoint", "all"])
    table = (run / "checkpoints" / "accuracy.md").read_text()
    assert table in capsys.readouterr().out
    lines = table.splitlines()
    assert lines[2] == "| checkpoint | in_domain | again |"
    assert [line.split(" | ")[0] for line in lines[4:]] == ["| step-1", "| step-2", "| final", "| base"]
    acc = f"{first['shifts']['in_domain']['adapter_accuracy']:.3f}"
    assert lines[4] == f"| step-1 | {acc} | {acc} |"

    with pytest.raises(FileNotFoundError, match=r"no checkpoint 'step-7' \(it has: step-1, step-2\)"):
        main(["eval", str(run), "--checkpoint", "step-7"])
