"""The parent of the TRL comparison: a private cache for the workers, one fresh subprocess per
configuration (`vs_trl.py --worker NAME`, so peak RSS is per configuration), the alternating
schedule over datasets and repeats, and the report with its last summary line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .measure import RESULT_TAG
from .report import report
from .shared import REPO
from .summary import fmt, med, summarize

ENTRY = REPO / "benchmarks" / "vs_trl.py"  # the script the workers run, with --worker NAME
MAIN_CONFIGS = ("trl_default", "trl_precompute", "innerpo", "trl_default_bf16", "trl_precompute_bf16", "innerpo_bf16")
SECONDARY_CONFIGS = ("naive", "innerdpo", "eval", "roofline")
# once per run (first dataset, first repeat): evaluation of one long GENIES shift (benchmarks/eval_long.py)
LONG_EVAL_CONFIGS = ("eval_long", "eval_long_bf16")
CONFIGS = MAIN_CONFIGS + SECONDARY_CONFIGS + LONG_EVAL_CONFIGS
# not in the default schedule: innerpo's DPO with the shared-prompt forward switched off
# (models.forward.SHARED_PROMPT_MAX_SHARE = 0), to measure what that path is worth
EXTRA_CONFIGS = ("innerpo_single",)


def worker_env(cache_root: Path) -> dict:
    env = dict(os.environ)
    env.update(
        INNERPO_CACHE=str(cache_root),
        TQDM_DISABLE="1",
        TOKENIZERS_PARALLELISM="false",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_VERBOSITY="error",
        PYTHONWARNINGS="ignore",
    )
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    return env


def prepare_cache(model: str) -> Path:
    """A private innerpo cache for the workers (reference tables land there, not in the
    user's cache), sharing the user's converted bundled model (converted once if needed)."""
    root = Path(tempfile.mkdtemp(prefix="vs_trl_cache_"))
    if model != "tiny-random":
        from innerpo.paths import cache_dir

        real = cache_dir()
        subprocess.run(
            [sys.executable, "-c", "from innerpo.models import bundled, load; bundled.converted_dir()"],
            check=True,
            env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        )
        (root / "models").symlink_to(real / "models", target_is_directory=True)
    return root


def call_worker(args, name: str, dataset: str, env: dict, log_dir: Path) -> dict:
    cmd = [
        sys.executable,
        str(ENTRY),
        "--worker",
        name,
        "--dataset",
        dataset,
        "--model",
        args.model,
        "--steps",
        str(args.steps),
        "--pairs",
        str(args.pairs),
        "--max-length",
        str(args.max_length),
        "--lr",
        str(args.lr),
        "--seed",
        str(args.seed),
        "--b-init",
        str(args.b_init),
        "--genies-dist",
        args.genies_dist,
        "--eval-rounds",
        str(args.eval_rounds),
        "--eval-shift",
        args.eval_shift,
        "--eval-pairs",
        str(args.eval_pairs),
        "--eval-max-length",
        str(args.eval_max_length),
    ]
    if args.eval_max_tokens is not None:
        cmd += ["--eval-max-tokens", str(args.eval_max_tokens)]
    if args.genies_dir:
        cmd += ["--genies-dir", args.genies_dir]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - t
    log = log_dir / f"{dataset}-{name}-{int(time.time() * 1000)}.log"
    log.write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    lines = [l for l in proc.stdout.splitlines() if l.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-25:])
        raise SystemExit(f"worker {name} on {dataset} failed (exit {proc.returncode}); log {log}\n{tail}")
    result = json.loads(lines[-1][len(RESULT_TAG) :])
    result["wall_s"] = wall
    return result


def load_snapshot() -> str:
    try:
        return "load average " + " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return ""


def run(args, configs: list[str]) -> None:
    """Run every configuration on every dataset of --data, print the report and the summary line."""
    datasets = {"synthetic": ["synthetic"], "genies": ["genies"], "both": ["synthetic", "genies"]}[args.data]
    cache_root = prepare_cache(args.model)
    env = worker_env(cache_root)
    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="vs_trl_logs_"))
    log_dir.mkdir(parents=True, exist_ok=True)
    print(
        f"vs_trl: {args.model}, data {args.data}, configurations {','.join(configs)}; {os.cpu_count()} CPUs, {load_snapshot()} at start; worker logs in {log_dir}",
        flush=True,
    )
    t_all = time.perf_counter()
    results: dict[str, dict] = {}
    try:
        run_all(args, datasets, configs, env, log_dir, results)
    finally:
        shutil.rmtree(
            cache_root, ignore_errors=True
        )  # reference tables, TRL output dirs; the model symlink, not its target
    speedups, extras = [], []
    for dataset in datasets:
        _, sp, extra = report(dataset, args, results[dataset])
        speedups.append(sp)
        extras.append(extra)
    print(f"\ntotal wall time {time.perf_counter() - t_all:.0f} s; {load_snapshot()} at the end")
    main_speedup = next((x for x in speedups if x is not None), None)
    bf16 = next((e["bf16_over_fp32"] for e in extras if e["bf16_over_fp32"] is not None), None)
    floor_ratio = next((e["floor_ratio"] for e in extras if e["floor_ratio"] is not None), None)
    print(
        f"speedup_vs_trl={fmt(main_speedup, '.3f', 'nan')} bf16_over_fp32={fmt(bf16, '.3f', 'nan')} floor_ratio={fmt(floor_ratio, '.3f', 'nan')}"
    )


def run_all(args, datasets, configs, env, log_dir, results) -> None:
    for i, dataset in enumerate(datasets):
        wanted = [
            c
            for c in configs
            if (c not in SECONDARY_CONFIGS or args.secondary_repeats > 0) and (c not in LONG_EVAL_CONFIGS or i == 0)
        ]
        runs: dict[str, list[dict]] = {c: [] for c in wanted}
        for rep in range(args.repeats):
            for c in wanted:  # alternating: A B C ..., A B C ...
                if (c in SECONDARY_CONFIGS and rep >= args.secondary_repeats) or (c in LONG_EVAL_CONFIGS and rep > 0):
                    continue
                r = call_worker(args, c, dataset, env, log_dir)
                runs[c].append(r)
                if "step_s" in r:
                    brief = f"median step {med(r['step_s']):.3f} s"
                elif "cached_s" in r:
                    brief = f"bare {med(r['bare_s']):.2f} s, cached {med(r['cached_s']):.2f} s"
                elif "after_s" in r:
                    brief = f"{r['n_pairs']} pairs: after {med(r['after_s']):.1f} s, bare {med(r['bare_s']):.1f} s"
                else:
                    brief = f"floor fp32 {r['fp32']['floor_s']:.3f} s, bf16 {r['bf16']['floor_s']:.3f} s"
                print(
                    f"  [{dataset} {rep + 1}/{args.repeats}] {c:<15} {brief}  ({r['wall_s']:.0f} s wall, {load_snapshot()})",
                    flush=True,
                )
        results[dataset] = summarize(runs)
