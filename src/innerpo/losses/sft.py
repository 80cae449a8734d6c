"""Negative log-likelihood of the chosen completion (SFT; the NLL term of RPO)."""

from __future__ import annotations

from innerpo.losses.base import LossInputs, LossOutput, PreferenceLoss


def chosen_nll(x: LossInputs):
    """Scalar: mean over the batch of the per-token mean NLL of the chosen completions."""
    return -x.policy_chosen.mean.mean()


class SFTLoss(PreferenceLoss):
    """Supervised NLL on the chosen completions. Alone it is SFT on the preferred
    responses; added to ``dpo`` (``--method.losses dpo sft --method.weights 1.0 α``) it is
    RPO (Pang et al. 2024, arXiv:2404.19733) and the NLL term of CPO/ORPO-style objectives.

    Intuition: keep the likelihood of the preferred responses high, so preference losses
    cannot satisfy their margins by lowering both sides.

    Formula (mean, not sum): with n_i the completion token count of pair i,
        L = (1/B)·Σ_i [−log π(y_w,i|x_i) / n_i],
    i.e. each sequence's per-token mean NLL, then the mean over the batch (every sequence
    weighs the same whatever its length). TRL's DPO ``sft`` instead averages over all
    chosen tokens of the batch (long sequences weigh more); the two agree when chosen
    completions have equal lengths. Descending it raises log π(y_w|x).

    No hyperparameters; reference-free (``needs_reference = False``).
    Shapes: policy_chosen [B] (+ ntok [B]) → scalar loss. The rejected completions are not
    used.
    Metrics: ``nll_loss`` (the loss), ``logps/chosen`` (summed, as in TRL).
    """

    needs_reference = False
    title = "SFT, NLL of the chosen completions only (baseline; RPO's NLL term), arXiv:2404.19733"

    def forward(self, x: LossInputs) -> LossOutput:
        loss = chosen_nll(x)
        metrics = {"nll_loss": loss.detach(), "logps/chosen": x.policy_chosen.sum.detach().mean()}
        return LossOutput(loss, metrics)
