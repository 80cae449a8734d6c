"""Read preference pairs from any supported source, named by one string.

- `synthetic` or `synthetic:<shift>`: the built-in suite (in_domain when no shift);
- `genies:<name>`: a GENIES distribution, from `genies_dir` or else the hub;
- a path to a .json / .jsonl / .parquet file with prompt/chosen/rejected columns
  (the split is ignored: a file is one split);
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
from innerpo.data.pairs import DataError, Pair, parse_pair, read_json_list
from innerpo.data.unpaired import UnpairedExample, check_one_format, parse_example, parse_pair_only

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
        rows = synthetic.generate(shift, split, SYNTHETIC_SIZE[split], seed=SYNTHETIC_SEED, test_size=SYNTHETIC_SIZE["test"])
        return [parse_pair(r, f"{spec} ({split}), row {i}") for i, r in enumerate(rows)]
    if spec.startswith("genies:"):
        name = spec.partition(":")[2]
        root = genies_dir or default_genies_dir()
        if split in genies.CARVED_SPLITS:  # validation / fit: carved out of train (see innerpo.data.genies)
            return genies.carve(genies.load_local(root, name, "train") if root else genies.load_hub(name, "train"), split)
        return genies.load_local(root, name, split) if root else genies.load_hub(name, split)
    path = Path(spec)
    if path.is_file():
        return load_file(path, parse)
    if path.is_dir():
        return _load_saved_dataset(path, split, parse)
    if spec.endswith((".json", ".jsonl", ".parquet")) or (os.sep in spec and not _looks_like_hub_id(spec)):
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
    raise DataError(f"{path}: unsupported file type {suffix!r}; use .json, .jsonl or .parquet")


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
