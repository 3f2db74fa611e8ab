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


def transformer_head(outputs, input_mask, num_outputs, pooling="pooled", num_layers=1, num_heads=4,
                     intermediate_size=None, dropout=0.1, head_pooling="mean"):
    """Sequence -> N Model Garden TransformerEncoderBlocks -> pooling -> Dropout -> Dense.

    The KerasNLP getting-started workflow's step from a frozen backbone plus a
    linear head to a few trainable transformer layers on its token vectors.
    ``head_pooling``: ``mean`` (masked mean of the tokens) or ``cls`` (first token).
    """
    from official.nlp.modeling.layers import SelfAttentionMask, TransformerEncoderBlock

    # An identity layer marks where the head starts, for the frozen-encoder cache.
    x = keras.layers.Activation("linear", name="head_input")(outputs["sequence_output"])
    hidden = x.shape[-1]
    if head_pooling not in ("mean", "cls"):
        raise ConfigError(f"head_pooling must be mean or cls, got '{head_pooling}'")
    if hidden % num_heads:
        raise ConfigError(f"the encoder's hidden size {hidden} does not split into {num_heads} attention heads; "
                          f"pass num_heads dividing {hidden}")
    mask = SelfAttentionMask(name="head_attention_mask")(x, input_mask)
    for i in range(num_layers):
        x = TransformerEncoderBlock(num_heads, intermediate_size or 2 * hidden, "gelu", output_dropout=dropout,
                                    attention_dropout=dropout, name=f"head_transformer_{i}")([x, mask])
    x = sentence_vector({"sequence_output": x}, input_mask, head_pooling)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return _logits(x, num_outputs)


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
    HeadSpec("transformer", transformer_head, train_encoder=False, learning_rate=5e-4, feature_layer="head_input",
             per_token=True),
)}
_BUILTIN = tuple(HEADS)
_SIGNATURE = ("outputs", "input_mask", "num_outputs", "pooling")


def get_head(name: str) -> HeadSpec:
    if name not in HEADS:
        raise ConfigError(f"unknown head '{name}'; choose one of: {', '.join(HEADS)} "
                          f"(or add one with tfbert.register_head)")
    return HEADS[name]


def register_head(name: str, fn: Callable, defaults: dict | None = None, overwrite: bool = False) -> HeadSpec:
    """Add a head that ``create_classifier``, ``tfbert train --head NAME`` and sweeps can use.

    Args:
        name: str. The head's name.
        fn: callable ``fn(outputs, input_mask, num_outputs, pooling, **options) -> logits``,
            like the built-in heads: ``outputs`` is the encoder's dict
            (``sequence_output`` [batch, length, hidden], ``pooled_output``),
            ``pooling`` the registry entry's sentence pooling; name the final
            Dense layer ``logits`` and give it ``dtype="float32"``.
        defaults: dict or None. ``train_encoder`` (default False),
            ``learning_rate`` (default 1e-3), and, to let a frozen encoder's
            outputs be cached, ``feature_layer`` (the first head layer, whose
            input is the encoder output) and ``per_token`` (it reads every
            token's vector).
        overwrite: bool. Replace a head registered earlier (never a built-in one).

    Returns:
        HeadSpec. From the command line, put the call in a Python file and
        pass it with ``tfbert --plugin FILE train --head NAME ...``.

    Example:
        >>> def max_head(outputs, input_mask, num_outputs, pooling, dropout=0.2):
        ...     x = keras.layers.GlobalMaxPool1D(name="head_max")(outputs["sequence_output"])
        ...     x = keras.layers.Dropout(dropout)(x)
        ...     return keras.layers.Dense(num_outputs, name="logits", dtype="float32")(x)
        >>> tfbert.register_head("max", max_head, {"learning_rate": 1e-3})
    """
    import inspect

    defaults = dict(defaults or {})
    unknown = set(defaults) - {"train_encoder", "learning_rate", "feature_layer", "per_token"}
    if unknown:
        raise ConfigError(f"register_head('{name}'): unknown default(s) {', '.join(sorted(unknown))}; "
                          f"use train_encoder, learning_rate, feature_layer, per_token")
    if not callable(fn) or tuple(inspect.signature(fn).parameters)[:4] != _SIGNATURE:
        raise ConfigError(f"register_head('{name}'): the function must take ({', '.join(_SIGNATURE)}, **options), "
                          f"like tfbert.heads.dense_head")
    if name in _BUILTIN or (name in HEADS and not overwrite):
        raise ConfigError(f"head '{name}' exists already; pick another name"
                          + ("" if name in _BUILTIN else " or pass overwrite=True"))
    spec = HeadSpec(name, fn, train_encoder=bool(defaults.get("train_encoder", False)),
                    learning_rate=float(defaults.get("learning_rate", 1e-3)),
                    feature_layer=defaults.get("feature_layer"), per_token=bool(defaults.get("per_token", False)))
    HEADS[name] = spec
    return spec


def resolve_head_settings(head: str, train_encoder: bool | None = None,
                          learning_rate: float | None = None) -> dict:
    """``train_encoder`` and ``learning_rate`` with ``None`` replaced by the head's defaults.

    The one place where "unset means the head's default" is decided; runs
    resolve their settings through it once (``tfbert.config.resolve``).
    """
    spec = get_head(head)
    return {"train_encoder": spec.train_encoder if train_encoder is None else bool(train_encoder),
            "learning_rate": spec.learning_rate if learning_rate is None else float(learning_rate)}
