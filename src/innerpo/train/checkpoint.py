"""Resumable checkpoints: what a run needs to continue exactly where it stopped.

RUN/checkpoints/step-N/
  adapter/              the LoRA adapter (peft format; `innerpo eval RUN --checkpoint step-N` reads it)
  method.safetensors    the method's trainable parameters, when it has any
  optimizer.bin, scheduler.bin, random_states_<rank>.pkl
                        accelerate's `save_state`: AdamW moments, schedule position, and
                        each process's python / numpy / torch RNG states (accelerate reads
                        them back with `torch.load(weights_only=True)`)
  trainer_state.json    step, pairs seen, elapsed time, the sampler's epoch and position
                        in it, and the byte length of metrics.jsonl at this step
  manifest.json         every file's size and SHA-256, written last

A checkpoint is written into a hidden `.step-N.tmp` directory and renamed into place, so
it is either complete or absent; on resume the manifest is checked and a checkpoint that
fails it (e.g. truncated by hand) is skipped with a warning in favour of the previous one.
The loop's own counters go to JSON rather than accelerate's `register_for_checkpointing`,
because accelerate loads those custom states with `weights_only=False` (arbitrary pickle).
The model is not registered with accelerate (see `prepare_training` in the loop), so
`save_state` writes no copy of the frozen base weights.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

from peft import set_peft_model_state_dict
from safetensors.torch import load_file

from innerpo.config import flatten, to_dict
from innerpo.errors import InputError
from innerpo.io import write_atomic
from innerpo.train.run_dir import load_method_params, save_method_params

CHECKPOINTS = "checkpoints"
MANIFEST = "manifest.json"
STATE = "trainer_state.json"
_STEP_DIR = re.compile(r"^step-(\d+)$")


class ResumeError(InputError):
    """A resume that cannot continue the run as it was (no checkpoint, or changed settings)."""


@dataclass
class TrainState:
    """The loop's counters at the end of optimizer step `step`."""

    step: int = 0
    pairs_seen: int = 0
    elapsed_s: float = 0.0
    epoch: int = 0  # the batch sampler's epoch ...
    position: int = 0  # ... and how many of its batches this process has taken in it
    log_bytes: int = 0  # length of metrics.jsonl after this step's rows


class BatchStream:
    """Endless micro-batches from `loader`, epoch after epoch, resumable at (epoch, position).

    Each epoch calls `loader.set_epoch(epoch)` (the sampler's order is a function of seed
    and epoch); a resumed stream skips the `position` batches already taken that epoch.
    """

    def __init__(self, loader, epoch: int = 0, position: int = 0):
        self.loader, self.epoch, self.position = loader, epoch, position
        self._it = None

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            if self._it is None:
                self.loader.set_epoch(self.epoch)
                sampler = self.loader.batch_sampler  # accelerate's shard wrapper, with several processes
                while hasattr(sampler, "batch_sampler"):
                    sampler = sampler.batch_sampler
                sampler.set_epoch(self.epoch)  # the loader does not reach through the wrapper
                self._it = itertools.islice(iter(self.loader), self.position, None)
            batch = next(self._it, None)
            if batch is not None:
                self.position += 1
                return batch
            self.epoch, self.position, self._it = self.epoch + 1, 0, None


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """The run's step-N directories, oldest first (complete or not)."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found)]


def checkpoint_dir(run_dir: Path, name: str) -> Path:
    """RUN/checkpoints/step-N for `step-N` or `N`; the error lists the run's checkpoints."""
    path = Path(run_dir) / CHECKPOINTS / (name if name.startswith("step-") else f"step-{name}")
    if not path.is_dir():
        have = ", ".join(p.name for p in checkpoint_dirs(run_dir)) or "none"
        raise FileNotFoundError(f"{run_dir} has no checkpoint {name!r} (it has: {have})")
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST)


def problem(checkpoint: Path) -> str | None:
    """Why `checkpoint` cannot be resumed from, or None when its manifest checks out."""
    manifest = checkpoint / MANIFEST
    if not manifest.is_file():
        return "no manifest.json (incomplete)"
    try:
        expected = json.loads(manifest.read_text())["files"]
    except (ValueError, KeyError) as e:
        return f"unreadable manifest.json ({e})"
    for name, (size, digest) in expected.items():
        path = checkpoint / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} is {path.stat().st_size} bytes, the manifest says {size}"
        if _sha256(path) != digest:
            return f"{name} does not match its checksum"
    return None


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint that passes its manifest; broken ones are skipped with a warning."""
    for checkpoint in reversed(checkpoint_dirs(run_dir)):
        why = problem(checkpoint)
        if why is None:
            return checkpoint
        warnings.warn(f"skipping checkpoint {checkpoint}: {why}", stacklevel=2)
    return None


def save_checkpoint(accelerator, run_dir: Path, state: TrainState, model, method, keep_last: int | None) -> Path:
    """Write RUN/checkpoints/step-N atomically (every process calls this; the main one writes)."""
    root = Path(run_dir) / CHECKPOINTS
    final, tmp = root / f"step-{state.step}", root / f".step-{state.step}.tmp"
    main = accelerator.is_main_process
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))  # optimizer, scheduler; RNG states of every process
    accelerator.wait_for_everyone()
    if main:
        model.save_pretrained(tmp / "adapter")
        save_method_params(tmp / "method.safetensors", method)
        (tmp / STATE).write_text(json.dumps(dataclasses.asdict(state), indent=2))
        files = {str(p.relative_to(tmp)): [p.stat().st_size, _sha256(p)] for p in _files(tmp)}
        write_atomic(tmp / MANIFEST, json.dumps({"step": state.step, "files": files}, indent=2))
        if final.exists():  # the same step saved before (a signal right after a periodic save)
            shutil.rmtree(final)
        tmp.rename(final)
        _prune(run_dir, keep_last)
    accelerator.wait_for_everyone()
    return final


def _prune(run_dir: Path, keep_last: int | None) -> None:
    if keep_last is None:
        return
    dirs = checkpoint_dirs(run_dir)
    for old in dirs[: max(0, len(dirs) - keep_last)]:
        shutil.rmtree(old)


def load_checkpoint(accelerator, checkpoint: Path, model, method) -> TrainState:
    """Restore adapter, method parameters, optimizer, scheduler and RNG states; return the counters."""
    if accelerator.is_main_process:
        clean_partial(checkpoint.parents[1])
    accelerator.load_state(str(checkpoint))
    adapter = load_file(str(checkpoint / "adapter" / "adapter_model.safetensors"))
    result = set_peft_model_state_dict(model, adapter)
    if getattr(result, "unexpected_keys", None):
        raise ValueError(f"{checkpoint}/adapter does not fit this model: unexpected {result.unexpected_keys[:3]}")
    load_method_params(checkpoint / "method.safetensors", method)
    return TrainState(**json.loads((checkpoint / STATE).read_text()))


def resume_checkpoint(run_dir: Path) -> Path:
    """The checkpoint `innerpo train --resume RUN` continues from, or a ResumeError saying why none."""
    if not (run_dir / "config.yaml").is_file():
        raise ResumeError(f"{run_dir} is not a run directory (no config.yaml)")
    if (run_dir / "adapter").exists():
        raise ResumeError(
            f"{run_dir} holds a final adapter (the run finished or stopped on a non-finite value); nothing to resume"
        )
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise ResumeError(
            f"{run_dir} has no complete checkpoint to resume from (runs write them with --training.save_every=N, or on SIGTERM/SIGINT)"
        )
    return checkpoint


def clean_partial(run_dir: Path) -> None:
    """Remove the hidden directories of checkpoints a killed process did not finish."""
    root = Path(run_dir) / CHECKPOINTS
    for tmp in root.glob(".step-*.tmp") if root.is_dir() else []:
        shutil.rmtree(tmp, ignore_errors=True)


# Settings a resumed run may change: they do not touch the result.
RESUME_MAY_CHANGE = {
    "training.save_every",
    "training.keep_last",
    "training.report_to",
    "training.tracker_project",
    "training.tracker_group",
    "data.genies_dir",
    "eval.coherence_threshold",
    "eval.max_pairs",
    "config",
}


def resume_conflicts(saved, given) -> list[str]:
    """Flags in `given` that differ from the run's saved config and would change the result."""
    a, b = flatten(to_dict(saved)), flatten(to_dict(given))
    return [
        f"--{k}={b[k]!r} (the run has {a[k]!r})"
        for k in a
        if a[k] != b.get(k) and k not in RESUME_MAY_CHANGE and k != "output_dir"
    ]


def resolve_resume(cfg, resume: str | None):
    """(config to train with, whether to resume) for `innerpo train ... --resume RUN|auto`.

    RUN: continue that run with its saved config; `auto` (sweeps): continue
    `--output_dir` when it holds a complete checkpoint, else start it fresh. Flags that
    would change the result (anything outside RESUME_MAY_CHANGE) are refused.
    """
    from innerpo.train.run_dir import load_config

    if resume is None:
        return cfg, False
    if resume == "auto":
        if not cfg.output_dir:
            raise ResumeError("--resume auto needs --output_dir (the run directory to continue or start)")
        run_dir = Path(cfg.output_dir)
        if (
            (run_dir / "adapter").exists()
            or not (run_dir / "config.yaml").is_file()
            or latest_checkpoint(run_dir) is None
        ):
            return cfg, False  # a fresh start (a finished run is refused by the loop as always)
    else:
        run_dir = Path(resume)
    resume_checkpoint(run_dir)  # fails early, with the reason, when there is nothing to resume
    saved = load_config(run_dir)
    conflicts = resume_conflicts(saved, cfg)
    if conflicts:
        raise ResumeError(
            f"--resume {run_dir}: these flags would change the run's result, so they cannot change on resume: {'; '.join(conflicts)}. Drop them, or start a new run."
        )
    return dataclasses.replace(cfg, output_dir=str(run_dir)), True
