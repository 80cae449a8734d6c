"""The one build path: a method config (and the training rows) → the method the loop trains.

Paired data: gradient projection (`--method.projection`), else the hidden-state method
(`--method.hidden_loss`), else plain output-level losses. Unpaired prompt/completion/label
rows: SFT when the method is the `sft` loss alone (every row must be desirable), else KTO
(the `kto` loss alone, with both labels present). Every class returned satisfies
:class:`innerpo.methods.base.Method`. A bad value, a combination the components refuse,
or an option set away from the preset's value that the method does not read
(innerpo.methods.reads) raises ConfigError; unusable rows raise DataError.
"""

from __future__ import annotations

from innerpo.data.unpaired import is_unpaired
from innerpo.errors import ConfigError, InputError
from innerpo.losses.base import PreferenceLoss
from innerpo.losses.combined import CombinedLoss
from innerpo.losses.kto import check_kto_labels
from innerpo.methods.base import Method, OutputMethod
from innerpo.methods.hidden import HiddenMethod, HiddenParams
from innerpo.methods.kto import KTOUnpairedMethod
from innerpo.methods.presets import PRESETS, preset_method
from innerpo.methods.projection import ProjectionParams
from innerpo.methods.reads import check_options_read
from innerpo.methods.registry import PROJECTIONS, entry
from innerpo.methods.sft_unpaired import SFTUnpairedMethod, check_sft_rows
from innerpo.methods.terms import method_terms
from innerpo.params import take


def build_loss(name: str, cfg) -> PreferenceLoss:
    """One component by name, configured from `cfg`."""
    return entry(name).build(cfg)


def build_objective(cfg) -> CombinedLoss:
    """The method's whole objective: its terms summed with their weights."""
    terms = method_terms(cfg)
    return CombinedLoss({name: build_loss(name, cfg) for name, _ in terms}, [w for _, w in terms])


def build_method(cfg, preset: str | None = None, examples: list | None = None) -> Method:
    """The method `cfg` describes, its settings checked.

    preset: the preset `cfg` came from (options equal to its values are not the user's
    doing); default: the declared defaults. examples: the training rows, when known;
    unpaired rows (prompt/completion/label) select the unpaired methods.
    """
    try:
        method = _method(cfg, examples)
    except InputError:
        raise
    except ValueError as e:  # a component's own validation: a configuration error too
        raise ConfigError(str(e)) from e
    check_options_read(cfg, preset_method(preset) if preset in PRESETS else None)
    return method


def _method(cfg, examples: list | None) -> Method:
    loss = build_objective(cfg)
    if examples and is_unpaired(examples):
        names = [name for name, _ in method_terms(cfg)]
        if names == ["sft"]:
            check_sft_rows(examples)
            return SFTUnpairedMethod(loss)
        if cfg.hidden_loss != "none" or names != ["kto"]:
            raise ValueError(
                "the training data holds unpaired prompt/completion/label rows, which only the kto loss "
                f"trains on (this method: {' + '.join(names) or 'none'}); use `innerpo train kto` with no other loss, or give "
                "prompt/chosen/rejected pairs"
            )
        check_kto_labels([bool(ex.label) for ex in examples])
        return KTOUnpairedMethod(loss.components["kto"], loss.weights[0])
    if cfg.projection != "none":
        return PROJECTIONS[cfg.projection](loss, take(ProjectionParams, cfg))
    if cfg.hidden_loss != "none":
        return HiddenMethod(loss, take(HiddenParams, cfg), cfg.hidden_loss, entry(cfg.hidden_loss).params(cfg))
    return OutputMethod(loss)
