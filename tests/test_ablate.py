"""kept ablate: the plan, resuming, and the table (training replaced by a fake)."""

import json

import pytest
import yaml

from kept.ablate import ABLATIONS, ablation_overrides, format_table, plan, run_ablations
from kept.config import config_to_dict, load_config

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _fake_train(calls, rho):
    def train(cfg, run_dir, resume=False):
        calls.append((str(run_dir), resume, cfg.model.depth, cfg.loss.kl, cfg.train.seed))
        m = {"score": {"spearman": rho(cfg), "r_l2_x100": 5.0, "pair_accuracy": 0.6},
             "text": {"bleu_1": 0.3, "bleu_4": 0.1, "meteor": 0.2, "rouge_l": 0.25, "cider": 0.4 - cfg.loss.kl}}
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "metrics.json").write_text(json.dumps(m))
        return m
    return train


def test_ablation_yaml_files_match_the_table():
    for name, (_, overrides) in ABLATIONS.items():
        f = ROOT / "configs" / "ablations" / f"{name}.yaml"
        if name == "full":
            assert not f.exists()
            continue
        assert yaml.safe_load(f.read_text()) == overrides, name
        load_config(f)


def test_plan_applies_overrides_and_seeds(tmp_path):
    cfg = load_config(overrides=["train.max_epochs=3"])
    runs, skipped = plan(cfg, tmp_path, ["full", "depth5", "no_kl"], [0, 2])
    assert [(r.name, r.seed) for r in runs] == [("full", 0), ("full", 2), ("depth5", 0), ("depth5", 2),
                                                ("no_kl", 0), ("no_kl", 2)]
    assert runs[2].cfg.model.depth == 5 and runs[4].cfg.loss.kl == 0 and runs[0].cfg.loss.kl == 0.1
    assert all(r.cfg.train.max_epochs == 3 for r in runs) and runs[1].cfg.train.seed == 2
    assert runs[3].run_dir == tmp_path / "depth5" / "seed2"
    assert config_to_dict(runs[0].cfg)["model"] == config_to_dict(cfg)["model"]  # full = the base
    assert not skipped


def test_no_residual_is_skipped_without_the_text_branch(tmp_path):
    runs, skipped = plan(load_config(overrides=["text.enabled=false"]), tmp_path, ["full", "no_residual"], [0])
    assert [r.name for r in runs] == ["full"] and "no_residual" in skipped[0]


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown ablation"):
        plan(load_config(), tmp_path, ["no_everything"], [0])
    with pytest.raises(ValueError, match="seed"):
        plan(load_config(), tmp_path, ["full"], [])
    with pytest.raises(ValueError, match="known"):
        ablation_overrides("nope")


def test_finished_runs_are_not_repeated_and_the_table_marks_changes(tmp_path):
    calls = []
    rho = lambda cfg: 0.5 + 0.01 * cfg.train.seed - (0.2 if cfg.loss.kl == 0 else 0.0)  # noqa: E731
    train = _fake_train(calls, rho)
    run_ablations(load_config(), tmp_path, ["full", "no_kl"], [0, 1], train_fn=train, log=lambda m: None)
    assert len(calls) == 4
    # an interrupted run: its checkpoint exists but no metrics.json, so it resumes
    (tmp_path / "no_kl" / "seed1" / "metrics.json").unlink()
    (tmp_path / "no_kl" / "seed1" / "checkpoints").mkdir()
    (tmp_path / "no_kl" / "seed1" / "checkpoints" / "last.ckpt").write_text("x")
    summary = run_ablations(load_config(), tmp_path, ["full", "no_kl"], [0, 1], train_fn=train, log=lambda m: None)
    assert calls[4:] == [(str(tmp_path / "no_kl" / "seed1"), True, 4, 0.0, 1)]
    rows = summary["rows"]
    assert rows["full"]["metrics"]["spearman"]["mean"] == pytest.approx(0.505)
    assert rows["no_kl"]["changed"] == ["spearman", "cider"]  # 0.2 lower, seed sd 0.007: beyond the spread
    table = (tmp_path / "ablation.md").read_text()
    assert table == format_table(summary)
    assert "| w/o L_KL | 2 | 0.305 ± 0.007* | 5.000 ± 0.000 | 0.600 ± 0.000 | 0.300 ± 0.000 |" in table
    assert "CIDEr" in table and table.rstrip().splitlines()[3].split("|")[-2].strip() == "0.400 ± 0.000*"
    assert json.loads((tmp_path / "ablation.json").read_text())["rows"]["no_kl"]["seeds"] == [0, 1]


def test_runs_held_by_another_live_process_are_skipped(tmp_path):
    import os
    import socket

    from kept.ablate import LOCK_FILE, acquire_lock

    held = tmp_path / "full" / "seed1" / LOCK_FILE
    held.parent.mkdir(parents=True)
    held.write_text(f"{socket.gethostname()} {os.getppid()}")  # a live process: the test runner's parent
    stale = tmp_path / "full" / "seed0" / LOCK_FILE
    stale.parent.mkdir(parents=True)
    stale.write_text(f"{socket.gethostname()} 999999999")  # no such process
    calls, messages = [], []
    run_ablations(load_config(), tmp_path, ["full"], [0, 1], train_fn=_fake_train(calls, lambda cfg: 0.5),
                  log=messages.append)
    assert [c[0] for c in calls] == [str(tmp_path / "full" / "seed0")]  # the stale lock was taken over
    assert not stale.exists() and held.exists()  # released after the run; the live one untouched
    assert any("another process" in m for m in messages)
    assert not acquire_lock(held) and acquire_lock(tmp_path / "x" / LOCK_FILE)
