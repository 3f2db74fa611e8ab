"""Run settings: grids from flags and YAML, one-line errors, head defaults resolved once."""

import dataclasses

import pytest

import tfbert
from tfbert.config import RunConfig, expand_grid, load_yaml_settings, resolve, run_name, varying_settings
from tfbert.heads import resolve_head_settings


def test_grid_from_flags_and_yaml(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text("model: tiny-hf\nepochs: 1\ngrid:\n  head: [dense, cls_bn]\n  learning_rate: [1e-3, 3e-5]\n")
    configs = expand_grid(load_yaml_settings(path))
    assert len(configs) == 4
    assert {(c.head, c.learning_rate) for c in configs} == {
        ("dense", 1e-3), ("dense", 3e-5), ("cls_bn", 1e-3), ("cls_bn", 3e-5)}
    names = {run_name(c, ["head", "learning_rate"]) for c in configs}
    assert len(names) == 4 and "tiny-hf__cls_bn__lr3e-05__lenauto__ep1__bs32__seed42" in names


def test_bad_settings_are_one_line_errors(tmp_path):
    import tfbert
    with pytest.raises(tfbert.ConfigError, match="unknown setting.*colour"):
        expand_grid({"colour": "red"})
    with pytest.raises(tfbert.ConfigError, match="cannot take several values"):
        expand_grid({"output_dir": ["a", "b"]})
    with pytest.raises(tfbert.ConfigError, match="cannot read"):
        expand_grid({"epochs": "many"})
    with pytest.raises(tfbert.ConfigError, match="config file not found"):
        load_yaml_settings(tmp_path / "nope.yaml")


@pytest.mark.parametrize("head,train_encoder,learning_rate", [
    ("dense", True, 3e-5), ("cls_bn", False, 1e-3), ("bilstm", False, 1e-3)])
def test_resolve_fills_the_heads_defaults_once(head, train_encoder, learning_rate):
    resolved = resolve(RunConfig(head=head))
    assert (resolved.train_encoder, resolved.learning_rate) == (train_encoder, learning_rate)
    assert resolve(resolved) == resolved  # idempotent: resolving again changes nothing
    # unset head sizes stay unset: create_classifier drops them and the head's own defaults apply
    assert (resolved.hidden_units, resolved.dropout, resolved.lstm_units) == (None, None, None)
    assert resolved.seq_length is None  # auto, until the training texts are known


def test_resolve_keeps_what_the_user_set():
    config = RunConfig(head="cls_bn", train_encoder=True, learning_rate=5e-5, dropout=0.2)
    resolved = resolve(config)
    assert (resolved.train_encoder, resolved.learning_rate, resolved.dropout) == (True, 5e-5, 0.2)
    assert resolve_head_settings("dense", train_encoder=False) == {"train_encoder": False, "learning_rate": 3e-5}


def test_run_name_shows_the_resolved_learning_rate():
    configs = expand_grid({"model": "tiny-hf", "head": ["dense", "cls_bn"], "seq_length": 64})
    varying = varying_settings(configs)
    assert varying == ["head"]  # the head's different defaults do not count as varied settings
    names = [run_name(resolve(c), varying) for c in configs]
    assert names == ["tiny-hf__dense__lr3e-05__len64__ep2__bs32__seed42",
                     "tiny-hf__cls_bn__lr0.001__len64__ep2__bs32__seed42"]


def test_unknown_head_is_a_one_line_error():
    with pytest.raises(tfbert.ConfigError, match="unknown head 'cnn'; choose one of: dense, cls_bn, bilstm, transformer"):
        resolve(RunConfig(head="cnn"))


def test_every_setting_has_help_and_a_group():
    for field in dataclasses.fields(RunConfig):
        assert field.metadata["help"] and field.metadata["group"], field.name


def test_head_options_reach_any_head_and_are_checked():
    from tfbert.config import parse_head_options
    assert parse_head_options("num_layers=2, head_pooling=cls,dropout=0.2") == {
        "num_layers": 2, "head_pooling": "cls", "dropout": 0.2}
    config = RunConfig(model="tiny-hf", head="transformer", head_options="num_layers=2,num_heads=2", train="x.csv")
    assert config.head_kwargs()["num_layers"] == 2
    with pytest.raises(tfbert.ConfigError, match="'num_layers' is not NAME=VALUE"):
        parse_head_options("num_layers")
    name = run_name(resolve(config), ["head_options"])
    assert name.endswith("__honum_layers-2-num_heads-2") and "=" not in name
