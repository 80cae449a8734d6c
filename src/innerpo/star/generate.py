"""Batched sampling of rationales, behind a small interface.

`Generator.generate(prompts, k, settings)` takes tokenized prompts and returns, per
prompt, k `Sample`s. The STaR loop only knows this interface, so a GPU backend (vLLM's
`LLM.generate` with `SamplingParams(n=k, stop=...)`) can be added as another class.

`HFGenerator` runs a transformers causal LM on its KV cache (`DynamicCache`) with a
decode loop of its own, because `model.generate` cannot do the three things that make
sampling k rationales per question fast on a CPU (measured in
benchmarks/star_generation.py):
1. shared prompts: each question's prompt is run once, and its keys and values are
   repeated for its k samples (`DynamicCache.batch_repeat_interleave`); `generate`
   with `num_return_sequences` repeats the prompt before the forward, so it runs k times;
2. finished rows leave the batch (`DynamicCache.batch_select_indices`): a row that
   produced EOS or a stop string stops costing compute, where `generate` keeps
   decoding it as padding until the longest row ends;
3. one prefix for all: the token prefix every prompt shares (the instruction and the
   few-shot exemplars, most of a few-shot prompt) runs once per call and its cache is
   copied into each batch; each row's own tokens follow it after the row's padding
   (masked out; positions count real tokens only);
4. token-sized batches: questions are sorted by prompt length and packed so that
   rows × (prompt + max_new_tokens) stays under `batch_tokens`, which bounds the cache
   and keeps left padding small.
Sampling uses transformers' temperature and top-p logits warpers; temperature 0 is
greedy (k must be 1 then). Rows are left-padded with explicit position ids.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Protocol

import torch
from transformers import DynamicCache
from transformers.generation import LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper


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


@dataclass
class Sample:
    text: str
    n_tokens: int
    finish: str  # "eos", "stop" or "length"


class Generator(Protocol):
    def generate(self, prompts: list[list[int]], k: int, settings: GenSettings) -> list[list[Sample]]:
        """k samples for each prompt, in prompt order."""
        ...


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
            raise ValueError("greedy decoding (temperature 0) gives one sample per prompt; use k=1 or a temperature > 0")
        if any(not p for p in prompts):
            raise ValueError("every prompt needs at least one token")
        gen = torch.Generator().manual_seed(settings.seed)
        warpers = LogitsProcessorList()
        if settings.temperature > 0:
            warpers.append(TemperatureLogitsWarper(settings.temperature))
            if settings.top_p < 1.0:
                warpers.append(TopPLogitsWarper(settings.top_p))
        out: list[list[Sample]] = [[] for _ in prompts]
        was_training = self.model.training
        self.model.eval()
        try:
            prefix = self._prefix(prompts)
            for batch in self.batches(prompts, k, settings):
                for row in self._decode(prompts, batch, k, settings, warpers, gen, prefix):
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
            if current and (rows * (longest + settings.max_new_tokens) > settings.batch_tokens or rows > settings.max_rows):
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
        self.model(input_ids=ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
        return n, cache

    def _device(self):
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def _decode(self, prompts, batch: list[int], k: int, settings: GenSettings, warpers, gen, prefix) -> list[_Row]:
        device = self._device()
        shared, prefix_cache = prefix
        width = max(len(prompts[i]) for i in batch) - shared
        ids = torch.full((len(batch), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(batch), shared + width), dtype=torch.long)
        mask[:, :shared] = 1
        for r, i in enumerate(batch):
            own = prompts[i][shared:]
            ids[r, width - len(own):] = torch.tensor(own)
            mask[r, shared + width - len(own):] = 1
        ids, mask = ids.to(device), mask.to(device)
        if prefix_cache is not None:  # the shared prefix's keys and values, one copy per row
            cache = copy.deepcopy(prefix_cache)
            cache.batch_repeat_interleave(len(batch))
        else:
            cache = DynamicCache()
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, shared:]
        logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1, :]
        if k > 1:  # one prompt pass serves its k samples
            cache.batch_repeat_interleave(k)
            logits = logits.repeat_interleave(k, dim=0)
            mask = mask.repeat_interleave(k, dim=0)
        rows = [_Row(i) for i in batch for _ in range(k)]
        active = list(range(len(rows)))  # row indices still decoding, in cache order
        next_pos = mask.sum(-1)  # [rows] position of each row's next token
        history = torch.empty((len(rows), 0), dtype=torch.long, device=device)
        for step in range(settings.max_new_tokens):
            scores = warpers(history, logits.float()) if len(warpers) else logits.float()
            if settings.temperature > 0:
                probs = torch.softmax(scores, dim=-1)
                nxt = torch.multinomial(probs.cpu(), 1, generator=gen).squeeze(-1).to(device)
            else:
                nxt = scores.argmax(-1)
            keep = []
            for slot, (r, t) in enumerate(zip(active, nxt.tolist())):
                row = rows[r]
                if t in self.eos:
                    row.finish = "eos"
                    continue
                row.tokens.append(t)
                if settings.stop and self._hits_stop(row.tokens, settings.stop):
                    row.finish = "stop"
                    continue
                keep.append(slot)
            if not keep or step == settings.max_new_tokens - 1:
                break
            if len(keep) < len(active):  # finished rows leave the batch and the cache
                index = torch.tensor(keep, device=device)
                cache.batch_select_indices(index)
                mask, next_pos, nxt = mask[index], next_pos[index], nxt[index]
                active = [active[s] for s in keep]
            mask = torch.cat([mask, torch.ones((len(active), 1), dtype=mask.dtype, device=device)], dim=-1)
            logits = self.model(
                input_ids=nxt[:, None], attention_mask=mask, position_ids=next_pos[:, None], past_key_values=cache, use_cache=True, logits_to_keep=1
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
