import pytest

from kept.metrics import evaluate_scores, fisher_z_mean, pair_accuracy, relative_l1, relative_l2, spearman


def test_relative_errors_by_hand():
    # errors 1 and 3 on a 0-10 scale: squares 0.01 and 0.09 -> mean 0.05 -> x100 = 5
    assert relative_l2([2, 5], [3, 2], (0, 10)) == pytest.approx(5.0)
    assert relative_l1([2, 5], [3, 2], (0, 10)) == pytest.approx(20.0)


def test_spearman_and_undefined_cases():
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    assert spearman([1], [1]) is None


def test_pair_accuracy_skips_reference_ties():
    truth = {"a": 1.0, "b": 2.0, "c": 2.0}
    pred = {"a": 0.1, "b": 0.9, "c": 0.0}
    assert pair_accuracy([("a", "b"), ("b", "c"), ("a", "c")], truth, pred) == pytest.approx(0.5)
    assert pair_accuracy([("b", "c")], truth, pred) is None


def test_each_recording_counts_once_and_per_category():
    cats = {"a": "x", "b": "x", "c": "y", "d": "y"}
    truth = {"a": 1, "b": 2, "c": 3, "d": 4}
    pred = {"a": 1, "b": 2, "c": 4, "d": 3}
    m = evaluate_scores(cats, truth, pred, [("a", "b"), ("a", "b"), ("c", "d")], (0, 10))
    assert m["n_recordings"] == 4 and m["n_pairs"] == 3
    assert m["per_category"]["x"]["pair_accuracy"] == 1.0 and m["per_category"]["y"]["pair_accuracy"] == 0.0
    assert m["score"]["spearman"] == pytest.approx(0.8)


def test_fisher_z_mean():
    assert fisher_z_mean([0.5, 0.5]) == pytest.approx(0.5)
    # by hand: tanh((atanh 0.2 + atanh 0.9) / 2) = tanh((0.20273 + 1.47222) / 2) = 0.68447, not the plain mean 0.55
    assert fisher_z_mean([0.2, 0.9, None]) == pytest.approx(0.68447, abs=1e-4)
    assert fisher_z_mean([None]) is None


def test_f1_threshold_by_hand():
    from kept.metrics import best_f1_threshold, f1_at

    y, s = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    assert best_f1_threshold(y, s) == pytest.approx(0.35)  # predicts 0.4, 0.35, 0.8: P 2/3, R 1
    assert f1_at(y, s, 0.35) == pytest.approx(0.8)
    assert f1_at([0, 0], [0.1, 0.2], 0.5) == 0.0
