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
- :mod:`~innerpo.inner.losses`: the hidden-state losses (InnerDPO, PrefVec,
  reroute/retain, rank).
- :mod:`~innerpo.inner.transforms`: trainable maps applied to states before a loss;
  :mod:`~innerpo.inner.supr`: the suppressed-activations selection.

Nothing here runs a model; the training loop collects the states and fills
:class:`HiddenInputs`.
"""
