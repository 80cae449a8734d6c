"""Where innerpo's DPO step spends its time: the benchmark's innerpo worker (benchmarks/vs_trl.py,
same model, pairs, batches and settings) with its timed steps under torch.profiler, self CPU time
per step by op group, beside the step's GEMM floor (benchmarks/roofline.py).

    .venv/bin/python benchmarks/step_profile.py                 # bf16, 6 profiled steps
    .venv/bin/python benchmarks/step_profile.py --precision fp32

One process, one torch thread. The profiler adds its own per-op overhead, mostly to the many
small ops (framework, elementwise): read the groups as shares, and the unprofiled step time
from vs_trl.py.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from contextlib import redirect_stdout
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from trl_compare.measure import RESULT_TAG  # noqa: E402
from trl_compare.orchestrate import prepare_cache, worker_env  # noqa: E402
from trl_compare.workers_innerpo import worker_innerpo, worker_roofline  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    p.add_argument("--steps", type=int, default=6, help="profiled steps (after one warm-up step)")
    p.add_argument("--model", default="smollm2-135m-instruct")
    args = p.parse_args(argv)
    os.environ.update({k: v for k, v in worker_env(prepare_cache(args.model)).items() if k != "PYTHONPATH"})
    import torch

    torch.set_num_threads(1)
    worker = argparse.Namespace(
        dataset="synthetic",
        genies_dir=None,
        genies_dist="alpaca_easy",
        model=args.model,
        steps=args.steps,
        pairs=24,
        max_length=512,
        lr=5e-4,
        seed=42,
        b_init=0.03,
    )
    name = "innerpo_bf16" if args.precision == "bf16" else "innerpo"
    runs = {}
    for label, fn in (
        ("step", lambda: worker_innerpo(worker, name, profile=True)),
        ("floor", lambda: worker_roofline(worker)),
    ):
        out = io.StringIO()
        with redirect_stdout(out):
            fn()
        runs[label] = json.loads(
            next(l for l in out.getvalue().splitlines() if l.startswith(RESULT_TAG))[len(RESULT_TAG) :]
        )
    step = sum(runs["step"]["step_s"]) / len(runs["step"]["step_s"])
    groups = runs["step"]["profile"]
    total = sum(groups.values())
    floor = runs["floor"][args.precision]["floor_s"]
    print(
        f"innerpo {args.precision} DPO step, {args.steps} profiled steps of 8 synthetic pairs, one thread: "
        f"{step:.3f} s/step under the profiler, {total:.3f} s of it in ops (self CPU); GEMM floor {floor:.3f} s"
    )
    for g, s in groups.items():
        print(f"  {g:68s} {s:6.3f} s  {100 * s / total:5.1f}%")


if __name__ == "__main__":
    main()
