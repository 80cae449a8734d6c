"""The questions of a STaR run: training questions, the held-out `in_domain` set and the shifted eval sets.

- training and `in_domain` come from --star.dataset, disjoint: its train and eval splits,
  or, for a single file (no splits), num_eval_questions held out of it (else a fifth);
- each --star.eval_sets entry is a question source as --star.dataset takes, optionally
  `name=source`; an MMLU directory may name subjects as `DIR:subject1,subject2`. It is
  read from --star.eval_split (a single file: all its questions) and the held-out draw
  keeps num_eval_questions.
Every held-out draw is fixed by --star.eval_seed (not --star.seed), so the seeds of one
setting are scored on the same questions and can be compared question by question.
Names: `in_domain`, then the given name, else one derived from the source (`add2`, a
file's stem, the subjects); names must differ. A set equal to --star.dataset is skipped.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from innerpo.errors import ConfigError, DataError
from innerpo.star.config import StarConfig
from innerpo.star.questions import load_questions
from innerpo.star.schema import Question

IN_DOMAIN = "in_domain"
_NAME = re.compile(r"^([A-Za-z0-9_.+-]+)=(.+)$")


@dataclass(frozen=True)
class EvalSet:
    name: str
    source: str
    """The question source (a --star.dataset spec) without subjects."""
    subjects: tuple[str, ...] = ()


def parse_eval_sets(s: StarConfig) -> list[EvalSet]:
    """--star.eval_sets as EvalSets (names checked), the one equal to --star.dataset left out."""
    out: list[EvalSet] = []
    for entry in s.eval_sets:
        named = _NAME.match(entry)
        name, spec = (named.group(1), named.group(2)) if named else (None, entry)
        source, subjects = _split_subjects(spec)
        if _same_source(source, s.dataset) and tuple(subjects) == tuple(s.subjects):
            print(f"--star.eval_sets: {entry} is --star.dataset, scored as {IN_DOMAIN}")
            continue
        name = name or derived_name(source, subjects)
        if name in (IN_DOMAIN, *(e.name for e in out)):
            raise ConfigError(f"--star.eval_sets: two held-out sets are named {name!r}; name them as NAME=SOURCE")
        out.append(EvalSet(name, source, tuple(subjects)))
    return out


def derived_name(source: str, subjects: list[str]) -> str:
    """`synthetic:add2` → add2, `data/gsm8k_test.jsonl` → gsm8k_test, `mmlu:anatomy,virology` → anatomy+virology."""
    if subjects:
        return "+".join(subjects)
    if source == "synthetic":
        return "add1"
    if source.startswith("synthetic:"):
        return source.split(":", 1)[1]
    if Path(source).exists():
        return Path(source).stem
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", source.rsplit("/", 1)[-1])


def _split_subjects(spec: str) -> tuple[str, list[str]]:
    head, sep, tail = spec.rpartition(":")
    if sep and Path(head).is_dir() and tail:
        return head, [x for x in tail.split(",") if x]
    return spec, []


def _same_source(a: str, b: str) -> bool:
    def norm(x: str) -> str:
        return "synthetic:add1" if x == "synthetic" else str(Path(x).resolve()) if Path(x).exists() else x

    return norm(a) == norm(b)


def training_and_in_domain(s: StarConfig) -> tuple[list[Question], list[Question]]:
    """Training questions (shuffled by --star.seed) and the in_domain held-out ones (by
    --star.eval_seed), disjoint."""
    if Path(s.dataset).is_file():
        every = load_questions(s.dataset, s.train_split, s.seed, None, s.subjects, s.language)
        random.Random(s.eval_seed).shuffle(every)
        n_eval = s.num_eval_questions if s.num_eval_questions is not None else max(1, len(every) // 5)
        if n_eval >= len(every):
            raise DataError(
                f"{s.dataset}: {len(every)} questions leave none for training after {n_eval} held out; lower "
                "--star.num_eval_questions"
            )
        test, train = every[:n_eval], every[n_eval:]
    else:
        train = load_questions(s.dataset, s.train_split, s.seed, None, s.subjects, s.language)
        test = load_questions(s.dataset, s.eval_split, s.eval_seed, None, s.subjects, s.language)
        random.Random(s.eval_seed + 1).shuffle(test)
    random.Random(s.seed).shuffle(train)
    if not train or not test:
        raise DataError(f"{s.dataset}: no questions in split {s.train_split if not train else s.eval_split!r}")
    return train[: s.num_train_questions], test[: s.num_eval_questions]


def held_out(s: StarConfig, sets: list[EvalSet]) -> dict[str, list[Question]]:
    """The questions of every eval set (read now, so bad data stops the run before anything is written)."""
    out = {}
    for e in sets:
        split = s.train_split if Path(e.source).is_file() else s.eval_split
        # n: the built-in task then draws only the questions it needs (add3 has 810,000 pairs)
        questions = load_questions(e.source, split, s.eval_seed, s.num_eval_questions, list(e.subjects), s.language)
        if not questions:
            raise DataError(f"--star.eval_sets {e.name}: no questions in {e.source} ({split})")
        random.Random(s.eval_seed + 1).shuffle(questions)
        out[e.name] = questions[: s.num_eval_questions]
    return out
