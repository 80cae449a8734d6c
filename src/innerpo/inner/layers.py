"""The ``--method.layers`` grammar: which layers' hidden states a method collects.

A spec is a string (or a list of strings/ints, each parsed the same way) of
comma-separated pieces. With ``N = num_layers``:

==============  ==========================================================
``10``          layer 10
``-2``          layer N − 2 (negative indices count from the end)
``0.5``         a fraction of depth: layer floor(0.5 · N), capped at N − 1
                (so ``1.0`` is the last layer). A fraction has a decimal point.
``4:12``        layers 4, 5, …, 11 (Python slice: stop is exclusive)
``4:12:2``      layers 4, 6, 8, 10 (step a positive integer)
``0.25:0.75``   floor(0.25 · N) up to (excluding) floor(0.75 · N)
``-4:``         the last four layers; an omitted start is 0, an omitted stop is N
``5,10,-1``     a union of pieces
==============  ==========================================================

The result is the sorted list of unique indices in [0, N). What an index means (the
output of block i, or entry i of ``output_hidden_states``) is the caller's choice; the
caller passes the matching N. Pieces are matched by regular expressions, never
evaluated. Every error names the offending piece and lists the accepted forms.
"""

from __future__ import annotations

import math
import re

ACCEPTED_FORMS = (
    "accepted forms: an index '10', a negative index '-2', a fraction of depth '0.5', "
    "a range 'start:stop' or 'start:stop:step' ('4:12', '4:12:2', '0.25:0.75', '-4:'), "
    "or a comma-separated list of these ('5,10,-1')"
)

_INT = r"[+-]?\d+"
_FRAC = r"[+-]?(?:\d+\.\d*|\.\d+)"
_NUM = rf"(?:{_FRAC}|{_INT})"
_SINGLE = re.compile(rf"^({_NUM})$")
_RANGE = re.compile(rf"^({_NUM})?:({_NUM})?(?::({_INT}))?$")
_FRAC_RE = re.compile(rf"^{_FRAC}$")


class _PieceError(ValueError):
    pass


def _bound(text: str, n: int, *, is_stop: bool) -> int:
    """Resolve one index or fraction to an integer position in [0, n] (stop may equal n)."""
    if _FRAC_RE.match(text):
        f = float(text)
        if not 0.0 <= f <= 1.0:
            raise _PieceError(f"fraction {text} is outside [0, 1]")
        i = math.floor(f * n)
        return i if is_stop else min(i, n - 1)
    i = int(text)
    if i < 0:
        if i < -n:
            raise _PieceError(f"index {i} is out of range for {n} layers (lowest is {-n})")
        return n + i
    limit = n if is_stop else n - 1
    if i > limit:
        raise _PieceError(f"index {i} is out of range for {n} layers (valid: 0..{n - 1}, or -{n}..-1)")
    return i


def _parse_piece(piece: str, n: int) -> list[int]:
    m = _SINGLE.match(piece)
    if m:
        return [_bound(m.group(1), n, is_stop=False)]
    m = _RANGE.match(piece)
    if m:
        start_s, stop_s, step_s = m.groups()
        start = _bound(start_s, n, is_stop=False) if start_s is not None else 0
        stop = _bound(stop_s, n, is_stop=True) if stop_s is not None else n
        step = int(step_s) if step_s is not None else 1
        if step <= 0:
            raise _PieceError(f"step must be a positive integer, got {step}")
        out = list(range(start, stop, step))
        if not out:
            raise _PieceError(f"range selects no layers (start {start} ≥ stop {stop} for {n} layers)")
        return out
    raise _PieceError("not an index, fraction or range")


def parse_layers(spec: str | int | list[str | int] | tuple[str | int, ...], num_layers: int) -> list[int]:
    """Parse a layer spec into sorted unique indices in [0, num_layers).

    Raises ValueError (naming the bad piece and the accepted forms) on garbage, indices
    out of range, fractions outside [0, 1], empty ranges, non-positive steps or an empty spec.
    """
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers <= 0:
        raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
    if isinstance(spec, bool):
        raise ValueError(f"layer spec must be a string, an int or a list of them, got {spec!r}; {ACCEPTED_FORMS}")
    items = [spec] if isinstance(spec, (str, int)) else list(spec) if isinstance(spec, (list, tuple)) else None
    if items is None:
        raise ValueError(
            f"layer spec must be a string, an int or a list of them, got {type(spec).__name__}; {ACCEPTED_FORMS}"
        )
    if not items:
        raise ValueError(f"empty layer spec; {ACCEPTED_FORMS}")
    out: set[int] = set()
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise ValueError(f"bad layer spec piece {item!r} in {spec!r}: not a string or int; {ACCEPTED_FORMS}")
        pieces = str(item).split(",")
        for raw in pieces:
            piece = raw.strip()
            if not piece:
                raise ValueError(f"empty piece in layer spec {spec!r} (stray or doubled comma?); {ACCEPTED_FORMS}")
            try:
                out.update(_parse_piece(piece, num_layers))
            except _PieceError as e:
                raise ValueError(f"bad layer spec piece {piece!r} in {spec!r}: {e}; {ACCEPTED_FORMS}") from None
    return sorted(out)
