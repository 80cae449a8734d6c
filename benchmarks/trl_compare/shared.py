"""What every configuration of the TRL comparison holds equal: the settings, the same pairs
(the first kept after the loop's data shuffle), the loop's batch order and the LoRA init."""

from __future__ import annotations

import hashlib
import math
import random
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BATCH = 8
BETA = 0.1
LORA_R, LORA_ALPHA = 16, 32.0
EVAL_BATCH = 16  # EvalConfig.batch_size, also the loop's reference-pass batch size


def dataset_spec(args) -> str:
    return "synthetic" if args.dataset == "synthetic" else f"genies:{args.genies_dist}"


def n_pairs(args) -> int:
    """Enough pairs for warm-up + timed steps inside one epoch, a multiple of the batch."""
    n = max(args.pairs, BATCH * (args.steps + 1))
    return -(-n // BATCH) * BATCH


def precision_of(name: str) -> str:
    """Configurations ending in _bf16 run bf16 mixed precision; the rest fp32."""
    return "bf16" if name.endswith("_bf16") else "fp32"


def make_cfg(args, method=None, precision: str = "fp32"):
    from innerpo.data.config import DataConfig
    from innerpo.methods.config import MethodConfig
    from innerpo.models.config import ModelConfig
    from innerpo.train.config import TrainConfig, TrainingConfig

    total = args.steps + 1
    return TrainConfig(
        model=ModelConfig(
            base_model=args.model, dtype="float32", lora_r=LORA_R, lora_alpha=LORA_ALPHA, lora_dropout=0.0
        ),
        data=DataConfig(
            dataset=dataset_spec(args),
            genies_dir=args.genies_dir,
            batch_size=BATCH,
            max_length=args.max_length,
            truncation="drop",
            group_by_length=True,
            max_train_pairs=n_pairs(args),
        ),
        training=TrainingConfig(
            lr=args.lr,
            warmup_ratio=0.0,
            max_grad_norm=1.0,
            max_steps=total,
            seed=args.seed,
            eval_every=0,
            precision=precision,
        ),
        method=method or MethodConfig(losses=["dpo"], weights=[1.0], beta=BETA),
    )


def prepare(args, tok):
    """(PairTokenizer, pairs, items): the first n kept pairs after the loop's data shuffle."""
    from innerpo.data.sources import load_pairs
    from innerpo.data.tokenize import PairTokenizer
    from innerpo.train.loop import DATA_SEED

    pairs = load_pairs(dataset_spec(args), "train", args.genies_dir)
    random.Random(DATA_SEED).shuffle(pairs)
    pair_tok = PairTokenizer(tok, args.max_length, truncation="drop")
    kept, items, n = [], [], n_pairs(args)
    for p in pairs:
        it = pair_tok(p)
        if it is not None:
            kept.append(p)
            items.append(it)
            if len(items) == n:
                break
    if len(items) < n:
        raise SystemExit(f"{dataset_spec(args)}: only {len(items)} pairs fit --max-length={args.max_length}; need {n}")
    return pair_tok, kept, items


def epoch_order(items, cfg) -> list[int]:
    """The pair indices of the loop's first epoch, batch after batch (innerpo's sampler)."""
    from innerpo.data.batching import EpochBatchSampler, item_length

    sampler = EpochBatchSampler(
        len(items), cfg.data.batch_size, seed=cfg.training.seed, lengths=[item_length(i) for i in items]
    )
    sampler.set_epoch(0)
    return [i for b in sampler for i in b]


def init_lora(model, seed: int, b_scale: float) -> str:
    """Overwrite every LoRA tensor with values fixed by (seed, its name); returns their digest."""
    import torch

    h = hashlib.blake2b(digest_size=8)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if "lora_" not in name:
                continue
            g = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
            if "lora_A" in name:
                bound = 1.0 / math.sqrt(p.shape[1])
                p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * bound)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * b_scale)
            h.update(name.encode())
            h.update(p.detach().contiguous().numpy().tobytes())
    return h.hexdigest()
