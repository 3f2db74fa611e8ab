"""Classification heads: encoder outputs -> logits.

Every head has the signature ``fn(outputs, input_mask, num_outputs, pooling,
**kwargs) -> logits`` and names its final layer ``logits`` (kept in float32
under mixed precision so losses stay stable).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import tensorflow as tf
import tf_keras as keras

from tfbert.encoders.base import sentence_vector
from tfbert.errors import ConfigError
from tfbert.layers import MaskedGlobalMaxPool1D


def _logits(x, num_outputs):
    return keras.layers.Dense(num_outputs, name="logits", dtype="float32")(x)


def _mlp(x, hidden_units, dropout, batchnorm_momentum):
    """BatchNorm -> Dense(relu) -> Dropout, the tutorials' latent-feature block.

    Keras' default momentum (0.99) leaves the moving statistics near their
    initial values after the few hundred steps of a fine-tuning run, so
    evaluation would see badly scaled features; 0.9 settles in ~50 steps.
    """
    x = keras.layers.BatchNormalization(momentum=batchnorm_momentum, name="head_batchnorm")(x)
    x = keras.layers.Dense(hidden_units, activation="relu", name="head_dense")(x)
    return keras.layers.Dropout(dropout, name="head_dropout")(x)


def dense_head(outputs, input_mask, num_outputs, pooling="pooled", dropout=0.1):
    """Sentence vector -> Dropout -> Dense(num_outputs)."""
    x = sentence_vector(outputs, input_mask, pooling)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return _logits(x, num_outputs)


def cls_bn_head(outputs, input_mask, num_outputs, pooling="pooled", hidden_units=192, dropout=0.3,
                batchnorm_momentum=0.9):
    """[CLS] vector -> BatchNorm -> Dense(hidden_units, relu) -> Dropout -> Dense."""
    cls = keras.layers.Lambda(lambda s: s[:, 0, :], name="cls_vector")(outputs["sequence_output"])
    return _logits(_mlp(cls, hidden_units, dropout, batchnorm_momentum), num_outputs)


def bilstm_head(outputs, input_mask, num_outputs, pooling="pooled", lstm_units=50,
                lstm_dropout=0.1, recurrent_dropout=0.0, hidden_units=192, dropout=0.3,
                batchnorm_momentum=0.9):
    """Sequence (padding masked) -> BiLSTM -> max over time -> BatchNorm/Dense block.

    ``recurrent_dropout`` defaults to 0 because any other value disables the
    fused LSTM kernel and makes the head several times slower on CPU.
    """
    mask = keras.layers.Lambda(lambda m: tf.cast(m, tf.bool), name="padding_mask")(input_mask)
    lstm = keras.layers.LSTM(lstm_units, return_sequences=True, dropout=lstm_dropout,
                             recurrent_dropout=recurrent_dropout)
    x = keras.layers.Bidirectional(lstm, name="head_bilstm")(outputs["sequence_output"], mask=mask)
    x = MaskedGlobalMaxPool1D(name="head_maxpool")(x, input_mask)
    return _logits(_mlp(x, hidden_units, dropout, batchnorm_momentum), num_outputs)


@dataclasses.dataclass(frozen=True)
class HeadSpec:
    """A head and what a run needs to know about it.

    Attributes:
        name: str. The name users pass (``--head``).
        build: the head function (see the module docstring for its signature).
        train_encoder: bool. Whether the encoder fine-tunes by default.
        learning_rate: float. Default peak learning rate with this head.
        feature_layer: str or None. The head layer whose input is the encoder
            output the head consumes; set, a frozen encoder's outputs can be
            computed once and cached (``tfbert.encoder_cache``).
        per_token: bool. The head reads every token's vector, not one per text.
    """

    name: str
    build: Callable
    train_encoder: bool
    learning_rate: float
    feature_layer: str | None = None
    per_token: bool = False


# Frozen-encoder heads train only a freshly initialised head, which needs a far
# larger step than fine-tuning a pretrained encoder does.
HEADS = {spec.name: spec for spec in (
    HeadSpec("dense", dense_head, train_encoder=True, learning_rate=3e-5, feature_layer="head_dropout"),
    HeadSpec("cls_bn", cls_bn_head, train_encoder=False, learning_rate=1e-3, feature_layer="head_batchnorm"),
    HeadSpec("bilstm", bilstm_head, train_encoder=False, learning_rate=1e-3, feature_layer="head_bilstm",
             per_token=True),
)}


def get_head(name: str) -> HeadSpec:
    if name not in HEADS:
        raise ConfigError(f"unknown head '{name}'; choose one of: {', '.join(HEADS)}")
    return HEADS[name]


def resolve_head_settings(head: str, train_encoder: bool | None = None,
                          learning_rate: float | None = None) -> dict:
    """``train_encoder`` and ``learning_rate`` with ``None`` replaced by the head's defaults.

    The one place where "unset means the head's default" is decided; runs
    resolve their settings through it once (``tfbert.config.resolve``).
    """
    spec = get_head(head)
    return {"train_encoder": spec.train_encoder if train_encoder is None else bool(train_encoder),
            "learning_rate": spec.learning_rate if learning_rate is None else float(learning_rate)}
