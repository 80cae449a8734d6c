import pytest
import yaml

from innerpo.eval.suites import get_suite
from innerpo.tune.objective import (
    ObjectiveError,
    calibration_columns,
    check_objective,
    coherence_excess,
    incoherence,
    objective_value,
    training_split,
    validation_suite,
)


def summary(flags=None):
    acc = {"in_domain": 0.9, "a": 0.6, "b": 0.5, "c": 0.7}
    flags = flags or {}
    return {
        "suite": "s",
        "coherence_threshold": 0.5,
        "shifts": {
            k: {"adapter_accuracy": v, "base_accuracy": 0.5, "coherence_flag": flags.get(k, False)}
            for k, v in acc.items()
        },
    }


def test_objective_values_by_hand():
    s = summary()
    assert objective_value(s, "ood_accuracy") == pytest.approx((0.6 + 0.5 + 0.7) / 3)  # in_domain left out
    assert objective_value(s, "accuracy") == pytest.approx((0.9 + 0.6 + 0.5 + 0.7) / 4)
    assert objective_value(s, "in_domain_accuracy") == pytest.approx(0.9)
    assert objective_value(s, "shift:b") == pytest.approx(0.5)


def test_calibration_beside_the_objective_averages_the_same_shifts():
    s = summary()
    for k, (brier, error) in {"in_domain": (0.1, 0.05), "a": (0.2, 0.1), "b": (0.3, 0.2), "c": (0.4, 0.3)}.items():
        s["shifts"][k].update(adapter_brier=brier, adapter_rms_calibration_error=error)
    assert calibration_columns(s, "ood_accuracy") == pytest.approx({"brier": 0.3, "rms_calibration_error": 0.2})
    assert calibration_columns(s, "shift:a") == pytest.approx({"brier": 0.2, "rms_calibration_error": 0.1})
    assert calibration_columns(summary(), "accuracy") == {"brier": None, "rms_calibration_error": None}  # older runs


def test_coherence_excess_by_hand_and_its_sign_matches_the_flag():
    nll = {"a": (2.0, 1.9), "b": (2.5, 1.8), "c": (1.0, 1.2)}  # (adapter, base): rises 0.1, 0.7, -0.2
    s = {"coherence_threshold": 0.5, "shifts": {k: {"adapter_nll": a, "base_nll": b} for k, (a, b) in nll.items()}}
    assert coherence_excess(s) == pytest.approx(0.7 - 0.5)  # b trips: infeasible
    s["coherence_threshold"] = 1.0
    assert coherence_excess(s) == pytest.approx(0.7 - 1.0) and coherence_excess(s) < 0  # nothing trips: feasible


def test_a_tripped_coherence_flag_makes_the_trial_incoherent_with_its_reason():
    assert incoherence(summary()) is None
    reason = incoherence(summary({"b": True}))
    assert reason.startswith("incoherent") and "b" in reason and "0.5" in reason


def test_objectives_the_suite_cannot_compute_are_refused():
    check_objective("ood_accuracy", ["in_domain", "a"])
    with pytest.raises(ObjectiveError, match="no shift 'z'"):
        check_objective("shift:z", ["in_domain", "a"])
    with pytest.raises(ObjectiveError, match="no shift besides in_domain"):
        check_objective("ood_accuracy", ["in_domain"])
    with pytest.raises(ObjectiveError, match="choose one of"):
        check_objective("loss", ["in_domain"])


def test_validation_suite_mirrors_the_suite_on_validation_splits(tmp_path):
    path = tmp_path / "v.yaml"
    path.write_text(yaml.safe_dump(validation_suite("synthetic"), sort_keys=False))
    suite, original = get_suite(str(path)), get_suite("synthetic")
    assert list(suite.shifts) == list(original.shifts)
    assert all(s.split == "validation" and s.dataset == original.shifts[k].dataset for k, s in suite.shifts.items())
    genies = validation_suite("genies-alpaca")
    assert genies["shifts"]["in_domain"] == {"dataset": "genies:alpaca_easy", "split": "validation"}
    user = tmp_path / "mine.yaml"
    user.write_text("shifts:\n  in_domain: {dataset: data/x.jsonl}\n")
    with pytest.raises(ObjectiveError, match="--validation_suite"):
        validation_suite(str(user))


def test_genies_trials_train_without_the_validation_tenth():
    assert training_split("genies:alpaca_easy", "train") == "fit"
    assert training_split("synthetic", "train") == "train"  # its validation split is already disjoint
