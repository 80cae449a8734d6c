"""How a component declares the options it reads.

Every loss, hidden term, transform and projection that takes settings declares them in
one place: a small dataclass next to its code (``Params``), one field per option, each
with a docstring (its `--help` text). The method's option set (``MethodConfig``, whose
fields are the `--method.<name>` flags and YAML keys) is assembled from those
declarations (:mod:`innerpo.methods.config`), and so is the refusal of an option the
chosen method does not read (:mod:`innerpo.methods.reads`).

Options several components share (``beta``, ``label_smoothing``, ``trust_region``) are
declared once, in a small dataclass each reader inherits, so they cannot drift apart.

An option a component reads only under a condition (``trust_region_mode`` only with a
``trust_region``) is declared with :func:`option`'s ``read_when``: the text the refusal
prints; the component's ``reads`` says when.
"""

from __future__ import annotations

import dataclasses
from typing import Any

READ_WHEN = "read_when"


def option(default: Any = dataclasses.MISSING, *, factory=None, read_when: str | None = None):
    """A dataclass field for an option; `read_when` says under which setting it is read."""
    metadata = {READ_WHEN: read_when} if read_when else {}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass
class NoParams:
    """A component without options."""


def names(params_cls: type) -> set[str]:
    """The option names a Params dataclass declares."""
    return {f.name for f in dataclasses.fields(params_cls)}


def read_when(params_cls: type, name: str) -> str | None:
    """The condition under which `name` is read, as declared (None: always)."""
    for f in dataclasses.fields(params_cls):
        if f.name == name:
            return f.metadata.get(READ_WHEN)
    return None


def take(params_cls: type, values) -> Any:
    """An instance of `params_cls` with each field read from the same-named attribute of `values`."""
    return params_cls(**{name: getattr(values, name) for name in names(params_cls)})
