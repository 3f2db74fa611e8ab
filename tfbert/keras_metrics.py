"""Keras metrics the built-in set lacks, for the training logs and curves of regression and multi-label runs."""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras


class PearsonCorrelation(keras.metrics.Metric):
    """Pearson's r between targets and predictions over everything seen since the last reset.

    Streams five sums (float64, so that long epochs of large values do not cancel out),
    so the figure is the exact r of the epoch, not an average of per-batch r's.
    """

    def __init__(self, name: str = "pearson", **kwargs):
        super().__init__(name=name, **kwargs)
        self._sums = [self.add_weight(name=n, initializer="zeros", dtype=tf.float64)
                      for n in ("n", "x", "y", "xx", "yy", "xy")]

    def update_state(self, y_true, y_pred, sample_weight=None):
        x = tf.reshape(tf.cast(y_true, tf.float64), [-1])
        y = tf.reshape(tf.cast(y_pred, tf.float64), [-1])
        w = tf.ones_like(x) if sample_weight is None else tf.reshape(tf.cast(sample_weight, tf.float64), [-1])
        parts = (w, w * x, w * y, w * x * x, w * y * y, w * x * y)
        return tf.group(*[total.assign_add(tf.reduce_sum(part)) for total, part in zip(self._sums, parts)])

    def result(self):
        n, x, y, xx, yy, xy = self._sums
        cov = xy - x * y / n
        var = (xx - x * x / n) * (yy - y * y / n)
        return tf.cast(tf.math.divide_no_nan(cov, tf.sqrt(tf.maximum(var, 0.0))), tf.float32)

    def reset_state(self):
        for total in self._sums:
            total.assign(0.0)


class F1FromLogits(keras.metrics.F1Score):
    """Keras' F1 score on per-label logits (a sigmoid first; probability 0.5 is the cut)."""

    def __init__(self, average: str = "micro", name: str | None = None, **kwargs):
        super().__init__(average=average, threshold=0.5, name=name or f"f1_{average}", **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(tf.cast(y_true, tf.float32), tf.sigmoid(tf.cast(y_pred, tf.float32)),
                                    sample_weight)

    def get_config(self):
        config = super().get_config()
        config.pop("threshold", None)
        config.pop("beta", None)
        return config
