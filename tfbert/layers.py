"""Small Keras layers the heads need that Keras 2 lacks."""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402


class MaskedGlobalMaxPool1D(keras.layers.Layer):
    """Max over time that ignores padded steps.

    Keras 2's GlobalMaxPool1D ignores masks, so padding positions (whose LSTM
    outputs are not meaningful) could win the max.
    """

    def call(self, sequence, input_mask):
        mask = tf.cast(input_mask, tf.bool)[:, :, None]
        lowest = tf.cast(sequence.dtype.min, sequence.dtype)
        return tf.reduce_max(tf.where(mask, sequence, lowest), axis=1)
