"""Data parallelism across the processes `accelerate launch` starts.

The loop does not hand the model to DistributedDataParallel: `forward_pairs` calls the
transformer body and the output head directly (the shared-prompt pass), never the
wrapped model's forward, which is where DDP does its bookkeeping. So gradients are
averaged here instead, once per optimizer step, after the last micro-batch: what DDP
does under `no_sync` accumulation, with one all-reduce of the trainable parameters'
gradients (LoRA and method parameters: a few MB).
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import torch
from accelerate.utils import broadcast_object_list, parse_flag_from_env


def cpu_only() -> bool:
    """Train on CPU: asked for (`accelerate launch --cpu`), or no GPU-like device present.

    Telling accelerate so matters with several processes: only then does it join them
    over gloo on CPU (otherwise each process would train alone).
    """
    return parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.accelerator.is_available()


def check_backend() -> None:
    """Refuse FSDP and DeepSpeed launches before any output: they shard parameters and
    gather them in the wrapped model's forward, which `forward_pairs` never calls."""
    for flag, name in (("ACCELERATE_USE_FSDP", "FSDP"), ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed")):
        if parse_flag_from_env(flag):
            raise ValueError(
                f"{name} is not supported by innerpo's loop: it gathers sharded parameters in the wrapped model's forward, which the "
                "loop's shared-prompt pass bypasses. For LoRA, plain data parallelism (accelerate launch --multi_gpu, or --num_processes N) "
                "keeps one copy of the frozen base per GPU and averages only the adapter's gradients."
            )


def launch_command(num_processes: int, train_args: list[str]) -> list[str]:
    """`accelerate launch` starting `innerpo train ARGS` in `num_processes` processes
    (torchrun underneath; gloo on CPU, see `cpu_only`), on a free local port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        str(num_processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(port),
        "-m",
        "innerpo.cli",
        "train",
        *train_args,
    ]


def in_launched_process() -> bool:
    """True inside a process started by accelerate launch / torchrun."""
    return "LOCAL_RANK" in os.environ


def shared_run_dir(state, make) -> Path:
    """The main process creates the run directory (`make()`); the others receive its path."""
    path = [str(make()) if state.is_main_process else None]
    if state.num_processes > 1:
        broadcast_object_list(path, from_process=0)
    return Path(path[0])


def average_gradients(accelerator, params: list[torch.nn.Parameter]) -> None:
    """Replace each gradient by its mean over processes (every process holds the same set)."""
    if accelerator.num_processes == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = accelerator.reduce(torch.cat([g.reshape(-1) for g in grads]), reduction="mean")
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def any_process(accelerator, flag: bool) -> bool:
    """True on every process when `flag` is True on at least one."""
    if accelerator.num_processes == 1:
        return flag
    return bool(accelerator.reduce(torch.tensor([float(flag)], device=accelerator.device), reduction="sum").item() > 0)
