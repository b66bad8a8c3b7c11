from pathlib import Path

import pytest
import yaml

from kept.config import RunConfig, config_to_dict, load_config, save_config

ROOT = Path(__file__).resolve().parents[1]


def test_default_yaml_lists_every_default():
    assert config_to_dict(load_config(ROOT / "configs" / "default.yaml")) == config_to_dict(RunConfig())
    listed = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    assert listed == config_to_dict(RunConfig())  # every key written out, not just merged in


def test_file_then_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  depth: 5\ntrain:\n  lr: 0.01\n")
    cfg = load_config(f, ["model.depth=3", "loss.kl=0"])
    assert cfg.model.depth == 3 and cfg.train.lr == 0.01 and cfg.loss.kl == 0.0


def test_round_trip(tmp_path):
    cfg = load_config(overrides=["model.top_k=2", "data.max_pairs_per_epoch=100"])
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg


@pytest.mark.parametrize("overrides, match", [
    (["model.depht=3"], "depht"),
    (["model.depth=abc"], "depth"),
    (["model.depth"], "key=value"),
    (["model.depth=12"], "model.depth"),
    (["model.dim=30", "model.heads=4"], "divisible"),
    (["data.dataset=csv"], "data.dataset"),
])
def test_bad_values_name_the_key(overrides, match):
    with pytest.raises(ValueError, match=match):
        load_config(overrides=overrides)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="config file"):
        load_config("/nonexistent/c.yaml")


def _leaves(tree: dict, prefix: str = ""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "ablations").glob("*.yaml")), ids=lambda p: p.stem)
def test_ablation_config_changes_what_it_sets_and_nothing_else(path):
    written = dict(_leaves(yaml.safe_load(path.read_text())))
    assert written, f"{path.name} sets no key"
    ablated = dict(_leaves(config_to_dict(load_config(path))))
    default = dict(_leaves(config_to_dict(load_config())))
    assert {k for k in ablated if ablated[k] != default[k]} == set(written), path.name
    for key, value in written.items():
        assert ablated[key] == value, key
