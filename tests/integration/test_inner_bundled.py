"""InnerDPO on the bundled SmolLM2-135M-Instruct (marked slow).

`innerpo` with `supr` and `hs-ether-innerpo`: 8 optimizer steps of 8 synthetic pairs at
lr 1e-3 (DPO + InnerDPO, pars_rat margin, layers 0.25/0.5/0.75 of depth), evaluated on
the synthetic in_domain shift (64 held-out pairs). Each run must finish without a NaN,
keep coherence within the documented threshold, and beat the base model in-domain.
"""

import json
import math

import pytest

from innerpo.cli import main

pytestmark = pytest.mark.slow

STEPS, BATCH, LR, EVAL_PAIRS = 8, 8, 1e-3, 64


@pytest.mark.parametrize("preset, flags", [("innerpo", ["--method.transform=supr"]), ("hs-ether-innerpo", [])])
def test_innerdpo_learns_and_stays_coherent(preset, flags, in_domain_suite, tmp_path):
    run = tmp_path / preset
    main([
        "train", preset, *flags, f"--data.max_train_pairs={STEPS * BATCH}", f"--data.batch_size={BATCH}",
        f"--training.max_steps={STEPS}", f"--training.lr={LR}", "--training.eval_every=0",
        f"--eval.suite={in_domain_suite}", f"--eval.max_pairs={EVAL_PAIRS}", f"--output_dir={run}",
    ])
    rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(v) for r in rows for v in r.values() if isinstance(v, float))
    assert {"hidden/margin", "hidden/para/15", "hidden/para/22"} <= set(rows[-1])  # blocks 7 (dropped by supr), 15, 22 of 30
    shift = json.loads((run / "summary.json").read_text())["shifts"]["in_domain"]
    print(f"{preset} {flags}: base {shift['base_accuracy']:.3f} -> adapter {shift['adapter_accuracy']:.3f}, "
          f"coherence {shift['coherence_delta_nll']:+.3f}, {rows[-1]['elapsed_s']} s")
    assert not shift["coherence_flag"], shift
    assert shift["adapter_accuracy"] > shift["base_accuracy"], shift
