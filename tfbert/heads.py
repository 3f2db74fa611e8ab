"""Classification heads: encoder outputs -> logits.

Every head has the signature ``fn(outputs, input_mask, num_outputs, pooling,
**kwargs) -> logits`` and names its final layer ``logits`` (kept in float32
under mixed precision so losses stay stable).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from tfbert.encoders.base import sentence_vector  # noqa: E402
from tfbert.errors import ConfigError  # noqa: E402
from tfbert.layers import MaskedGlobalMaxPool1D  # noqa: E402


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


HEADS = {"dense": dense_head, "cls_bn": cls_bn_head, "bilstm": bilstm_head}

# Frozen-encoder heads train only a freshly initialised head, which needs a far
# larger step than fine-tuning a pretrained encoder does.
HEAD_DEFAULTS = {
    "dense": {"train_encoder": True, "learning_rate": 3e-5},
    "cls_bn": {"train_encoder": False, "learning_rate": 1e-3},
    "bilstm": {"train_encoder": False, "learning_rate": 1e-3},
}


def get_head(name: str):
    if name not in HEADS:
        raise ConfigError(f"unknown head '{name}'; choose one of: {', '.join(HEADS)}")
    return HEADS[name]
