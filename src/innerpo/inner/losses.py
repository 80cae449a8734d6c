"""The hidden-state losses, registered by name, and the input they read.

======================  ============================================================
``inner_dpo``           :class:`InnerDPOLoss`: DPO/IPO on an align-method margin
``prefvec``             :class:`PrefVecLoss`: chosen forward / rejected backward along u
``mse``                 :class:`ReprPOMSELoss`: ReprPO's MSE, rejected pulled toward chosen
``reroute_retain``      :class:`RerouteRetainLoss`: circuit-breaker reroute + retain (redesigned MSE)
``rank``                :class:`RankLoss`: DPO over hidden dimensions via log-softmax
======================  ============================================================

All set ``needs_hidden = True`` and ``needs_reference = True`` and read
``LossInputs.hidden``, a :class:`HiddenInputs` (see :mod:`innerpo.inner.hidden_inputs`).
Each computes only its hidden term; output-level losses are added by the method layer.
"""

from __future__ import annotations

from innerpo.inner.hidden_inputs import HiddenInputs, StateQuad
from innerpo.inner.innerdpo import InnerDPOLoss, token_drift
from innerpo.inner.mse import ReprPOMSELoss
from innerpo.inner.prefvec import PrefVecLoss
from innerpo.inner.rank import RankLoss
from innerpo.inner.reroute import RerouteRetainLoss

HIDDEN_LOSSES = {
    "inner_dpo": InnerDPOLoss,
    "prefvec": PrefVecLoss,
    "mse": ReprPOMSELoss,
    "reroute_retain": RerouteRetainLoss,
    "rank": RankLoss,
}

__all__ = [
    "HIDDEN_LOSSES",
    "HiddenInputs",
    "InnerDPOLoss",
    "PrefVecLoss",
    "RankLoss",
    "ReprPOMSELoss",
    "RerouteRetainLoss",
    "StateQuad",
    "token_drift",
]
