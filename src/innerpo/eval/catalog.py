"""`innerpo data list` and `innerpo data show`: what sources and suites exist, and what pairs look like."""

from __future__ import annotations

import textwrap

from innerpo.data import synthetic
from innerpo.data.sources import load_pairs
from innerpo.eval.suites import SUITES, get_suite


def list_sources() -> str:
    lines = ["Data sources (--data.dataset):"]
    lines += [f"  synthetic:{s:<20} {synthetic.DESCRIPTIONS[s]}" for s in synthetic.SHIFTS]
    lines += [
        "  genies:<name>                GENIES distribution from --data.genies_dir (e.g. ../shared/data/genies), else the hub",
        "  ethics:<config>              ETHICS as preferences (justice, commonsense, ...), hub wassname/ethics_expression_preferences",
        "  medical                      medical QA preferences, hub wassname/medical-dpo-V2",
        "  path/to/file.{json,jsonl,parquet,csv}   prompt/chosen/rejected rows (strings or chat messages;",
        "                               chosen/rejected as whole conversations split by their shared turns),",
        "                               or prompt/completion/label rows (unpaired, for kto)",
        "  path/to/saved_dataset_dir    written by datasets' save_to_disk",
        "  <owner>/<name>[:<config>]    a Hugging Face hub dataset",
        "",
        "Eval suites (--eval.suite):",
    ]
    for name, suite in SUITES.items():
        lines.append(f"  {name:<14} {', '.join(suite.shifts)}")
        lines.append(textwrap.indent(textwrap.fill(suite.description, 90), " " * 17))
    lines.append(
        "  auto           the suite for the training data (--data.dataset): synthetic, or a GENIES source's suite"
    )
    lines.append("  FILE.yaml      your own suite (see innerpo.eval.suites)")
    return "\n".join(lines)


def show(name: str, split: str = "test", n: int = 3, genies_dir: str | None = None) -> str:
    if name in SUITES or name.endswith((".yaml", ".yml")):
        suite = get_suite(name)
        return "\n\n".join(
            f"=== shift {k} ({v.dataset}, {v.split})\n" + show(v.dataset, v.split, min(n, 1), genies_dir)
            for k, v in suite.shifts.items()
        )
    pairs = load_pairs(name, split, genies_dir)
    out = [f"{name} ({split}): {len(pairs)} pairs"]
    for i, p in enumerate(pairs[:n]):
        out.append(f"--- pair {i}\nPROMPT: {p.prompt_text()}\nCHOSEN: {p.chosen}\nREJECTED: {p.rejected}")
    return "\n".join(out)
