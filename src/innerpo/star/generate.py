"""Batched sampling of rationales, behind a small interface.

`Generator.generate(prompts, k, settings)` takes tokenized prompts and returns, per
prompt, k `Sample`s. The STaR loop only knows this interface, so a GPU backend (vLLM's
`LLM.generate` with `SamplingParams(n=k, stop=...)`) can be added as another class.

`HFGenerator` runs a transformers causal LM on a KV cache with a decode loop of its own,
because `model.generate` cannot do the things that make sampling k rationales per
question fast on a CPU (each measured in benchmarks/star_generation.py):
1. shared prompts: each question's prompt is run once, and its keys and values are
   repeated for its k samples (`batch_repeat_interleave`); `generate` with
   `num_return_sequences` repeats the prompt before the forward, so it runs k times;
2. finished rows leave the batch (`batch_select_indices`): a row that produced EOS or a
   stop string stops costing compute (once finished rows are `compact_at` of the batch,
   as each removal copies the cache), where `generate` decodes it until the longest ends;
3. one prefix for all: the token prefix every prompt shares (the instruction and the
   few-shot exemplars, most of a few-shot prompt) runs once per call and stays one row
   that every row attends to (prefix_attention), not a copy per row; each row's own
   tokens follow it after the row's left padding (masked; positions count real tokens);
4. a cache written in place (kv_cache.PreallocatedCache), where `DynamicCache` copies
   every layer's whole cache with `torch.cat` each step;
5. token-sized batches: questions are sorted by prompt length and packed so that
   rows × (prompt + max_new_tokens) stays under `batch_tokens`, which bounds the cache
   and keeps left padding small.
Sampling is by inverse CDF (`sample_tokens`); temperature 0 is greedy (k must be 1 then).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch
from transformers import DynamicCache

from innerpo.star.kv_cache import PreallocatedCache
from innerpo.star.prefix_attention import decoder_mask, shared_prefix_attention


@dataclass(frozen=True)
class GenSettings:
    max_new_tokens: int = 128
    temperature: float = 0.7
    """0 means greedy decoding."""
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    """Strings that end a sample (cut off, not kept); the EOS token always ends one."""
    batch_tokens: int = 32768
    """Cap on rows × (prompt + max_new_tokens) per batch."""
    max_rows: int = 64
    """Cap on rows (prompts × k) per batch."""
    seed: int = 0
    compact_at: float = 0.25
    """Finished rows leave the batch (one copy of its KV cache) once they are this share of
    its rows; until then each costs one row of a decode step. 0 removes them at once."""
    share_prefix: bool = True
    """Attend to the prompts' shared prefix as one row instead of copying it into every row
    (prefix_attention; models outside transformers' AttentionInterface always copy)."""


@dataclass
class Sample:
    text: str
    n_tokens: int
    finish: str  # "eos", "stop" or "length"


class Generator(Protocol):
    def generate(self, prompts: list[list[int]], k: int, settings: GenSettings) -> list[list[Sample]]:
        """k samples for each prompt, in prompt order."""
        ...


def sample_tokens(
    logits: torch.Tensor, temperature: float, top_p: float, gen: torch.Generator, candidates: int = 256
) -> torch.Tensor:
    """One token per row of `logits` [rows, vocab]: argmax when `temperature` is 0, else a
    draw from softmax(logits / temperature), restricted to the top-p nucleus when top_p < 1.

    Drawn by inverse CDF: the probabilities' running sum (float64) and one uniform per row
    from `gen`, located with `searchsorted`, where `torch.multinomial` draws an exponential
    per vocabulary entry (the docs' STaR generation results have the timing).
    The nucleus is the smallest set of most likely tokens whose mass reaches top_p (as
    transformers' `TopPLogitsWarper` keeps it, up to ties); drawing uniformly in [0, nucleus
    mass) on the descending running sum renormalizes within it. The descending order comes
    from `topk(candidates)` when those hold every row's nucleus (the draw is then the same as
    from a full sort), else from a full sort (much slower than a topk of 256).
    """
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    order = None
    if top_p < 1.0:
        top_probs, order = probs.topk(min(candidates, probs.shape[-1]), dim=-1)
        cdf = top_probs.double().cumsum(dim=-1)
        if (cdf[:, -1] < top_p).any():  # some row's nucleus is wider than the candidates
            top_probs, order = probs.sort(dim=-1, descending=True)
            cdf = top_probs.double().cumsum(dim=-1)
    else:
        cdf = probs.double().cumsum(dim=-1)
    last = cdf.shape[-1] - 1
    if order is None:
        end = torch.full((cdf.shape[0], 1), last, device=cdf.device)
    else:  # the nucleus ends at the first token whose running sum reaches top_p
        end = torch.searchsorted(cdf, torch.full((cdf.shape[0], 1), top_p, dtype=cdf.dtype, device=cdf.device)).clamp(
            max=last
        )
    u = torch.rand((cdf.shape[0], 1), generator=gen, dtype=torch.float64).to(cdf.device) * cdf.gather(-1, end)
    idx = torch.minimum(
        torch.searchsorted(cdf, u, right=True), end
    )  # first running sum > u: zero-probability tokens never
    return (idx if order is None else order.gather(-1, idx)).squeeze(-1)


@dataclass
class _Row:
    prompt: int  # index into prompts
    tokens: list[int] = field(default_factory=list)
    finish: str | None = None


class HFGenerator:
    """Decode loop over a transformers model's KV cache (see the module docstring)."""

    def __init__(self, model, tokenizer):
        self.model = model
        self.tok = tokenizer
        eos = model.generation_config.eos_token_id if getattr(model, "generation_config", None) else None
        eos = eos if eos is not None else tokenizer.eos_token_id
        self.eos = set(eos if isinstance(eos, list) else [eos]) | {tokenizer.eos_token_id}
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def generate(self, prompts: list[list[int]], k: int, settings: GenSettings) -> list[list[Sample]]:
        if settings.temperature <= 0 and k != 1:
            raise ValueError(
                "greedy decoding (temperature 0) gives one sample per prompt; use k=1 or a temperature > 0"
            )
        if any(not p for p in prompts):
            raise ValueError("every prompt needs at least one token")
        gen = torch.Generator().manual_seed(settings.seed)
        out: list[list[Sample]] = [[] for _ in prompts]
        was_training = self.model.training
        self.model.eval()
        try:
            prefix = self._prefix(prompts)
            with shared_prefix_attention(
                self.model, settings.share_prefix and prefix[1] is not None
            ) as shared_attention:
                for batch in self.batches(prompts, k, settings):
                    for row in self._decode(prompts, batch, k, settings, gen, prefix, shared_attention):
                        text = self._text(row.tokens, settings.stop)
                        out[row.prompt].append(Sample(text, len(row.tokens), row.finish or "length"))
        finally:
            self.model.train(was_training)
        return out

    @staticmethod
    def batches(prompts: list[list[int]], k: int, settings: GenSettings) -> list[list[int]]:
        """Prompt indices, sorted by length, packed by the token budget (at least one prompt each)."""
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        batches, current = [], []
        for i in order:
            longest = len(prompts[i])  # sorted ascending: the newest prompt is the longest
            rows = (len(current) + 1) * k
            if current and (
                rows * (longest + settings.max_new_tokens) > settings.batch_tokens or rows > settings.max_rows
            ):
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        return batches

    @torch.inference_mode()
    def _prefix(self, prompts: list[list[int]]):
        """(length, cache) of the token prefix every prompt shares (the instruction and few-shot
        exemplars), run once; each prompt keeps at least one token of its own."""
        n = min(len(p) for p in prompts) - 1
        first = prompts[0]
        for p in prompts[1:]:
            n = next((j for j in range(n) if p[j] != first[j]), n)
        if n < 1:
            return 0, None
        cache = DynamicCache()
        ids = torch.tensor([first[:n]], device=self._device())
        self.model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1)
        return n, cache

    def _device(self):
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def _decode(
        self, prompts, batch: list[int], k: int, settings: GenSettings, gen, prefix, shared_attention: bool
    ) -> list[_Row]:
        device = self._device()
        shared, prefix_cache = prefix
        width = max(len(prompts[i]) for i in batch) - shared
        ids = torch.full((len(batch), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)  # the rows' own tokens: 1 real, 0 padding
        for r, i in enumerate(batch):
            own = prompts[i][shared:]
            ids[r, width - len(own) :] = torch.tensor(own)
            mask[r, width - len(own) :] = 1
        ids, mask = ids.to(device), mask.to(device)
        extra, offset = {}, shared  # offset: positions the cache's mask does not count
        if shared_attention:  # the prefix stays one row, attended by every row (prefix_attention)
            cache = PreallocatedCache(width + settings.max_new_tokens)
            extra["shared_prefix"] = prefix_cache
        else:  # the prefix's keys and values, one copy per row, in front of the rows' own
            cache = PreallocatedCache(shared + width + settings.max_new_tokens)
            if prefix_cache is not None:
                cache.fill_prefix(prefix_cache, len(batch))
            mask = torch.cat([torch.ones((len(batch), shared), dtype=mask.dtype, device=device), mask], dim=-1)
            offset = 0
        positions = offset + (mask.cumsum(-1) - 1).clamp(min=0)[:, -width:]
        logits = self.model(
            input_ids=ids,
            attention_mask=decoder_mask(mask, width),
            position_ids=positions,
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
            **extra,
        ).logits[:, -1, :]
        if k > 1:  # one prompt pass serves its k samples
            cache.batch_repeat_interleave(k)
            logits = logits.repeat_interleave(k, dim=0)
            mask = mask.repeat_interleave(k, dim=0)
        rows = [_Row(i) for i in batch for _ in range(k)]
        slots: list[int | None] = list(range(len(rows)))  # the row in each cache slot; None once it finished
        next_pos = offset + mask.sum(-1)  # [slots] position of each slot's next token
        for step in range(settings.max_new_tokens):
            nxt = sample_tokens(logits, settings.temperature, settings.top_p, gen)
            for r, t in zip(slots, nxt.tolist()):
                if r is None:
                    continue
                row = rows[r]
                if t in self.eos:
                    row.finish = "eos"
                    continue
                row.tokens.append(t)
                if settings.stop and self._hits_stop(row.tokens, settings.stop):
                    row.finish = "stop"
            slots = [None if r is None or rows[r].finish else r for r in slots]
            live = [s for s, r in enumerate(slots) if r is not None]
            if not live or step == settings.max_new_tokens - 1:
                break
            # finished rows leave the batch and the cache once they are a share of it: each
            # compaction copies the cache, while a finished row left in costs one row of compute
            if len(slots) - len(live) >= max(1.0, settings.compact_at * len(slots)):
                index = torch.tensor(live, device=device)
                cache.batch_select_indices(index)
                mask, next_pos, nxt = mask[index], next_pos[index], nxt[index]
                slots = [slots[s] for s in live]
            mask = torch.cat([mask, torch.ones((len(slots), 1), dtype=mask.dtype, device=device)], dim=-1)
            logits = self.model(
                input_ids=nxt[:, None],
                attention_mask=decoder_mask(mask, 1),
                position_ids=next_pos[:, None],
                cache=cache,
                use_cache=True,
                logits_to_keep=1,
                **extra,
            ).logits[:, -1, :]
            next_pos = next_pos + 1
        return rows

    def _hits_stop(self, tokens: list[int], stop: tuple[str, ...]) -> bool:
        tail = self.tok.decode(tokens[-12:], skip_special_tokens=False)
        return any(s in tail for s in stop)

    def _text(self, tokens: list[int], stop: tuple[str, ...]) -> str:
        text = self.tok.decode(tokens, skip_special_tokens=True)
        cut = min((text.find(s) for s in stop if s in text), default=-1)
        return text[:cut] if cut >= 0 else text
