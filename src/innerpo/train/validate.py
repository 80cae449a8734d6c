"""Check everything a run reads before anything is written.

`validate_train(cfg)` runs at the top of `train()`, before the run directory exists:
settings (types, ranges, NaN), the method and its hyperparameters, the layer spec
against the model's depth (read from its config, no weights loaded), every row of the
training data and that some of it fits the length limit, and the eval suite with every
row of every shift (innerpo.eval.suites). `validate_suite` is also what `innerpo eval`
runs first. Each failure is one InputError naming the file, row, field or flag and what
was expected; the command line prints it and exits with code 2 (innerpo.cli).

Data is read here and again by the run: reading is cheap next to training, and this
keeps the loop's own code unchanged.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal

from innerpo.data.config import DataConfig
from innerpo.data.pairs import Pair
from innerpo.data.sources import load_examples, load_pairs
from innerpo.data.tokenize import PairTokenizer, TokenizeReport, distinct_pairs
from innerpo.data.unpaired import is_unpaired
from innerpo.errors import ConfigError, DataError, InputError
from innerpo.eval.config import EvalConfig
from innerpo.methods.build import build_method
from innerpo.train.config import TrainConfig

# (section, field) -> (check, what is expected). Fields not listed are only type-checked; the
# method's options are range-checked by the components that read them (innerpo.methods.build).
RANGES: dict[tuple[str, str], tuple[typing.Callable[[Any], bool], str]] = {
    ("model", "lora_r"): (lambda v: v >= 1, ">= 1"),
    ("model", "lora_alpha"): (lambda v: v > 0, "> 0"),
    ("model", "lora_dropout"): (lambda v: 0 <= v < 1, "in [0, 1)"),
    ("data", "max_train_pairs"): (lambda v: v >= 1, ">= 1 (or None for all)"),
    ("data", "batch_size"): (lambda v: v >= 1, ">= 1"),
    ("data", "max_length"): (lambda v: v > 8, "> 8 (the prompt keeps at least 8 tokens)"),
    ("training", "lr"): (lambda v: v >= 0, ">= 0"),
    ("training", "weight_decay"): (lambda v: v >= 0, ">= 0"),
    ("training", "warmup_ratio"): (lambda v: 0 <= v <= 1, "in [0, 1]"),
    ("training", "max_grad_norm"): (lambda v: v >= 0, ">= 0 (0 disables clipping)"),
    ("training", "grad_accum"): (lambda v: v >= 1, ">= 1"),
    ("training", "epochs"): (lambda v: v > 0, "> 0"),
    ("training", "max_steps"): (lambda v: v >= 1, ">= 1 (or None)"),
    ("training", "log_every"): (lambda v: v >= 1, ">= 1"),
    ("training", "eval_every"): (lambda v: v >= 0, ">= 0 (0 disables it)"),
    ("training", "eval_pairs"): (lambda v: v >= 1, ">= 1"),
    ("training", "save_every"): (lambda v: v >= 0, ">= 0 (0: no periodic checkpoints)"),
    ("training", "keep_last"): (lambda v: v >= 1, ">= 1 (or None to keep all)"),
    ("training", "warmup_steps"): (lambda v: v >= 0, ">= 0 (or None: warmup_ratio)"),
    ("eval", "max_pairs"): (lambda v: v >= 1, ">= 1 (or None for all)"),
    ("eval", "batch_size"): (lambda v: v >= 1, ">= 1"),
    ("eval", "min_pairs"): (lambda v: v >= 0, ">= 0"),
    ("eval", "samples_per_shift"): (lambda v: v >= 0, ">= 0 (0: no samples)"),
    ("eval", "max_new_tokens"): (lambda v: v >= 1, ">= 1"),
}


def validate_train(cfg: TrainConfig) -> None:
    """Raise InputError for the first problem found in cfg, its data or its eval suite."""
    check_settings(cfg)
    from innerpo.models.backends import check_model_options

    check_model_options(cfg.model)  # kernels and quantization this machine cannot run
    out = Path(cfg.output_dir) if cfg.output_dir else None
    if out is not None and (out / "adapter").exists():
        raise ConfigError(f"--output_dir={out} already holds a trained adapter; choose another --output_dir")
    validate_method(cfg)
    from innerpo.models.load import load_tokenizer

    pair_tok = _inputs(
        lambda: PairTokenizer(
            load_tokenizer(cfg.model), cfg.data.max_length, cfg.data.truncation, cfg.data.chat_template
        ),
        "--model.base_model",
    )
    source = f"training data {cfg.data.dataset} ({cfg.data.split})"
    examples = _inputs(lambda: load_examples(cfg.data.dataset, cfg.data.split, cfg.data.genies_dir), "--data.dataset")
    if not examples:
        raise DataError(f"{source}: no rows; expected prompt/chosen/rejected pairs")
    if not is_unpaired(examples):
        examples = distinct_pairs(examples, source)  # the loop drops pairs with identical completions too
    if is_unpaired(
        examples
    ):  # prompt/completion/label rows: the method must train on them (KTO with both labels, or SFT)
        _inputs(lambda: build_method(cfg.method, cfg.method_name, examples), source)
    _some_pair_fits(pair_tok, examples, source)
    validate_suite(cfg.eval, cfg.data, pair_tok)


def validate_suite(eval_cfg: EvalConfig, data: DataConfig, pair_tok: PairTokenizer | None = None) -> None:
    """The suite exists and parses, and every shift's source loads, is non-empty and (with
    pair_tok) has a pair that fits the length limit."""
    from innerpo.eval.suites import get_suite

    suite = _inputs(lambda: get_suite(eval_cfg.suite, data.dataset), "--eval.suite")
    for name, shift in suite.shifts.items():
        where = f"eval suite {suite.name!r}, shift {name!r} ({shift.dataset}, {shift.split})"
        pairs = _inputs(lambda shift=shift: load_pairs(shift.dataset, shift.split, data.genies_dir), where)
        if not pairs:
            raise DataError(f"{where}: no pairs; expected prompt/chosen/rejected rows")
        if pair_tok is not None:
            _some_pair_fits(pair_tok, pairs, f"shift {name!r} ({shift.dataset}, {shift.split})")


def _some_pair_fits(pair_tok: PairTokenizer, examples: list, source: str) -> None:
    """Tokenize until one row fits the length rule (cheap when data is fine); else the
    error naming the source and the max_length that would fit its shortest row."""
    report = TokenizeReport()
    for ex in examples:
        # unpaired: as tokenize_unpaired does
        pair = ex if isinstance(ex, Pair) else Pair(ex.prompt, ex.completion, ex.completion)
        if _inputs(lambda pair=pair: pair_tok(pair, report), source) is not None:
            return
    raise DataError(
        report.nothing_fits(
            source,
            len(examples),
            pair_tok.max_length,
            "pairs" if examples and isinstance(examples[0], Pair) else "examples",
        )
    )


def _inputs(load, where: str):
    """Run a loader; its own errors (file not found, bad value) become InputErrors naming `where`."""
    try:
        return load()
    except InputError:
        raise
    except (FileNotFoundError, NotADirectoryError, ValueError) as e:
        raise InputError(f"{where}: {e}") from None
    except OSError as e:  # e.g. a hub id that is neither local nor reachable
        raise InputError(f"{where}: cannot be read ({e})") from None


def validate_method(cfg: TrainConfig) -> None:
    """The method builds from its settings (every refusal of innerpo.methods.build), and a
    hidden-state method's layer spec (and module pattern) fits the model; read from the
    model's config, no weights loaded."""
    _inputs(lambda: build_method(cfg.method, cfg.method_name), f"method {cfg.method_name}")
    if cfg.method.hidden_loss != "none":
        from innerpo.inner.layers import parse_layers
        from innerpo.models.load import num_layers

        n = _inputs(lambda: num_layers(cfg.model), "--model.base_model")
        _inputs(
            lambda: parse_layers(cfg.method.layers, n),
            f"--method.layers={cfg.method.layers!r} ({cfg.model.base_model} has {n} layers)",
        )
        if (
            cfg.method.collect == "modules"
        ):  # the pattern must match in every collected block, before anything is written
            from innerpo.methods.hidden import check_module_pattern

            _inputs(
                lambda: check_module_pattern(cfg.model, parse_layers(cfg.method.layers, n), cfg.method.collect_modules),
                f"--model.base_model={cfg.model.base_model}",
            )


def check_eval_settings(eval_cfg: EvalConfig) -> None:
    """check_settings for the evaluation settings alone (`innerpo eval`)."""
    _check_section("eval", eval_cfg)


def check_settings(cfg: TrainConfig) -> None:
    """Every setting has its declared type, is finite, and lies in its range (RANGES)."""
    for section in ("model", "data", "training", "eval", "method"):
        _check_section(section, getattr(cfg, section))


def _check_section(section: str, sub) -> None:
    hints = typing.get_type_hints(type(sub))
    for f in dataclasses.fields(sub):
        value = getattr(sub, f.name)
        flag = f"--{section}.{f.name}"
        if not _has_type(value, hints[f.name]):
            hint = " (YAML reads 1e-4 as text: write 1.0e-4)" if isinstance(value, str) and _numeric(value) else ""
            raise ConfigError(
                f"{flag}={value!r}: expected {_describe(hints[f.name])}, got {type(value).__name__}{hint}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{flag}={value}: expected a finite number")
        rule = RANGES.get((section, f.name))
        if rule is not None and value is not None and not rule[0](value):
            raise ConfigError(f"{flag}={value}: expected {rule[1]}")


def _numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _has_type(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return value in args
    if origin in (typing.Union, types.UnionType):
        return any(_has_type(value, a) for a in args)
    if hint is type(None):
        return value is None
    if origin is list:
        return isinstance(value, list) and all(_has_type(v, args[0]) for v in value)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return "one of " + ", ".join(map(repr, args))
    if args:
        return " or ".join(_describe(a) for a in args) if origin is not list else f"a list of {_describe(args[0])}"
    return {float: "a number", int: "an integer", str: "a string", bool: "true or false", type(None): "None"}.get(
        hint, getattr(hint, "__name__", str(hint))
    )
