"""Read preference pairs from any supported source, named by one string.

- `synthetic` or `synthetic:<shift>`: the built-in suite (in_domain when no shift);
- `genies:<name>`: a GENIES distribution, from `genies_dir` or else the hub;
- `ethics:<config>`, `medical`: the research notes' moral_transfer and orthogonal shifts,
  from the hub (innerpo.data.research_sets);
- a path to a .json / .jsonl / .parquet / .csv file with prompt/chosen/rejected columns
  (the split is ignored: a file is one split); rows without `prompt` whose chosen and
  rejected are whole conversations are split by their shared opening turns (TRL's
  implicit prompt, innerpo.data.implicit_prompt);
- a directory written by `datasets.Dataset.save_to_disk` / `DatasetDict.save_to_disk`;
- anything else is taken as a Hugging Face hub dataset id, loaded with `datasets`.

`load_pairs` reads preference pairs only. `load_examples` also accepts files and
datasets of unpaired prompt/completion/label rows (TRL's unpaired format, for KTO; see
innerpo.data.unpaired), telling the format from each row's columns.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from innerpo.data import genies, synthetic
from innerpo.data.pairs import Pair, parse_pair, read_json_list
from innerpo.data.research_sets import hub_location, is_research_spec
from innerpo.data.unpaired import UnpairedExample, check_one_format, parse_example, parse_pair_only
from innerpo.errors import DataError

# The synthetic suite is generated with a fixed data seed so that every training seed
# and every method sees the same pairs.
SYNTHETIC_SIZE = {"train": 2000, "test": 200, "validation": 100}
SYNTHETIC_SEED = 0


def default_genies_dir() -> str | None:
    return os.environ.get("INNERPO_GENIES_DIR")


def load_pairs(spec: str, split: str = "train", genies_dir: str | None = None) -> list[Pair]:
    """All valid pairs of `spec`'s `split`; malformed rows raise DataError naming the row."""
    return _load(spec, split, genies_dir, parse_pair_only)


def load_examples(spec: str, split: str = "train", genies_dir: str | None = None) -> list[Pair] | list[UnpairedExample]:
    """Training data: pairs, or unpaired prompt/completion/label examples (one format per source)."""
    examples = _load(spec, split, genies_dir, parse_example)
    check_one_format(examples, f"{spec} ({split})")
    return examples


def _load(spec: str, split: str, genies_dir: str | None, parse) -> list:
    if spec == "synthetic" or spec.startswith("synthetic:"):
        shift = spec.partition(":")[2] or "in_domain"
        if split not in SYNTHETIC_SIZE:
            raise DataError(f"synthetic suite has splits {sorted(SYNTHETIC_SIZE)}, not {split!r}")
        rows = synthetic.generate(
            shift, split, SYNTHETIC_SIZE[split], seed=SYNTHETIC_SEED, test_size=SYNTHETIC_SIZE["test"]
        )
        return [parse_pair(r, f"{spec} ({split}), row {i}") for i, r in enumerate(rows)]
    if is_research_spec(spec):  # ethics:<config>, medical (innerpo.data.research_sets)
        hub_id, config, split = hub_location(spec, split)
        return _load_hub_dataset(f"{hub_id}:{config}", split, parse)
    if spec.startswith("genies:"):
        name = spec.partition(":")[2]
        root = genies_dir or default_genies_dir()
        if split in genies.CARVED_SPLITS:  # validation / fit: carved out of train (see innerpo.data.genies)
            return genies.carve(
                genies.load_local(root, name, "train") if root else genies.load_hub(name, "train"), split
            )
        return genies.load_local(root, name, split) if root else genies.load_hub(name, split)
    path = Path(spec)
    if path.is_file():
        return load_file(path, parse)
    if path.is_dir():
        return _load_saved_dataset(path, split, parse)
    if spec.endswith((".json", ".jsonl", ".parquet", ".csv")) or (os.sep in spec and not _looks_like_hub_id(spec)):
        raise FileNotFoundError(f"data file not found: {spec}")
    return _load_hub_dataset(spec, split, parse)


def _looks_like_hub_id(spec: str) -> bool:
    return spec.count("/") == 1 and not spec.startswith((".", "/"))


def load_file(path: Path, parse=parse_pair_only) -> list[Pair]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = []
        for i, line in enumerate(path.read_text().splitlines()):
            if not line.strip():
                continue
            try:
                rows.append((i, json.loads(line)))
            except json.JSONDecodeError as e:
                raise DataError(f"{path}, line {i + 1}: not valid JSON ({e.msg})") from None
        return [parse(row, f"{path}, line {i + 1}") for i, row in rows]
    if suffix == ".json":
        return [parse(row, f"{path}, row {i}") for i, row in enumerate(read_json_list(path))]
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as e:  # pyarrow raises several types for unreadable files
            raise DataError(f"{path}: cannot read as Parquet ({e})") from None
        return [parse(row, f"{path}, row {i}") for i, row in enumerate(rows)]
    if suffix == ".csv":
        return [parse(row, where) for where, row in read_csv_rows(path)]
    raise DataError(f"{path}: unsupported file type {suffix!r}; use .json, .jsonl, .parquet or .csv")


def read_csv_rows(path: Path) -> list[tuple[str, dict]]:
    """(where, row) per CSV data row; a header row names the columns, every value is text.

    The standard library's csv reader in strict mode: a row with more or fewer fields than
    the header, or an unclosed quote, is an error naming the line (pandas would silently
    turn surplus fields into an index column).
    """
    import csv

    out = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f, strict=True)
        try:
            header = next(reader, None)
            if not header:
                raise DataError(f"{path}: empty CSV; expected a header row such as prompt,chosen,rejected")
            for row in reader:
                where = f"{path}, line {reader.line_num}"
                if len(row) != len(header):
                    raise DataError(
                        f"{where}: {len(row)} fields, but the header has {len(header)} ({','.join(header)})"
                    )
                out.append((where, dict(zip(header, row))))
        except csv.Error as e:
            raise DataError(f"{path}, line {reader.line_num}: cannot read as CSV ({e})") from None
        except UnicodeDecodeError as e:
            raise DataError(f"{path}: not UTF-8 text ({e})") from None
    return out


def _rows_to_pairs(ds, where: str, parse=parse_pair_only) -> list[Pair]:
    return [parse(row, f"{where}, row {i}") for i, row in enumerate(ds)]


def _load_saved_dataset(path: Path, split: str, parse=parse_pair_only) -> list[Pair]:
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except FileNotFoundError:
        raise DataError(f"{path}: a directory, but not one written by datasets' save_to_disk") from None
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise DataError(f"{path}: no split {split!r} (has {', '.join(ds)})")
        ds = ds[split]
    return _rows_to_pairs(ds, f"{path} ({split})", parse)


def _load_hub_dataset(spec: str, split: str, parse=parse_pair_only) -> list[Pair]:
    import datasets

    name, _, config = spec.partition(":")
    ds = datasets.load_dataset(name, config or None, split=split)
    return _rows_to_pairs(ds, f"{spec} ({split})", parse)
