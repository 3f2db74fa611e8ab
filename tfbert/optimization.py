"""AdamW with linear warmup then linear decay, from tf-models-official."""

from __future__ import annotations

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
    optimizer.gradient_clip_norm = clip_norm if clip_norm else 0.0
    return optimizer


def current_learning_rate(optimizer) -> float:
    lr = optimizer.learning_rate
    if callable(lr):
        lr = lr(optimizer.iterations)
    return float(lr.numpy() if hasattr(lr, "numpy") else lr)
