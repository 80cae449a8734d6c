"""CPO (with its NLL term)."""

import math

import pytest

from innerpo.losses.cpo import CPOLoss

# summed log-probs: chosen -2 over 2 tokens, rejected -6 over 3 tokens;
# chosen -6 over 2 tokens, rejected -5 over 5 tokens
ARGS = dict(pc=[-2.0, -6.0], pr=[-6.0, -5.0], nc=[2.0, 2.0], nr=[3.0, 5.0])


def test_value(lt):
    # β = 0.5: z = 0.5·[4, -1] = [2, -0.5]; preference = mean(log(1+e^-2), log(1+e^0.5))
    # NLL = mean(2/2, 6/2) = 2; α = 0.5 → L = preference + 1
    out = CPOLoss(beta=0.5, alpha=0.5)(lt.pairs(**ARGS))
    pref = (math.log1p(math.exp(-2)) + math.log1p(math.exp(0.5))) / 2
    lt.approx(out.loss, pref + 0.5 * 2.0)
    lt.approx(out.metrics["nll_loss"], 2.0)
    lt.approx(out.metrics["rewards/chosen"], 0.5 * -4.0)  # β·summed log-probs
    lt.approx(out.metrics["rewards/accuracies"], 0.5)


def test_alpha_zero_is_reference_free_dpo(lt):
    out = CPOLoss(beta=0.5, alpha=0.0)(lt.pairs(**ARGS))
    lt.approx(out.loss, (math.log1p(math.exp(-2)) + math.log1p(math.exp(0.5))) / 2)


def test_descent_raises_margin_and_chosen(lt):
    x = lt.pairs([-10.0, -20.0], [-10.0, -15.0], nc=[3.0, 4.0], nr=[2.0, 3.0], grad=True)
    before, after, x2 = lt.step(CPOLoss(beta=0.1, alpha=1.0), x, lr=1.0)
    assert after < before
    assert lt.margin(x2) > lt.margin(x)
    assert (x2.policy_chosen.sum > x.policy_chosen.sum).all()


def test_finite_at_extremes(lt):
    lt.check_extremes(CPOLoss(beta=0.1, label_smoothing=0.1))


@pytest.mark.parametrize(
    "kw, hint",
    [
        ({"beta": -0.1}, "--method.beta"),
        ({"alpha": -1.0}, "--method.cpo_alpha"),
        ({"label_smoothing": 0.6}, "label_smoothing"),
    ],
)
def test_refuses_bad_hyperparameters(kw, hint):
    with pytest.raises(ValueError, match=hint):
        CPOLoss(**kw)
