"""Per-configuration statistics over the repeats of the TRL comparison (medians of step times,
peaks, the first run's losses and checks), and the number formatting the printed lines share."""

from __future__ import annotations

import math
import statistics

from .shared import BATCH


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


def fmt(x, spec=".3f", none="-"):
    return none if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def summarize(runs: dict[str, list[dict]]) -> dict:
    """Per configuration: median step time over all timed steps of all repeats, etc."""
    out = {}
    for name, rs in runs.items():
        if name == "roofline" or name.startswith("eval_long"):
            out[name] = rs[0]
            if name.startswith("eval_long"):
                out[name].update(
                    {
                        f"{k}{t}_s": med([x for r in rs for x in r.get(f"{k}{t}_s", [])])
                        for k in ("after", "bare", "before")
                        for t in ("", "_cpu")
                    }
                )
            continue
        if name == "eval":
            out[name] = {k: med([x for r in rs for x in r[f"{k}_s"]]) for k in ("bare", "cached", "cold")}
            out[name]["n_pairs"] = rs[0]["n_pairs"]
            continue
        steps = [x for r in rs for x in r["step_s"]]
        s = med(steps)
        out[name] = {
            "s_step": s,
            "pairs_s": BATCH / s,
            "run_medians": [med(r["step_s"]) for r in rs],
            "peak_mb": max(r["peak_mb"] for r in rs),
            "train_peak_mb": max((r.get("train_peak_mb") or 0) for r in rs) or None,
            "loss1": rs[0].get("loss1"),
            "loss2": rs[0].get("loss2"),
            "losses1": [r.get("loss1") for r in rs],
            "losses2": [r.get("loss2") for r in rs],
            "real": rs[0].get("real_tok_per_pair"),
            "padded": rs[0].get("padded_tok_per_pair"),
            "fingerprints": rs[0].get("fingerprints"),
            "lora_digest": rs[0].get("lora_digest"),
            "same_tokens": rs[0].get("same_tokens"),
            "n_pairs": rs[0]["n_pairs"],
            "precompute_s": med([r.get("precompute_s") for r in rs]),
            "ref_build_s": med([r.get("ref_build_s") for r in rs]),
            "ref_load_s": med([r.get("ref_load_s") for r in rs]),
            "threads": rs[0].get("threads"),
        }
    return out
