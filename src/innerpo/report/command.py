"""`innerpo report DIR [DIR ...]`: tables with confidence intervals, paired differences
against a baseline, coherence, GENIES normalised generalization and plots, from run
directories (sweep directories are searched for their cells). Nothing is re-run.
STaR runs (`innerpo star`, STaR sweep cells) get their own report, star-report.md and
.csv with a plot per held-out set (innerpo.report.star_tables).

Writes report.md, report.csv, report.json and PNGs into --output_dir (default: DIR/report of
the first directory). Exit code 2 when a directory holds no readable runs.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from innerpo.report.aggregate import tables as build_tables
from innerpo.report.plots import write_plots
from innerpo.report.render import markdown, write
from innerpo.report.runs import ReportError, load_runs
from innerpo.report.star_runs import load_star_runs
from innerpo.report.star_tables import write_star_report


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="innerpo report",
        description="Aggregate run directories into tables with 95% confidence intervals and plots.",
    )
    p.add_argument("dirs", nargs="+", help="run directories or directories containing them (e.g. a sweep directory)")
    p.add_argument("--output_dir", help="output directory (default: <first DIR>/report)")
    p.add_argument(
        "--baseline",
        default="dpo",
        help="method (or full variant label) the others are compared with pair by pair; 'none' to skip (default: dpo)",
    )
    return p


def sweep_commands(dirs: list[str]) -> list[str]:
    found = []
    for d in map(Path, dirs):
        for manifest in [d / "manifest.json", *d.glob("*/manifest.json")]:
            if manifest.is_file():
                command = json.loads(manifest.read_text()).get("command")
                if command and command not in found:
                    found.append(command)
    return found


def report(
    dirs: list[str], output_dir: str | None = None, baseline: str | None = "dpo", command: str = "innerpo report"
) -> Path:
    out_dir = Path(output_dir) if output_dir else Path(dirs[0]) / "report"
    star_runs, unfinished = load_star_runs(dirs)
    if star_runs:  # STaR runs (innerpo star, or a STaR sweep's cells): their own report
        out_dir.mkdir(parents=True, exist_ok=True)
        print(write_star_report(out_dir, star_runs, baseline, command, unfinished))
        print(f"{len(star_runs)} STaR runs; report written to {out_dir} (star-report.md, star-report.csv)")
        if not any(p.is_file() for d in dirs for p in Path(d).rglob("config.yaml") if not _inside_star(p, star_runs)):
            return out_dir
    runs = load_runs(dirs)
    tables = build_tables(runs, None if baseline in (None, "none") else baseline)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = write_plots(out_dir, tables)
    write(out_dir, tables, command, sweep_commands(dirs), plots)
    print(markdown(tables, command, sweep_commands(dirs), {}))
    print(
        f"{len(runs)} runs; report written to {out_dir} (report.md, report.csv, report.json, "
        f"{sum(map(len, plots.values()))} PNGs)"
    )
    return out_dir


def _inside_star(path: Path, star_runs) -> bool:
    """Whether `path` is part of a STaR run (its iterations' training runs are not reported on their own)."""
    return any(run.dir in path.parents for run in star_runs)


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    try:
        report(args.dirs, args.output_dir, args.baseline, command="innerpo report " + shlex.join(argv))
    except ReportError as e:
        print(f"innerpo report: {e}", file=sys.stderr)
        sys.exit(2)
