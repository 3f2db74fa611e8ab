"""Gradient accumulation: big effective batches on small memory.

``accumulate(model, steps)`` wraps a Keras model so that ``fit`` computes
gradients on each (micro-)batch, averages ``steps`` of them and applies one
optimizer update: batches of 8 with ``steps=4`` update the weights as one
batch of 32 would (the losses are means over equal-sized batches; tested to
1e-5). The optimizer, its learning-rate schedule and weight decay see one
step per update.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from tfbert.errors import ConfigError


class GradientAccumulation(keras.Model):
    """Fits ``inner``'s weights with an update every ``steps`` batches (see the module docstring).

    Micro-batches left over at the end of an epoch carry on into the next;
    at the end of training fewer than ``steps`` of them may remain unapplied.
    """

    def __init__(self, inner: keras.Model, steps: int, **kwargs):
        super().__init__(name=f"{inner.name}_accumulating", **kwargs)
        if not isinstance(steps, int) or steps < 1:
            raise ConfigError(f"accumulation steps must be an integer >= 1, got {steps!r}")
        self.inner = inner
        self.steps = steps
        self._sums = [tf.Variable(tf.zeros_like(v), trainable=False, name=f"accum_{i}")
                      for i, v in enumerate(inner.trainable_variables)]
        self._count = tf.Variable(0, trainable=False, dtype=tf.int64, name="accum_count")

    def call(self, inputs, training=None):
        return self.inner(inputs, training=training)

    def compile(self, optimizer, **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        # Slots are created up front: an update runs inside tf.cond, where new variables cannot be made.
        if hasattr(optimizer, "_create_all_weights"):
            optimizer._create_all_weights(self.inner.trainable_variables)

    def train_step(self, data):
        x, y = data[:2] if isinstance(data, tuple) else (data, None)
        variables = self.inner.trainable_variables
        with tf.GradientTape() as tape:
            y_pred = self.inner(x, training=True)
            loss = self.compiled_loss(y, y_pred, regularization_losses=self.inner.losses)
        for total, grad in zip(self._sums, tape.gradient(loss, variables)):
            if grad is not None:
                total.assign_add(tf.convert_to_tensor(grad) / self.steps)
        self._count.assign_add(1)
        tf.cond(self._count % self.steps == 0, lambda: self._apply(variables), lambda: tf.constant(False))
        self.compiled_metrics.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}

    def _apply(self, variables):
        self.optimizer.apply_gradients(zip([tf.identity(t) for t in self._sums], variables))
        with tf.control_dependencies([self.optimizer.iterations]):
            for total in self._sums:
                total.assign(tf.zeros_like(total))
        return tf.constant(True)
