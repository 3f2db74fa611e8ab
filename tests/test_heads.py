"""Heads: one registry of head specs, their defaults, and where each head starts in a built model."""

import numpy as np
import pytest

import tfbert
from tfbert.heads import HEADS, get_head, resolve_head_settings


def test_head_specs_hold_the_defaults_runs_use():
    assert list(HEADS) == ["dense", "cls_bn", "bilstm"]
    assert (get_head("dense").train_encoder, get_head("dense").learning_rate) == (True, 3e-5)
    for name in ("cls_bn", "bilstm"):
        assert (get_head(name).train_encoder, get_head(name).learning_rate) == (False, 1e-3)
    assert [name for name, spec in HEADS.items() if spec.per_token] == ["bilstm"]
    assert resolve_head_settings("bilstm", learning_rate=0.01) == {"train_encoder": False, "learning_rate": 0.01}


def test_unknown_head_names_the_choices():
    with pytest.raises(tfbert.ConfigError, match="unknown head 'lstm'; choose one of: dense, cls_bn, bilstm"):
        get_head("lstm")
    with pytest.raises(tfbert.ConfigError, match="unknown head"):
        tfbert.create_classifier("tiny-hf", head="lstm")


@pytest.mark.parametrize("head", list(HEADS))
def test_each_head_starts_at_its_feature_layer(tiny_models, head):
    """The head part (from the spec's feature_layer on) on the encoder part's output gives the model's logits."""
    model = tfbert.create_classifier("tiny-hf", head=head, seq_length=16, train_encoder=False)
    core = model.core
    assert core.get_layer("logits").dtype == "float32"
    assert core.get_layer(model.head_spec.feature_layer) is not None
    encoder_part, head_part = model.head_split()
    inputs = model.preprocessor(["a good film", "bad"])
    features = encoder_part(inputs, training=False)
    head_inputs = [features, inputs["input_mask"]] if model.head_spec.per_token else features
    np.testing.assert_allclose(head_part(head_inputs, training=False), core(inputs, training=False), atol=1e-6)


def test_head_options_reach_the_layers_and_unknown_ones_are_one_line(tiny_models):
    model = tfbert.create_classifier("tiny-hf", head="bilstm", seq_length=16, lstm_units=7, hidden_units=9,
                                     dropout=None)
    assert model.core.get_layer("head_dense").units == 9
    assert model.core.get_layer("head_bilstm").forward_layer.units == 7
    assert model.head_config == {"lstm_units": 7, "hidden_units": 9}  # None dropped: head default applies
    with pytest.raises(tfbert.ConfigError, match="head 'dense': .*unexpected keyword argument 'lstm_units'"):
        tfbert.create_classifier("tiny-hf", head="dense", lstm_units=4)
