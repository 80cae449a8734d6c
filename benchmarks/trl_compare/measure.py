"""What a worker measures about its own process (step durations, RSS peaks, batch
fingerprints) and how it hands its result to the parent: one tagged JSON line on stdout."""

from __future__ import annotations

import hashlib
import json
import resource
import time

RESULT_TAG = "@@RESULT@@"


def batch_fingerprint(input_ids, attention_mask, completion_mask) -> str:
    rows = (input_ids.tolist(), attention_mask.long().tolist(), completion_mask.long().tolist())
    return hashlib.blake2b(json.dumps(rows).encode(), digest_size=8).hexdigest()


def reset_peak() -> bool:
    """Reset the RSS high-water mark (VmHWM) of this process; False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def vm_hwm_mb() -> float | None:
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def emit(result: dict) -> None:
    result.update(peak_mb=max_rss_mb(), train_peak_mb=result.get("train_peak_mb"))
    print(RESULT_TAG + json.dumps(result), flush=True)


def step_stats(marks: list[float]) -> list[float]:
    """Per-step durations from [start, end of step 1, end of step 2, ...]."""
    return [b - a for a, b in zip(marks, marks[1:])]


def timed_rounds(fns: dict, rounds: int, cpu: dict | None = None) -> dict[str, list[float]]:
    """Wall seconds of each function per round, the functions run in turn within a round
    (so a load that changes during the run hits them alike). With `cpu` (a dict), the
    process's CPU seconds of each run go there too, by name: for a one-thread worker they
    equal the wall time on an idle machine, and other jobs on the machine barely move them."""
    runs = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t, c = time.perf_counter(), time.process_time()
            fn()
            runs[k].append(time.perf_counter() - t)
            if cpu is not None:
                cpu.setdefault(k, []).append(time.process_time() - c)
    return runs
