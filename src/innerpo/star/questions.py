"""Questions for STaR: one schema, read from every supported source by one string.

A `Question` (innerpo.star.schema) has the question text, its lettered options (none
for free-form numeric answers), the gold answer (an option letter, or a number written
canonically), a language and a subject. Sources (`--star.dataset`):

- `synthetic` (default): the built-in addition task (innerpo.star.synthetic), offline;
- an MMLU directory (`<dir>/<split>/<subject>_<split>.csv`, no header,
  `question,A,B,C,D,answer`), every subject or those of `subjects`;
- an MMMLU CSV file (header row `,Question,A,B,C,D,Answer,Subject`, localized text; the
  language is read from a name like `mmlu_YO-NG.csv`, else `language`);
- a CommonsenseQA JSONL file (`question.stem`, `question.choices`, `answerKey`);
- a GSM8K JSONL file (`question`, `answer` ending in `#### <number>`);
- a directory holding `<split>_rand_split.jsonl` or `<split>.jsonl` (the STaR layout);
- anything else: a Hugging Face dataset id (`name` or `name:config`), rows read with the
  same parser (cais/mmlu, openai/MMMLU, gsm8k and commonsense_qa column layouts).

A malformed row raises DataError naming the file and row; a gold answer that is not one
of the options is an error too.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

from innerpo.errors import DataError
from innerpo.star import synthetic
from innerpo.star.schema import LETTERS, Question


def canonical_number(text: str) -> str | None:
    """'1,234.50' → '1234.5', '$7' → '7', '-3.0' → '-3'; None when `text` is not a number."""
    cleaned = text.strip().replace(",", "").replace("$", "").rstrip(".")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return str(int(value)) if value == int(value) else repr(value)


def multiple_choice(
    qid: str, question: Any, options: list[Any], answer: Any, where: str, language: str = "en", subject: str = ""
) -> Question:
    """Validate one multiple-choice row: text present, options non-empty, answer a letter of them."""
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{where}: the question is empty or not text")
    if len(options) < 2 or len(options) > len(LETTERS):
        raise DataError(f"{where}: expected 2 to {len(LETTERS)} options, got {len(options)}")
    opts = []
    for label, opt in zip(LETTERS, options):
        if opt is None or (isinstance(opt, str) and not opt.strip()):
            raise DataError(f"{where}: option {label} is empty")
        opts.append(str(opt).strip())
    if isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < len(opts):
        answer = LETTERS[answer]  # hub layouts with an integer answer index (cais/mmlu)
    gold = str(answer).strip().upper() if answer is not None else ""
    if gold not in LETTERS[: len(opts)] or not gold:
        raise DataError(f"{where}: gold answer {answer!r} is not one of the options {', '.join(LETTERS[: len(opts)])}")
    return Question(qid, question.strip(), tuple(opts), gold, language, subject)


def numeric(qid: str, question: Any, answer: Any, where: str, language: str = "en", subject: str = "") -> Question:
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{where}: the question is empty or not text")
    gold = canonical_number(str(answer)) if answer is not None else None
    if gold is None:
        raise DataError(f"{where}: gold answer {answer!r} is not a number")
    return Question(qid, question.strip(), (), gold, language, subject)


def parse_row(row: Any, where: str, qid: str, language: str = "en", subject: str = "") -> Question:
    """One JSON/hub row in any of the known layouts, told apart by its columns."""
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected an object, got {type(row).__name__}")
    if "answerKey" in row:  # CommonsenseQA: {"question": {"stem", "choices": [{"label","text"}]}, "answerKey"}
        q = row.get("question")
        if isinstance(q, dict):  # the STaR/AllenAI JSONL layout
            stem, choices = q.get("stem"), q.get("choices")
            labels = (
                [c.get("label") for c in choices]
                if isinstance(choices, list) and all(isinstance(c, dict) for c in choices)
                else None
            )
            texts = [c.get("text") for c in choices] if labels else None
        else:  # the hub layout: question, choices {"label": [...], "text": [...]}
            stem, choices = q, row.get("choices")
            labels = choices.get("label") if isinstance(choices, dict) else None
            texts = choices.get("text") if isinstance(choices, dict) else None
        if not labels or not texts or len(labels) != len(texts):
            raise DataError(f"{where}: 'choices' must be a list of options with 'label' and 'text'")
        if list(labels) != list(LETTERS[: len(labels)]):
            raise DataError(f"{where}: option labels {labels} are not A, B, C, ... in order")
        concept = str(q.get("question_concept", "")) if isinstance(q, dict) else ""
        return multiple_choice(
            str(row.get("id", qid)), stem, list(texts), row["answerKey"], where, language, subject or concept
        )
    if "Question" in row and "Answer" in row:  # openai/MMMLU
        options = [row.get(k) for k in "ABCD"]
        return multiple_choice(
            qid, row["Question"], options, row["Answer"], where, language, str(row.get("Subject") or subject)
        )
    if "choices" in row and "answer" in row and isinstance(row["choices"], list):  # cais/mmlu
        return multiple_choice(
            qid, row.get("question"), row["choices"], row["answer"], where, language, str(row.get("subject") or subject)
        )
    if "question" in row and "answer" in row and isinstance(row["answer"], str) and "####" in row["answer"]:  # GSM8K
        return numeric(qid, row["question"], row["answer"].rsplit("####", 1)[1], where, language, subject)
    if "question" in row and "answer" in row:  # plain: question, options (optional), answer
        options = row.get("options") or []
        if options:
            return multiple_choice(
                str(row.get("qid", qid)),
                row["question"],
                list(options),
                row["answer"],
                where,
                row.get("language", language),
                str(row.get("subject", subject)),
            )
        return numeric(
            str(row.get("qid", qid)),
            row["question"],
            row["answer"],
            where,
            row.get("language", language),
            str(row.get("subject", subject)),
        )
    raise DataError(
        f"{where}: unknown row layout (columns: {', '.join(sorted(map(str, row)))}); expected CommonsenseQA, "
        "GSM8K, MMLU/MMMLU or question/options/answer"
    )


def read_jsonl(path: Path, language: str = "en") -> list[Question]:
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        where = f"{path}, line {i + 1}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{where}: not valid JSON ({e.msg})") from None
        out.append(parse_row(row, where, f"{path.stem}-{i}", language))
    return out


def read_mmlu_csv(path: Path, subject: str, language: str = "en") -> list[Question]:
    """Hendrycks MMLU: no header, `question,A,B,C,D,answer`."""
    out = []
    with path.open(encoding="utf-8", newline="") as f:
        for i, row in enumerate(csv.reader(f)):
            where = f"{path}, row {i + 1}"
            if len(row) != 6:
                raise DataError(f"{where}: expected 6 fields (question,A,B,C,D,answer), got {len(row)}")
            out.append(multiple_choice(f"{subject}-{i}", row[0], row[1:5], row[5], where, language, subject))
    return out


_MMMLU_LANG = re.compile(r"mmlu_([A-Za-z]{2}[-_][A-Za-z]{2})$")


def read_mmmlu_csv(path: Path, language: str = "en") -> list[Question]:
    """OpenAI MMMLU: a header row `,Question,A,B,C,D,Answer,Subject` (first column an index)."""
    match = _MMMLU_LANG.search(path.stem)
    lang = match.group(1).upper().replace("-", "_") if match else language
    out = []
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = {"Question", "A", "B", "C", "D", "Answer"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(f"{path}, row 1 (header): missing column(s) {', '.join(sorted(missing))}")
        for i, row in enumerate(reader):
            where = f"{path}, row {i + 2}"
            if None in row or any(row.get(k) is None for k in ("Question", "A", "B", "C", "D", "Answer")):
                raise DataError(f"{where}: expected {len(reader.fieldnames)} fields as in the header")
            out.append(
                multiple_choice(
                    f"{path.stem}-{i}",
                    row["Question"],
                    [row[k] for k in "ABCD"],
                    row["Answer"],
                    where,
                    lang,
                    row.get("Subject") or "",
                )
            )
    return out


def _is_mmmlu_csv(path: Path) -> bool:
    with path.open(encoding="utf-8", newline="") as f:
        header = next(csv.reader(f), [])
    return "Question" in header and "Answer" in header


def load_questions(
    spec: str, split: str, seed: int = 0, n: int | None = None, subjects: list[str] | None = None, language: str = "en"
) -> list[Question]:
    """The questions of `spec`'s `split` (see the module docstring), in source order."""
    if spec == "synthetic" or spec.startswith("synthetic:"):
        return synthetic.questions(split, n, seed, spec.partition(":")[2] or synthetic.DEFAULT_LEVEL)
    path = Path(spec)
    if path.is_dir():
        if (path / split).is_dir():  # MMLU layout
            files = sorted((path / split).glob(f"*_{split}.csv"))
            names = {f.name[: -len(f"_{split}.csv")]: f for f in files}
            wanted = subjects or sorted(names)
            unknown = [s for s in wanted if s not in names]
            if unknown:
                raise DataError(
                    f"{path / split}: no subject(s) {', '.join(unknown)} (has {len(names)}: {', '.join(sorted(names)[:8])}, ...)"
                )
            return [q for s in wanted for q in read_mmlu_csv(names[s], s, language)]
        for name in (f"{split}_rand_split.jsonl", f"{split}.jsonl"):
            if (path / name).is_file():
                return read_jsonl(path / name, language)
        raise DataError(
            f"{path}: no split {split!r} (expected {split}/ with MMLU CSVs, {split}_rand_split.jsonl or {split}.jsonl)"
        )
    if path.is_file():
        if path.suffix == ".jsonl":
            return read_jsonl(path, language)
        if path.suffix == ".csv":
            return read_mmmlu_csv(path, language) if _is_mmmlu_csv(path) else read_mmlu_csv(path, path.stem, language)
        raise DataError(f"{path}: unsupported question file type {path.suffix!r}; use .jsonl or .csv")
    if spec.endswith((".jsonl", ".csv")) or spec.startswith((".", "/")):
        raise DataError(f"--star.dataset: question source not found: {spec}")
    return _load_hub(spec, split, language)


def _load_hub(spec: str, split: str, language: str) -> list[Question]:
    import datasets

    name, _, config = spec.partition(":")
    if language == "en" and re.fullmatch(r"[A-Za-z]{2}[-_][A-Za-z]{2}", config):  # openai/MMMLU:YO_NG
        language = config.upper().replace("-", "_")
    ds = datasets.load_dataset(name, config or None, split=split)
    return [
        parse_row(dict(row), f"{spec} ({split}), row {i}", f"{name}-{split}-{i}", language) for i, row in enumerate(ds)
    ]
