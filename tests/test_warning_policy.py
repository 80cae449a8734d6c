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
