"""Few-shot rationale prompts: exemplar files per task, rendering, hints and preambles.

A prompt is chat messages: a system message with the task's instruction (plus an
optional preamble such as "Think logically." and, for non-English questions, a
"reason in English" or "translate first" request), then the few-shot exemplars as
user/assistant turns, then the question. Models with a chat template see it through
the template; others see the contents joined by newlines (innerpo.data.tokenize renders
both ways, so generation and training read the same text). Training examples use the
same system message and question without the exemplars (the STaR paper fine-tunes on
question → rationale, without the few-shot prompt).

Exemplar files are YAML (`instruction`, `exemplars: [{question, options?, rationale}]`),
one per task kind in innerpo/star/exemplars/; `--star.exemplars=PATH` replaces them.

Rationalization hint (STaR, section 3.2: the answer is given as a hint): for multiple
choice the correct option is marked ` (CORRECT)` as in the STaR repository's
CommonsenseQA prompts; for numeric questions the line `(Hint: the answer is N.)` is
added. The hint is part of the prompt only; training data is built from the hint-free
prompt (innerpo.star.build).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from innerpo.errors import ConfigError, DataError
from innerpo.star.schema import LETTERS, Question

EXEMPLAR_DIR = Path(__file__).parent / "exemplars"
HINT_MARK = " (CORRECT)"
REASONING = {
    "native": "",
    "english": "Reason in English, whatever the language of the question.",
    "translate": "First translate the question and options into English, then reason in English.",
}


@dataclass(frozen=True)
class Exemplars:
    instruction: str
    shots: tuple[tuple[Question, str], ...]  # (question, rationale)


def default_exemplar_file(task: str) -> Path:
    return EXEMPLAR_DIR / f"{task}.yaml"


def task_kind(dataset: str, first: Question) -> str:
    """Which built-in exemplar file fits: `synthetic`, `multiple_choice` or `numeric`."""
    if dataset == "synthetic" or dataset.startswith("synthetic:"):
        return "synthetic"
    return "multiple_choice" if first.is_multiple_choice else "numeric"


def load_exemplars(path: str | Path) -> Exemplars:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--star.exemplars: file not found: {path}")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("instruction"), str)
        or not isinstance(data.get("exemplars"), list)
    ):
        raise DataError(f"{path}: expected keys 'instruction' (text) and 'exemplars' (a list)")
    shots = []
    for i, ex in enumerate(data["exemplars"]):
        where = f"{path}, exemplar {i + 1}"
        if (
            not isinstance(ex, dict)
            or not isinstance(ex.get("question"), str)
            or not isinstance(ex.get("rationale"), str)
        ):
            raise DataError(f"{where}: needs 'question' and 'rationale' (text) and optionally 'options' (a list)")
        options = tuple(str(o) for o in ex.get("options") or ())
        shots.append((Question(f"exemplar-{i}", ex["question"], options, "", "en"), ex["rationale"]))
    return Exemplars(data["instruction"], tuple(shots))


def render_question(q: Question, hint: bool = False) -> str:
    """The question and its lettered options; with `hint`, the gold answer is marked."""
    lines = [q.question]
    for label, opt in zip(LETTERS, q.options):
        mark = HINT_MARK if hint and label == q.answer else ""
        lines.append(f"({label}) {opt}{mark}")
    if hint and not q.options:
        lines.append(f"(Hint: the answer is {q.answer}.)")
    return "\n".join(lines)


def system_text(ex: Exemplars, preamble: str = "", reasoning: str = "native") -> str:
    if reasoning not in REASONING:
        raise ConfigError(f"--star.reasoning must be one of {', '.join(REASONING)}, got {reasoning!r}")
    return " ".join(part for part in (preamble.strip(), ex.instruction.strip(), REASONING[reasoning]) if part)


def messages(
    ex: Exemplars, q: Question, few_shot: int, hint: bool = False, preamble: str = "", reasoning: str = "native"
) -> list[dict[str, str]]:
    """Chat messages asking `q`, after the first `few_shot` exemplars."""
    out = [{"role": "system", "content": system_text(ex, preamble, reasoning)}]
    for shot, rationale in ex.shots[:few_shot]:
        out += [{"role": "user", "content": render_question(shot)}, {"role": "assistant", "content": rationale}]
    out.append({"role": "user", "content": render_question(q, hint)})
    return out


def prompt_ids(pair_tok, msgs: list[dict[str, str]]) -> list[int]:
    """Token ids of `msgs` as a prompt, rendered exactly as training renders prompts
    (PairTokenizer: chat template or plain text, BOS rule, left cut to max_length)."""
    from innerpo.data.pairs import Pair

    pair = Pair(tuple((m["role"], m["content"]) for m in msgs), ".", ".")
    tokenized = pair_tok(pair)
    if tokenized is None:
        raise DataError(f"a prompt does not fit in --data.max_length={pair_tok.max_length}; raise it")
    return list(tokenized.prompt)
