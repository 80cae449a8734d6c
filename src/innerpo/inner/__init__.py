"""InnerPO: preference objectives on hidden states (the ReprPO line of work).

Pure, tensor-level pieces, each in its own module:

- :mod:`~innerpo.inner.pooling`: masked mean over completion tokens (optional
  attention-sink filtering) and the last real token of each row.
- :mod:`~innerpo.inner.layers`: the ``--method.layers`` grammar.
- :mod:`~innerpo.inner.geometry`: the shared decomposition of the policy's
  chosen-minus-rejected difference against the reference's.
- :mod:`~innerpo.inner.align`: InnerDPO margins, registered by name.
- :mod:`~innerpo.inner.hidden_inputs`: :class:`HiddenInputs`, what the loop puts in
  ``LossInputs.hidden``.
- the hidden-state losses, one module each (:mod:`~innerpo.inner.innerdpo`,
  :mod:`~innerpo.inner.prefvec`, :mod:`~innerpo.inner.mse`, :mod:`~innerpo.inner.reroute`,
  :mod:`~innerpo.inner.rank`), on the :class:`~innerpo.inner.common.HiddenLoss` contract;
  they are registered by name in :mod:`innerpo.methods.registry`.
- :mod:`~innerpo.inner.transforms`: trainable maps applied to states before a loss;
  :mod:`~innerpo.inner.supr`: the suppressed-activations selection.
- :mod:`~innerpo.inner.metrics`: detached geometry diagnostics logged by every hidden loss.

Nothing here runs a model; the training loop collects the states and fills
:class:`HiddenInputs`.
"""

from innerpo.inner.align import ALIGN_METHODS, get_align_method
from innerpo.inner.hidden_inputs import HiddenInputs, StateQuad
from innerpo.inner.innerdpo import InnerDPOLoss
from innerpo.inner.layers import parse_layers
from innerpo.inner.mse import ReprPOMSELoss
from innerpo.inner.pooling import SINK_THRESHOLD, last_real_token, masked_mean
from innerpo.inner.prefvec import PrefVecLoss
from innerpo.inner.rank import RankLoss
from innerpo.inner.reroute import RerouteRetainLoss
from innerpo.inner.supr import head_projector, supr, supr_masks
from innerpo.inner.transforms import TRANSFORMS, LayerTransforms, apply_transforms, make_transform

__all__ = [
    "ALIGN_METHODS",
    "SINK_THRESHOLD",
    "TRANSFORMS",
    "HiddenInputs",
    "InnerDPOLoss",
    "LayerTransforms",
    "PrefVecLoss",
    "RankLoss",
    "ReprPOMSELoss",
    "RerouteRetainLoss",
    "StateQuad",
    "apply_transforms",
    "get_align_method",
    "head_projector",
    "last_real_token",
    "make_transform",
    "masked_mean",
    "parse_layers",
    "supr",
    "supr_masks",
]
