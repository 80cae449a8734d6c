"""What a run ran on, recorded in RUN/environment.json: innerpo's version and commit, Python,
the libraries that compute its numbers, the machine and the device.

Why: a bf16 score can move by a rounding step between library versions or machines, which
flips a pair whose two completions score within a hundredth of a nat per token of each
other. A report over runs made in different environments says so (innerpo.report), and a
result page can state exactly what produced it. The file holds one entry per start of the
run: a resumed run that continued elsewhere shows both.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path

import torch

from innerpo.io import write_atomic

FILENAME = "environment.json"
PACKAGES = ("torch", "transformers", "peft", "accelerate", "bitsandbytes")
"""The libraries whose versions can change a run's numbers (absent ones are left out)."""
SAME_WHEN_EQUAL = ("innerpo", "commit", "dirty", "python", "packages", "machine", "accelerator")
"""The fields two entries must share to count as one environment (not times or thread counts)."""


def describe(device: torch.device | str = "cpu") -> dict:
    """This process's environment as a JSON-ready dict."""
    device = torch.device(device)
    commit, dirty = _git_state()
    return {
        "innerpo": _version("innerpo"),
        "commit": commit,
        "dirty": dirty,
        "python": platform.python_version(),
        "packages": {name: v for name in PACKAGES if (v := _version(name)) is not None},
        "machine": f"{_cpu_name()}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}",
        "accelerator": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
    }


def record(run_dir: Path, device: torch.device | str = "cpu", resumed_at_step: int | None = None) -> None:
    """Append this start's environment to RUN/environment.json (written atomically)."""
    path = Path(run_dir) / FILENAME
    entries = load(run_dir)
    entry = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **describe(device)}
    if resumed_at_step is not None:
        entry["resumed_at_step"] = resumed_at_step
    write_atomic(path, json.dumps([*entries, entry], indent=2))


def load(run_dir: Path) -> list[dict]:
    """The run's recorded starts, oldest first; [] for a run made before innerpo recorded them
    (or whose file cannot be read)."""
    path = Path(run_dir) / FILENAME
    try:
        entries = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    return entries if isinstance(entries, list) else []


def key(entry: dict) -> str:
    """What makes two entries one environment, as a stable string."""
    return json.dumps({k: entry.get(k) for k in SAME_WHEN_EQUAL}, sort_keys=True)


def summary(entry: dict) -> str:
    """One line: `innerpo 0.1.0 (abc1234), Python 3.11.9, torch 2.13.0+cpu, ...; <machine>`."""
    commit = entry.get("commit")
    where = f" ({commit[:7]}{', uncommitted changes' if entry.get('dirty') else ''})" if commit else ""
    packages = ", ".join(f"{k} {v}" for k, v in entry.get("packages", {}).items())
    machine = (entry.get("machine") or "") + (f"; {entry['accelerator']}" if entry.get("accelerator") else "")
    return f"innerpo {entry.get('innerpo')}{where}, Python {entry.get('python')}, {packages}; {machine}"


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git_state() -> tuple[str | None, bool | None]:
    """(commit, uncommitted changes under src/) of the checkout innerpo is imported from, when
    it is one (an editable install); (None, None) for an installed package."""
    root = Path(__file__).resolve().parents[3]
    if not (root / ".git").exists():
        return None, None
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", "src"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, bool(changes)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
