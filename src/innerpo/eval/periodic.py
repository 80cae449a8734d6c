"""Periodic evaluation during training, on held-out pairs only.

The held-out set is the eval suite's `in_domain` shift, unless that shift is the
training data itself (same source and split, or the same file): then, or when the suite
has no `in_domain` shift, periodic evaluation is turned off with a message rather than
scoring training pairs. Pairs of the shift that also occur in the training subset (same
content, innerpo.eval.pair_results.pair_id) are left out and counted. The first
`--training.eval_pairs` scorable pairs are used, the same at every evaluation.

Each evaluation logs a metrics.jsonl row: `eval/accuracy` and `eval/nll` (as in the final
evaluation), `eval/n`, and `eval/loss` and `eval/rewards/margins`: the DPO loss and mean
reward margin β·[(log π − log π_ref)(chosen) − (…)(rejected)] at the run's β, with the base
model as reference: the same yardstick for every method, reference-free ones included.
The first row also carries the base model's `eval/base_accuracy` and `eval/base_nll`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from innerpo.data.config import DataConfig
from innerpo.data.pairs import Pair
from innerpo.data.sources import load_pairs
from innerpo.data.tokenize import PairTokenizer, TokenizedPair
from innerpo.eval.accuracy import Scores, pair_rows
from innerpo.eval.config import EvalConfig
from innerpo.eval.pair_results import pair_id
from innerpo.eval.suites import Shift, get_suite
from innerpo.losses.base import LossInputs, SeqLogps
from innerpo.losses.dpo import DPOLoss


@dataclass
class PeriodicEval:
    items: list[TokenizedPair]
    pad_id: int
    batch_size: int
    every: int
    beta: float
    base: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    def due(self, step: int, total_steps: int) -> bool:
        return step % self.every == 0 or step == total_steps

    def __call__(self, model, log, step: int) -> dict:
        rows = pair_rows(
            model, self.items, self.pad_id, self.batch_size, desc="periodic eval", with_base=self.base is None
        )
        adapter = Scores.from_rows(rows["adapter"])
        row = {"step": step, "eval/accuracy": adapter.accuracy, "eval/nll": adapter.nll, "eval/n": adapter.n_pairs}
        if "base" in rows:
            self.base = rows["base"]
            if step == 0:  # logged on the step-0 row only, so a resumed run's rows equal the uninterrupted run's
                base = Scores.from_rows(self.base)
                row.update({"eval/base_accuracy": base.accuracy, "eval/base_nll": base.nll})
        if self.base is not None:
            out = DPOLoss(self.beta)(_inputs(rows["adapter"], self.base))
            row.update({"eval/loss": out.loss.item(), "eval/rewards/margins": out.metrics["rewards/margins"].item()})
        log.write(row)
        return row


def _inputs(policy: dict, ref: dict) -> LossInputs:
    seq = lambda r, side: SeqLogps(r[f"{side}_sum"].double(), r[f"{side}_ntok"].double())  # noqa: E731
    return LossInputs(seq(policy, "chosen"), seq(policy, "rejected"), seq(ref, "chosen"), seq(ref, "rejected"))


def _same_source(shift: Shift, dataset: str, split: str) -> bool:
    norm = lambda s: "synthetic:in_domain" if s == "synthetic" else s  # noqa: E731
    a, b = norm(shift.dataset), norm(dataset)
    if Path(a).exists() and Path(b).exists():
        return Path(a).resolve() == Path(b).resolve()  # a file or directory: the split does not separate it
    return a == b and shift.split == split


def held_out_eval(
    data: DataConfig,
    eval_cfg: EvalConfig,
    pair_tok: PairTokenizer,
    train_pairs: list,
    pad_id: int,
    *,
    every: int,
    n_pairs: int,
    beta: float,
) -> PeriodicEval | None:
    """The periodic evaluation for a run training on `data`, every `every` steps on `n_pairs`
    held-out pairs (`--training.eval_every`, `--training.eval_pairs`) at the method's `beta`;
    or None (off, with the reason printed)."""
    if not every:
        return None
    suite = get_suite(eval_cfg.suite, data.dataset)
    shift = suite.shifts.get("in_domain")
    if shift is None:
        print(
            f"periodic evaluation off: suite {suite.name!r} has no in_domain shift to hold out (shifts: {', '.join(suite.shifts)})"
        )
        return None
    if _same_source(shift, data.dataset, data.split):
        print(
            f"periodic evaluation off: the suite's in_domain shift ({shift.dataset}, {shift.split}) is the training data; "
            "give the suite a held-out in_domain split or file"
        )
        return None
    pairs = load_pairs(shift.dataset, shift.split, data.genies_dir)
    seen = {pair_id(p) for p in train_pairs if isinstance(p, Pair)}
    held = [p for p in pairs if pair_id(p) not in seen]
    if not held:
        print(
            f"periodic evaluation off: every pair of the in_domain shift ({shift.dataset}, {shift.split}) is in the training data"
        )
        return None
    items = pair_tok.tokenize_all(held, f"periodic eval ({shift.dataset})")[0][:n_pairs]
    overlap = (
        f"; {len(pairs) - len(held)} of its pairs are training pairs and were left out"
        if len(held) < len(pairs)
        else ""
    )
    print(
        f"periodic evaluation: {len(items)} held-out pairs of {shift.dataset} ({shift.split}) every {every} steps{overlap}"
    )
    return PeriodicEval(items, pad_id, eval_cfg.batch_size, every, beta)
