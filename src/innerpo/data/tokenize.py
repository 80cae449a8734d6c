"""Turn pairs into token ids with the prompt masked, under a documented length rule.

Rendering. With a chat template (and `chat_template="auto"`), the prompt is rendered
with `add_generation_prompt=True` and each completion is the text the template adds
for an assistant message after it (its end-of-turn marker included, so the model
learns to stop). Without a template, the prompt is the plain text and the completion
is the text followed by the EOS token. Prompt and completion are tokenized separately
and concatenated, so the boundary between them is exact.

Length rule, per pair, with L = max_length and C = the longer completion's length:
- prompt + C <= L: kept whole;
- otherwise, with truncation="prompt_left" and L − C >= MIN_PROMPT_TOKENS, the prompt
  keeps only its last L − C tokens (the end of a prompt, next to the answer, matters
  most);
- otherwise the pair is dropped. Completions are never cut: a cut completion would
  compare unfinished answers. Drops are counted in a TokenizeReport.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import PreTrainedTokenizerBase

from innerpo.data.pairs import Pair
from innerpo.errors import DataError

MIN_PROMPT_TOKENS = 8


@dataclass(frozen=True)
class TokenizedPair:
    prompt: tuple[int, ...]
    chosen: tuple[int, ...]
    rejected: tuple[int, ...]


@dataclass
class TokenizeReport:
    kept: int = 0
    prompt_truncated: int = 0
    dropped_too_long: int = 0
    dropped_identical: int = 0
    """Training pairs whose chosen and rejected completions are the same text: no preference to learn."""
    examples: list[str] = field(default_factory=list)
    shortest_fit: int | None = None
    """The smallest max_length under which a dropped pair would have been kept (None: none dropped)."""

    def drop(self, needed: int) -> None:
        self.dropped_too_long += 1
        self.shortest_fit = needed if self.shortest_fit is None else min(self.shortest_fit, needed)

    def nothing_fits(self, source: str, total: int, max_length: int, what: str = "pairs") -> str:
        """The message for a source none of whose rows fits the length limit."""
        return (
            f"{source}: none of the {total} {what} fits --data.max_length={max_length} (completions are never cut); "
            f"the shortest would fit with --data.max_length={self.shortest_fit}"
        )

    def describe(self, source: str) -> str:
        total = self.kept + self.dropped_too_long + self.dropped_identical
        text = f"{source}: {self.kept}/{total} pairs kept"
        if self.prompt_truncated:
            text += f", {self.prompt_truncated} prompts cut from the left"
        if self.dropped_too_long:
            text += f", {self.dropped_too_long} dropped as too long"
        if self.dropped_identical:
            text += f", {self.dropped_identical} dropped with identical chosen and rejected completions"
        return text


def distinct_pairs(pairs: list[Pair], source: str) -> list[Pair]:
    """The pairs whose chosen and rejected completions differ; DataError when none does."""
    distinct = [p for p in pairs if p.chosen != p.rejected]
    if pairs and not distinct:
        raise DataError(
            f"{source}: all {len(pairs)} pairs have identical chosen and rejected completions; nothing to learn a preference from"
        )
    return distinct


class PairTokenizer:
    """Callable pair → TokenizedPair | None (None: dropped by the length rule)."""

    def __init__(
        self,
        tok: PreTrainedTokenizerBase,
        max_length: int,
        truncation: str = "prompt_left",
        chat_template: str = "auto",
    ):
        if truncation not in ("prompt_left", "drop"):
            raise ValueError(f"truncation must be 'prompt_left' or 'drop', got {truncation!r}")
        if max_length <= MIN_PROMPT_TOKENS:
            raise ValueError(f"max_length must exceed {MIN_PROMPT_TOKENS}, got {max_length}")
        self.tok = tok
        self.max_length = max_length
        self.truncation = truncation
        self.use_template = chat_template == "auto" and bool(getattr(tok, "chat_template", None))

    def settings(self) -> dict:
        return {
            "max_length": self.max_length,
            "truncation": self.truncation,
            "chat_template": "auto" if self.use_template else "off",
            "min_prompt_tokens": MIN_PROMPT_TOKENS,
        }

    def render(self, pair: Pair, completion: str) -> tuple[str, str]:
        """(prompt text, completion text) as the model will see them."""
        if not self.use_template:
            return pair.prompt_text(), completion + (self.tok.eos_token or "")
        messages = pair.prompt_messages()
        prompt = self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        full = self.tok.apply_chat_template(messages + [{"role": "assistant", "content": completion}], tokenize=False)
        if not full.startswith(prompt):
            raise DataError(
                "the chat template renders the prompt differently with and without the answer; "
                "use --data.chat_template=off for this model"
            )
        return prompt, full[len(prompt) :]

    def _ids(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def __call__(self, pair: Pair, report: TokenizeReport | None = None) -> TokenizedPair | None:
        prompt_text, chosen_text = self.render(pair, pair.chosen)
        _, rejected_text = self.render(pair, pair.rejected)
        prompt = self._ids(prompt_text)
        # A BOS token that the tokenizer would add goes in front of the prompt only.
        if self.tok.bos_token_id is not None and getattr(self.tok, "add_bos_token", False):
            if not prompt or prompt[0] != self.tok.bos_token_id:
                prompt = [self.tok.bos_token_id] + prompt
        chosen, rejected = self._ids(chosen_text), self._ids(rejected_text)
        longest = max(len(chosen), len(rejected))
        room = self.max_length - longest
        if len(prompt) > room:
            if self.truncation == "drop" or room < MIN_PROMPT_TOKENS:
                if report is not None:
                    report.drop(
                        longest + (len(prompt) if self.truncation == "drop" else min(len(prompt), MIN_PROMPT_TOKENS))
                    )
                return None
            prompt = prompt[len(prompt) - room :]
            if report is not None:
                report.prompt_truncated += 1
        if report is not None:
            report.kept += 1
        return TokenizedPair(tuple(prompt), tuple(chosen), tuple(rejected))

    def tokenize_all(self, pairs: list[Pair], source: str) -> tuple[list[TokenizedPair], TokenizeReport]:
        kept, report = self.tokenize_indexed(pairs, source)
        return [item for _, item in kept], report

    def tokenize_training(self, pairs: list[Pair], source: str) -> tuple[list[TokenizedPair], TokenizeReport]:
        """tokenize_all for training pairs, less those whose chosen and rejected completions are
        identical: such a pair states no preference, and every pairwise loss sees a zero
        margin in it. They are counted in the report (evaluation keeps them: scoring them is
        harmless and keeps a suite's pair counts those of its files)."""
        distinct = distinct_pairs(pairs, source)
        items, report = self.tokenize_all(distinct, source)
        report.dropped_identical = len(pairs) - len(distinct)
        return items, report

    def tokenize_indexed(
        self, pairs: list[Pair], source: str
    ) -> tuple[list[tuple[int, TokenizedPair]], TokenizeReport]:
        """Like tokenize_all, keeping each kept pair's index in `pairs` (for per-pair results)."""
        report = TokenizeReport()
        kept = [(i, t) for i, t in ((i, self(p, report)) for i, p in enumerate(pairs)) if t is not None]
        if not kept:
            raise DataError(report.nothing_fits(source, len(pairs), self.max_length))
        return kept, report
