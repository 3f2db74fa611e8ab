"""AdamW with linear warmup then linear decay, from tf-models-official."""

from __future__ import annotations

import tensorflow as tf
from official.nlp import optimization as nlp_optimization

from tfbert.errors import ConfigError


def create_optimizer(learning_rate: float, train_steps: int, warmup_ratio: float = 0.1,
                     warmup_steps: int | None = None, weight_decay: float = 0.01,
                     clip_norm: float | None = 1.0, end_learning_rate: float = 0.0):
    """``official.nlp.optimization.create_optimizer(optimizer_type='adamw')``, configurable.

    Args:
        learning_rate: float. Peak rate, reached at the end of warmup.
        train_steps: int. Total optimizer steps (epochs x steps per epoch).
        warmup_ratio: float. Fraction of steps spent warming up (ignored if
            ``warmup_steps`` is given).
        warmup_steps: int or None. Absolute warmup length.
        weight_decay: float. Decoupled weight decay; LayerNorm and biases are
            excluded, as in BERT.
        clip_norm: float or None. Clip gradients to this global norm.
        end_learning_rate: float. Rate at the last step.
    """
    if learning_rate <= 0:
        raise ConfigError(f"learning_rate must be > 0, got {learning_rate}")
    if train_steps < 1:
        raise ConfigError(f"need at least one training step, got {train_steps}; is the data empty?")
    if not 0 <= warmup_ratio < 1:
        raise ConfigError(f"warmup_ratio must be in [0, 1), got {warmup_ratio}")
    if warmup_steps is None:
        warmup_steps = int(round(train_steps * warmup_ratio))
    optimizer = nlp_optimization.create_optimizer(
        init_lr=learning_rate, num_train_steps=train_steps, num_warmup_steps=warmup_steps,
        end_lr=end_learning_rate, optimizer_type="adamw")
    # create_optimizer hard-codes decay 0.01 and clipping 1.0; both are read at
    # apply time, so setting the attributes makes them parameters.
    optimizer.weight_decay_rate = weight_decay
    # Clip as a gradient transformer, which Keras applies after the replicas' gradients
    # are summed: AdamWeightDecay's own clipping acts on each replica's gradient before
    # the sum (as TF1 BERT did), so N replicas would not update as one device does.
    optimizer.gradient_clip_norm = 0.0
    optimizer.gradient_transformers = [clip_by_true_global_norm(clip_norm)] if clip_norm else []
    return optimizer


def clip_by_true_global_norm(clip_norm: float):
    """A Keras gradient transformer: clip all gradients to a global norm of ``clip_norm``.

    An embedding's gradient arrives as slices with one row per token occurrence;
    ``tf.clip_by_global_norm`` would take the norm of those rows, not of the
    gradient they sum to, and a gradient summed over replicas arrives grouped
    otherwise. Summing repeated rows first clips by the gradient's own norm (as
    PyTorch's ``clip_grad_norm_`` does), the same on one device and on many.
    """
    def transform(grads_and_vars):
        grads, variables = zip(*grads_and_vars)
        clipped, _ = tf.clip_by_global_norm([_summed_rows(g) for g in grads], clip_norm)
        return list(zip(clipped, variables))

    return transform


def _summed_rows(grad):
    if not isinstance(grad, tf.IndexedSlices):
        return grad
    rows, position = tf.unique(grad.indices)
    values = tf.math.unsorted_segment_sum(grad.values, position, tf.shape(rows)[0])
    return tf.IndexedSlices(values, rows, grad.dense_shape)


def current_learning_rate(optimizer) -> float:
    lr = optimizer.learning_rate
    if callable(lr):
        lr = lr(optimizer.iterations)
    return float(lr.numpy() if hasattr(lr, "numpy") else lr)
