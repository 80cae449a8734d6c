"""Before/after of a code change on the benchmark's own step workers: two commits of this
repository, each exported (git archive) into a temporary tree, their `vs_trl.py --worker`
processes alternated round by round on the same pairs and settings, so a load that changes
during the run hits both alike.

    .venv/bin/python benchmarks/ab_commits.py 4afe9fa HEAD --configs innerpo_bf16,innerpo --rounds 3

Prints every worker's step times and, per configuration, the median over rounds of each
commit's median step and their ratio (after / before). One torch thread per worker.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from trl_compare.measure import RESULT_TAG  # noqa: E402
from trl_compare.orchestrate import prepare_cache, worker_env  # noqa: E402
from trl_compare.shared import REPO  # noqa: E402


def export(commit: str, root: Path) -> Path:
    """The tree of `commit` in a fresh directory under root (its source and benchmarks)."""
    sha = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", commit], capture_output=True, text=True, check=True
    ).stdout.strip()
    tree = root / sha
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", sha, "src", "benchmarks"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--configs", default="innerpo_bf16,innerpo", help="vs_trl.py worker names")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=4, help="timed steps per worker (after one warm-up)")
    p.add_argument("--model", default="smollm2-135m-instruct")
    args = p.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="ab_commits_"))
    cache = prepare_cache(args.model)
    try:
        trees = {label: export(commit, root) for label, commit in (("before", args.before), ("after", args.after))}
        run(args, trees, cache)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)  # reference tables; the model symlink, not its target


def run(args, trees: dict[str, Path], cache: Path) -> None:
    medians: dict[tuple[str, str], list[float]] = {}
    for r in range(args.rounds):
        for config in args.configs.split(","):
            for label, tree in trees.items():
                env = {**worker_env(cache), "PYTHONPATH": str(tree / "src")}
                cmd = [
                    sys.executable,
                    str(tree / "benchmarks" / "vs_trl.py"),
                    "--worker",
                    config,
                    "--dataset",
                    "synthetic",
                    "--model",
                    args.model,
                    "--steps",
                    str(args.steps),
                    "--threads",
                    "1",
                ]
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tree)
                lines = [l for l in proc.stdout.splitlines() if l.startswith(RESULT_TAG)]
                if proc.returncode or not lines:
                    raise SystemExit(f"{label} {config} failed:\n{proc.stderr[-3000:]}")
                res = json.loads(lines[0][len(RESULT_TAG) :])
                medians.setdefault((config, label), []).append(statistics.median(res["step_s"]))
                print(
                    f"round {r + 1} {config:14s} {label:6s} ({tree.name}) steps {[round(s, 3) for s in res['step_s']]} "
                    f"loss1 {res['loss1']:.6f} peak {res['train_peak_mb'] or 0:.0f} MB",
                    flush=True,
                )
    for config in args.configs.split(","):
        b, a = (statistics.median(medians[(config, label)]) for label in ("before", "after"))
        print(f"{config}: before {b:.3f} s/step, after {a:.3f} s/step, after/before {a / b:.3f}")


if __name__ == "__main__":
    main()
