"""Small Keras layers the heads need that Keras 2 lacks."""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras


class MaskedGlobalMaxPool1D(keras.layers.Layer):
    """Max over time that ignores padded steps.

    Keras 2's GlobalMaxPool1D ignores masks, so padding positions (whose LSTM
    outputs are not meaningful) could win the max.
    """

    def call(self, sequence, input_mask):
        mask = tf.cast(input_mask, tf.bool)[:, :, None]
        lowest = tf.cast(sequence.dtype.min, sequence.dtype)
        return tf.reduce_max(tf.where(mask, sequence, lowest), axis=1)
