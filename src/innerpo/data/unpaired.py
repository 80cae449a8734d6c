"""Unpaired preference data: single completions labelled desirable or not (KTO).

A row follows TRL's unpaired preference format: `prompt`, `completion`, `label`
(`prompt` a string or chat messages, `completion` a string or one assistant message,
`label` a boolean, True = desirable; 0/1 are accepted too). Sources are the same as for
pairs (files, saved datasets, hub ids; see innerpo.data.sources): the format is told by
the columns, row by row, and a source must hold one format only.

Tokenization reuses PairTokenizer unchanged: an example is tokenized as the pair
(prompt, completion, completion), so the chat template, the BOS rule and the length rule
(prompt cut from the left, completions never cut, drops counted) are exactly those of
pairs, with C = the completion's length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from innerpo.data.pairs import Pair, parse_completion, parse_pair, parse_prompt
from innerpo.data.tokenize import PairTokenizer, TokenizeReport
from innerpo.errors import DataError

UNPAIRED_COLUMNS = ("prompt", "completion", "label")


@dataclass(frozen=True)
class UnpairedExample:
    """prompt: a string or chat messages; completion: the assistant's text; label: True = desirable."""

    prompt: str | tuple[tuple[str, str], ...]
    completion: str
    label: bool

    # The prompt is read exactly as a pair's prompt is.
    prompt_messages = Pair.prompt_messages
    prompt_text = Pair.prompt_text


@dataclass(frozen=True)
class TokenizedExample:
    prompt: tuple[int, ...]
    completion: tuple[int, ...]
    label: bool


def is_unpaired_row(row: Any) -> bool:
    """A row in TRL's unpaired format: it has `completion` and `label` and no `chosen`/`rejected`."""
    return (
        isinstance(row, dict)
        and "completion" in row
        and "label" in row
        and "chosen" not in row
        and "rejected" not in row
    )


def parse_unpaired(row: Any, where: str) -> UnpairedExample:
    """Validate one prompt/completion/label row; `where` names file and row."""
    prompt = parse_prompt(row, UNPAIRED_COLUMNS, where)
    label = row["label"]
    if not isinstance(label, bool):
        if isinstance(label, int) and label in (0, 1):
            label = bool(label)
        else:
            raise DataError(f"{where}: 'label' must be true (desirable) or false (undesirable), got {label!r:.40}")
    return UnpairedExample(prompt, parse_completion(row["completion"], "completion", where), label)


def parse_example(row: Any, where: str) -> Pair | UnpairedExample:
    """A pair (prompt/chosen/rejected) or an unpaired example (prompt/completion/label), by its columns."""
    return parse_unpaired(row, where) if is_unpaired_row(row) else parse_pair(row, where)


def parse_pair_only(row: Any, where: str) -> Pair:
    """parse_pair, with a clear refusal of unpaired rows (e.g. in an eval suite)."""
    if is_unpaired_row(row):
        raise DataError(
            f"{where}: a prompt/completion/label row (unpaired data) where preference pairs "
            "(prompt/chosen/rejected) are needed; only `innerpo train kto` trains on unpaired data, "
            "and evaluation always needs pairs"
        )
    return parse_pair(row, where)


def check_one_format(examples: list, source: str) -> None:
    """Refuse a source that mixes pairs and unpaired examples, naming the first odd row."""
    if not examples:
        return
    kind = type(examples[0])
    for i, ex in enumerate(examples):
        if type(ex) is not kind:
            first, other = ("unpaired", "a pair") if kind is UnpairedExample else ("paired", "an unpaired example")
            raise DataError(f"{source}: row {i} is {other} but row 0 is {first}; a data source must hold one format")


def is_unpaired(examples: list) -> bool:
    return bool(examples) and isinstance(examples[0], UnpairedExample)


def labels_of(examples: list[UnpairedExample]) -> list[bool]:
    return [ex.label for ex in examples]


class UnpairedTokenizeReport(TokenizeReport):
    def describe(self, source: str) -> str:
        return super().describe(source).replace(" pairs kept", " examples kept")


def tokenize_unpaired(
    pair_tok: PairTokenizer, examples: list[UnpairedExample], source: str
) -> tuple[list[TokenizedExample], TokenizeReport]:
    """Tokenize with PairTokenizer's rendering and length rule (see the module docstring)."""
    report = UnpairedTokenizeReport()
    out = []
    for ex in examples:
        t = pair_tok(Pair(ex.prompt, ex.completion, ex.completion), report)
        if t is not None:
            out.append(TokenizedExample(t.prompt, t.chosen, ex.label))
    if not out:
        raise DataError(report.nothing_fits(source, len(examples), pair_tok.max_length, "examples"))
    return out, report


def tokenize_examples(pair_tok: PairTokenizer, examples: list, source: str) -> tuple[list, TokenizeReport]:
    """Training pairs → TokenizedPair (PairTokenizer.tokenize_training); unpaired examples → TokenizedExample."""
    if is_unpaired(examples):
        return tokenize_unpaired(pair_tok, examples, source)
    return pair_tok.tokenize_training(examples, source)
