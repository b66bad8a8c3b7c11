import numpy as np
import pytest

from kept.data.folder import load_dataset
from kept.evaluate import cross_validation_metrics, fault_path_agreement
from kept.metrics import fisher_z_mean


def test_fault_path_agreement_by_hand():
    nodes = ("elbow", "shoulder", "hip", "knee")
    faults = {
        "a": [{"node_type": "knee", "t_start": 0.30, "t_end": 0.45}],  # segments 1 (of 4)
        "b": [{"node_type": "elbow", "t_start": 0.55, "t_end": 0.74}],  # segment 2 only
        "c": [],
    }
    paths = {"a": np.array([0, 3, 0, 0]), "b": np.array([0, 0, 1, 1]), "c": np.array([0, 0, 0, 0])}
    out = fault_path_agreement(paths, faults, nodes, depth=4)
    assert out["n"] == 2 and out["hit_rate"] == pytest.approx(0.5)
    assert out["chance_rate"] == pytest.approx(0.25)  # one faulted (segment, node) each: 1/4


def test_cross_validation_pools_folds(tiny_dataset):
    ds = load_dataset(tiny_dataset)
    ids = ds.ids("train") + ds.ids("val") + ds.ids("test")
    truth = {i: ds.recordings[i].score for i in ids}
    half = len(ids) // 2
    folds = {
        "f1": {"predictions": {i: truth[i] for i in ids[:half]}, "score": {"spearman": 1.0}},
        "f2": {"predictions": {i: -truth[i] for i in ids[half:]}, "score": {"spearman": -1.0}},
    }
    out = cross_validation_metrics(folds, ds)
    assert out["n_recordings"] == len(ids)
    assert set(out["per_category"]) == {"lunge", "squat"}
    rhos = [m["spearman"] for m in out["per_category"].values()]
    assert out["spearman_fisher_z"] == pytest.approx(fisher_z_mean(rhos))
    assert out["fold_spearman_fisher_z"] == pytest.approx(0.0, abs=1e-6)
    assert "predictions" not in out["folds"]["f1"]
