"""pyproject's filterwarnings: a deprecation that innerpo's own call causes fails the suite,
one inside a library does not."""

import warnings

import pytest
import torch
from transformers.utils.deprecation import deprecate_kwarg


@pytest.mark.parametrize("category", [DeprecationWarning, FutureWarning])
def test_a_deprecation_attributed_to_innerpo_is_an_error(category):
    with pytest.raises(category):
        warnings.warn_explicit("old API", category, "forward.py", 1, module="innerpo.models.forward")
    with warnings.catch_warnings(record=True) as seen:  # a library's own: reported, not an error
        warnings.warn_explicit("old API", category, "x.py", 1, module="transformers.modeling_utils")
    assert len(seen) == 1


class Model(torch.nn.Module):
    @deprecate_kwarg("past_key_values", "99.0", new_name="cache")
    def forward(self, x, cache=None):
        return x


def test_a_deprecated_keyword_passed_to_a_model_is_an_error():
    """transformers attributes it to torch's Module.__call__ (stacklevel=2), not to the caller:
    this is how innerpo's `past_key_values=` reached transformers' LlamaModel.forward."""
    with pytest.raises(FutureWarning, match="past_key_values"):
        Model()(torch.zeros(1), past_key_values=None)
    assert Model()(torch.ones(1), cache=None).item() == 1


def test_no_optional_kernel_notice_on_every_command():
    """With bitsandbytes installed (the test extra has it), peft imports it on every command and
    it warns that an optional hub kernel is missing; innerpo's filter drops that one notice only."""
    import subprocess
    import sys

    pytest.importorskip("bitsandbytes")
    code = "import innerpo, peft, logging; logging.getLogger('bitsandbytes.backends.cpu.ops').warning('other')"
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stderr
    assert "gemm_4bit_forward" not in err and "other" in err


def test_wrapping_with_lora_leaves_no_library_deprecation_in_the_log(tiny_model):
    """peft reads transformers' deprecated `is_gradient_checkpointing` while wrapping; every run
    printed that FutureWarning, which no user can act on."""
    from innerpo.models.config import ModelConfig
    from innerpo.models.load import add_lora

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        add_lora(tiny_model[0], ModelConfig(base_model="tiny-random", lora_r=4), seed=0)
    assert not [w for w in seen if "is_gradient_checkpointing" in str(w.message)]
