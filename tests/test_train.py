"""End to end: train and evaluate on a tiny generated set; resume gives the same result."""

import json

import lightning as L
import numpy as np
import pytest
import torch

from kept.cli import main
from kept.train import LAST_CKPT, load_model, train


def _scores(metrics):
    return {k: metrics["score"][k] for k in ("spearman", "r_l2_x100", "r_l1_x100", "pair_accuracy")}


def test_train_writes_run_dir_and_eval_reproduces_metrics(tiny_config, tmp_path, capsys):
    run = tmp_path / "run"
    metrics = train(tiny_config, run)
    for name in ("config.yaml", "model.pt", "metrics.json", "predictions.csv", LAST_CKPT, "logs/metrics.csv"):
        assert (run / name).exists(), name
    assert set(metrics["per_category"]) == {"lunge", "squat"}
    assert metrics["n_recordings"] == 8 and metrics["n_pairs"] == 12
    assert set(metrics["score"]) == {"spearman", "r_l2_x100", "r_l1_x100", "pair_accuracy"}

    out = tmp_path / "eval.json"
    assert main(["eval", "--checkpoint", str(run), "--out", str(out)]) == 0
    again = json.loads(out.read_text())
    assert _scores(again) == pytest.approx(_scores(metrics))
    assert "spearman" in capsys.readouterr().out

    model, cfg, saved = load_model(run)
    assert not model.training and saved["dataset"]["score_range"] == [0, 10]


class _Interrupt(L.Callback):
    """Kill the run at the start of the second epoch, after the first checkpoint."""

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == 1:
            raise RuntimeError("simulated interruption")


def test_resume_after_interruption_matches_uninterrupted(tiny_config, tmp_path):
    full = train(tiny_config, tmp_path / "full")
    with pytest.raises(RuntimeError, match="simulated"):
        train(tiny_config, tmp_path / "cut", callbacks=[_Interrupt()])
    assert not (tmp_path / "cut" / "model.pt").exists()
    resumed = train(tiny_config, tmp_path / "cut", resume=True)
    assert _scores(resumed) == pytest.approx(_scores(full), abs=1e-6)
    a = torch.load(tmp_path / "full" / "model.pt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "cut" / "model.pt", weights_only=False)["state_dict"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_refuses_to_overwrite_and_to_resume_nothing(tiny_config, tmp_path):
    with pytest.raises(FileNotFoundError, match="--resume"):
        train(tiny_config, tmp_path / "empty", resume=True)
    (tmp_path / "used" / "checkpoints").mkdir(parents=True)
    (tmp_path / "used" / LAST_CKPT).write_bytes(b"x")
    with pytest.raises(ValueError, match="already holds a run"):
        train(tiny_config, tmp_path / "used")


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["train", "--dataset", "adr", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "--synthetic" in err and "kept data adr" in err
    assert main(["eval", "--checkpoint", str(tmp_path / "nothing")]) == 2
    assert "no trained model" in capsys.readouterr().err


def test_cli_train_with_overrides(tiny_dataset, tmp_path):
    run = tmp_path / "cli"
    code = main(["train", "--dataset", "folder", "--data-root", str(tiny_dataset), "--run-dir", str(run),
                 "--seed", "3", "model.dim=8", "model.heads=2", "model.depth=2", "data.num_keyframes=4",
                 "data.segment_samples=2", "train.max_epochs=1", "train.progress_bar=false",
                 f"data.cache_dir={tmp_path / 'cache'}", "model.use_gnn=false"])
    assert code == 0
    assert "seed: 3" in (run / "config.yaml").read_text()
    assert "use_gnn: false" in (run / "config.yaml").read_text()


def test_cli_resume_reads_the_runs_config_and_keeps_old_logs(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    common = ["--dataset", "folder", "--data-root", str(tiny_dataset), "--run-dir", str(run)]
    small = ["model.dim=8", "model.heads=2", "model.depth=2", "data.num_keyframes=4", "data.segment_samples=2",
             "train.progress_bar=false", f"data.cache_dir={tmp_path / 'cache'}"]
    assert main(["train", *common, *small, "train.max_epochs=1"]) == 0
    (run / "model.pt").unlink()
    assert main(["train", *common, "--resume", "train.max_epochs=2"]) == 0  # dim etc. come from config.yaml
    assert "max_epochs: 2" in (run / "config.yaml").read_text() and "dim: 8" in (run / "config.yaml").read_text()
    assert (run / "logs" / "metrics.csv").exists() and (run / "logs" / "resume-1" / "metrics.csv").exists()


def test_eval_on_another_skeleton_is_refused(tiny_config, tmp_path, capsys):
    from kept.data.demo import generate_demo

    run = tmp_path / "run"
    tiny_config.train.max_epochs = 1
    train(tiny_config, run)
    demo = generate_demo(tmp_path / "demo", seed=0, train_per_category=2, test_per_category=2, progress=False)
    assert main(["eval", "--checkpoint", str(run), "--dataset", "folder", "--data-root", str(demo)]) == 2
    assert "same skeleton" in capsys.readouterr().err


def test_binary_error_labels_report_f1(binary_dataset, tmp_path):
    from kept.config import load_config

    cfg = load_config(overrides=["data.dataset=folder", f"data.data_root={binary_dataset}", "model.dim=8",
                                 "model.heads=2", "model.depth=2", "data.num_keyframes=4", "data.segment_samples=2",
                                 "train.max_epochs=1", "train.progress_bar=false"])
    metrics = train(cfg, tmp_path / "run")
    assert set(metrics["f1"]) == {"shallow"} and 0.0 <= metrics["f1"]["shallow"] <= 1.0
    assert "f1_threshold" in metrics


def test_text_branch_trains_saves_and_scores_text(described_dataset, tmp_path):
    from kept.config import load_config

    cfg = load_config(overrides=["data.dataset=folder", f"data.data_root={described_dataset}", "model.dim=8",
                                 "model.heads=2", "model.depth=2", "data.num_keyframes=4", "data.segment_samples=2",
                                 "text.layers=1", "text.hidden=32", "text.max_length=12", "train.max_epochs=1",
                                 "text.generator=decoder", "train.progress_bar=false",
                                 f"data.cache_dir={tmp_path / 'cache'}"])
    metrics = train(cfg, tmp_path / "run")
    grounding = {"verdict_accuracy", "verdict_rate", "self_consistency", "body_part_precision", "body_part_recall",
                 "fault_part_recall", "repetition", "repetition_trigram", "n"}
    assert set(metrics["text"]) == {"bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_1", "rouge_2",
                                    "rouge_l", "cider"} | grounding
    assert metrics["text"]["n"] == 3
    assert "text" in metrics["per_category"]["squat"]
    assert (tmp_path / "run" / "descriptions.csv").read_text().count("\n") == 4  # header + 3 test pairs
    log = (tmp_path / "run" / "logs" / "metrics.csv").read_text()
    assert "train/ce" in log and "train/comment" in log
    model, _, saved = load_model(tmp_path / "run")
    assert saved["has_decoder"] and model.decoder is not None and not saved["has_memory"]
    assert 0 < int(model.decoder.vocab_mask.sum()) < model.decoder.vocab_size  # the descriptions' tokens


def test_retrieval_generator_remembers_the_described_pairs_and_describes_with_them(described_dataset, tmp_path):
    from kept.config import load_config

    cfg = load_config(overrides=["data.dataset=folder", f"data.data_root={described_dataset}", "model.dim=8",
                                 "model.heads=2", "model.depth=2", "data.num_keyframes=4", "data.segment_samples=2",
                                 "train.max_epochs=1", "train.progress_bar=false",
                                 f"data.cache_dir={tmp_path / 'cache'}"])
    metrics = train(cfg, tmp_path / "run")
    model, _, saved = load_model(tmp_path / "run")
    assert saved["has_memory"] and not saved["has_decoder"] and model.decoder is None
    assert metrics["text"]["self_consistency"] == 1.0 and metrics["text"]["verdict_rate"] == 1.0
    import csv

    with open(tmp_path / "run" / "descriptions.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 and all(r["generated"] for r in rows)
    train_text = (described_dataset / "pairs.csv").read_text()
    assert all(r["generated"].split(". ")[0] in train_text for r in rows)  # a remembered description


def test_statistics_branch_is_fitted_weighted_on_val_and_refitted(tiny_config, tmp_path):
    from kept.data.datamodule import load_configured_dataset
    from kept.train import NET_WEIGHTS

    metrics = train(tiny_config, tmp_path / "run")
    model, cfg, saved = load_model(tmp_path / "run")
    assert bool(model.stats.fitted) and saved["categories"] == ["lunge", "squat"]
    assert float(model.net_weight) in NET_WEIGHTS
    assert set(metrics["val"]["score"]) == {"spearman", "r_l2_x100", "r_l1_x100", "pair_accuracy"}
    if (tmp_path / "run" / "checkpoints" / "best.ckpt").exists():  # only when val rho was ever finite
        assert cfg.train.keep == "best"
    # refitted on train + val: the branch's global ridge sees every non-test recording
    ds = load_configured_dataset(cfg)
    assert len(ds.ids("val")) > 0


def test_paper_config_trains_without_the_decisions(tiny_config, tmp_path):
    from pathlib import Path

    from kept.config import config_to_dict, load_config

    paper = Path(__file__).resolve().parents[1] / "configs" / "paper.yaml"
    cfg = load_config(paper, base=config_to_dict(tiny_config))
    assert not cfg.model.stats_branch and cfg.loss.rank == 0 and cfg.loss.path == 0 and cfg.train.keep == "last"
    train(cfg, tmp_path / "paper")
    model, _, saved = load_model(tmp_path / "paper")
    assert model.stats is None and saved["categories"] == []


def _weight_choice(monkeypatch, stats, net, truth):
    """choose_net_weight on a val split of len(truth) recordings with given branch and network scores."""
    from types import SimpleNamespace

    import kept.evaluate
    from kept.config import load_config
    from kept.train import choose_net_weight

    ids = [f"r{i}" for i in range(len(truth))]
    monkeypatch.setattr(kept.evaluate, "predict", lambda *a, **k: SimpleNamespace(stats_score=stats, net_score=net))
    dm = SimpleNamespace(dataset=SimpleNamespace(ids=lambda split: ids),
                         bank=SimpleNamespace(target=torch.as_tensor(truth), rows=lambda i: list(range(len(i)))))
    model = SimpleNamespace(net_weight=torch.ones(()))
    return choose_net_weight(model, dm, load_config())


def test_net_weight_stays_at_zero_when_the_network_only_adds_noise(monkeypatch):
    from kept.metrics import spearman

    rng = np.random.default_rng(14)  # a draw where the noise happens to raise val rho at w = 0.75
    truth = rng.uniform(size=30)
    stats = truth + 0.15 * rng.normal(size=30)
    noise = 0.1 * rng.normal(size=30)
    assert spearman(truth, stats + 0.75 * noise) > spearman(truth, stats) + 0.03  # the argmax would take it
    assert _weight_choice(monkeypatch, stats, noise, truth) == 0.0


def test_net_weight_follows_a_network_that_clearly_helps(monkeypatch):
    rng = np.random.default_rng(1)
    truth = rng.uniform(size=200)
    stats = 0.5 * np.ones(200) + 0.05 * rng.normal(size=200)  # the branch knows nothing
    assert _weight_choice(monkeypatch, stats, truth - 0.5, truth) == 1.0
