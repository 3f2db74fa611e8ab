"""Build classifiers by name: registry entry + encoder + head -> Keras model."""

from __future__ import annotations

import dataclasses
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from tfbert.encoders import load_encoder, load_preprocessor  # noqa: E402
from tfbert.errors import ConfigError  # noqa: E402
from tfbert.heads import HEAD_DEFAULTS, get_head  # noqa: E402
from tfbert.precision import set_precision  # noqa: E402
from tfbert.registry import ModelSpec, get_spec  # noqa: E402


@dataclasses.dataclass
class ClassifierInfo:
    """What tfbert keeps with a built model (``model.tfbert``).

    Attributes:
        spec: ModelSpec. The registry entry the encoder came from.
        head: str. Head name.
        head_config: dict. Head keyword arguments actually used.
        num_classes: int. Number of labels (binary models have one logit).
        class_names: list of str. Label names, index = class id.
        seq_length: int. Maximum tokens per text.
        train_encoder: bool. Whether the encoder's weights train.
        preprocessor: Preprocessor. Strings -> the core model's int inputs.
        core: keras.Model. Int inputs -> logits (the trainable part).
        precision: str. ``bfloat16`` (mixed) or ``float32``.
    """

    spec: ModelSpec
    head: str
    head_config: dict
    num_classes: int
    class_names: list
    seq_length: int
    train_encoder: bool
    preprocessor: object
    core: keras.Model
    precision: str = "float32"
    _head_split: tuple | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def num_outputs(self) -> int:
        return 1 if self.num_classes == 2 else self.num_classes

    @property
    def takes_strings(self) -> bool:
        """True when the Keras model's input is raw text (TF Hub backend)."""
        return self.preprocessor.in_graph

    def encoder(self):
        return self.core.get_layer("encoder")

    def head_split(self):
        """(encoder part, head part) of ``core``: see ``tfbert.encoder_cache.split_at_head``."""
        if self._head_split is None:
            from tfbert.encoder_cache import split_at_head
            self._head_split = split_at_head(self.core, self.head)
        return self._head_split


def create_preprocessor(name: str | ModelSpec, seq_length: int = 128):
    """The preprocessor matching ``name``'s encoder (see ``tfbert.encoders``)."""
    return load_preprocessor(name, seq_length)


def create_classifier(name: str | ModelSpec, head: str = "dense", num_classes: int | None = None,
                      class_names=None, seq_length: int = 128, train_encoder: bool | None = None,
                      precision: str | None = None, **head_kwargs) -> keras.Model:
    """A Keras functional text classifier from a registry name and a head style.

    Args:
        name: str. Registry name, ``hf:<checkpoint>``, ``tfhub:<enc>|<pre>`` or a folder.
        head: str. ``dense``, ``cls_bn`` or ``bilstm`` (see ``tfbert.heads``).
        num_classes: int or None. Number of labels; taken from ``class_names``
            when omitted, else 2.
        class_names: list of str or None. Label names, kept with the model.
        seq_length: int. Maximum tokens per text, at most the model's limit.
        train_encoder: bool or None. Fine-tune the encoder; default per head
            (``dense`` trains it, ``cls_bn`` and ``bilstm`` freeze it).
        precision: str or None. ``auto`` (bfloat16 mixed precision where the
            CPU/GPU computes it fast, else float32), ``bfloat16`` or ``float32``;
            default ``$TFBERT_PRECISION`` or ``auto``. TF Hub SavedModel
            encoders keep the precision they were saved in.
        **head_kwargs: head sizes and dropout, e.g. ``hidden_units=192``;
            ``None`` values are dropped so unset CLI flags keep head defaults.

    Returns:
        keras.Model. TF Hub entries take a string tensor ``text`` [batch]; HF
        entries take the int32 dict of ``model.tfbert.preprocessor``. Both
        return logits: [batch, 1] for two classes, [batch, num_classes] else.
        ``model.tfbert`` is a :class:`ClassifierInfo`.

    Example:
        >>> model = create_classifier("minilm-l6-h384-uncased", head="cls_bn",
        ...                           class_names=["neg", "pos"])
    """
    spec = get_spec(name)
    head_fn = get_head(head)
    head_kwargs = {k: v for k, v in head_kwargs.items() if v is not None}
    class_names, num_classes = _resolve_classes(class_names, num_classes)
    if train_encoder is None:
        train_encoder = HEAD_DEFAULTS[head]["train_encoder"]

    preprocessor = load_preprocessor(spec, seq_length)
    previous_policy = keras.mixed_precision.global_policy()
    precision = set_precision(precision or os.environ.get("TFBERT_PRECISION", "auto"))
    try:
        encoder = load_encoder(spec, trainable=train_encoder)
        core = _build_core(spec, encoder, preprocessor, head, head_fn, num_classes, head_kwargs)
    finally:
        # The policy is global; keep it only for the layers built here.
        keras.mixed_precision.set_global_policy(previous_policy)

    if preprocessor.in_graph:
        text = keras.Input(shape=(), dtype=tf.string, name="text")
        model = keras.Model(text, core(preprocessor(text)), name=f"{head}_text_classifier")
    else:
        model = core
    model.tfbert = ClassifierInfo(
        spec=spec, head=head, head_config=head_kwargs, num_classes=num_classes,
        class_names=class_names, seq_length=seq_length, train_encoder=train_encoder,
        preprocessor=preprocessor, core=core, precision=precision)
    return model


def _build_core(spec, encoder, preprocessor, head, head_fn, num_classes, head_kwargs):
    inputs = {k: keras.Input(shape=(None,), dtype=tf.int32, name=k) for k in preprocessor.input_names}
    outputs = encoder(inputs)
    num_outputs = 1 if num_classes == 2 else num_classes
    try:
        logits = head_fn(outputs, inputs["input_mask"], num_outputs,
                         pooling=spec.sentence_pooling, **head_kwargs)
    except TypeError as err:
        raise ConfigError(f"head '{head}': {err}; see help(tfbert.heads.{head_fn.__name__})") from None
    uses_pooler = head == "dense" and spec.sentence_pooling == "pooled"
    if not uses_pooler and hasattr(encoder, "freeze_pooler"):
        encoder.freeze_pooler()
    return keras.Model(inputs, logits, name=f"{head}_classifier")


def _resolve_classes(class_names, num_classes):
    if class_names is not None:
        class_names = [str(c) for c in class_names]
        if num_classes is not None and num_classes != len(class_names):
            raise ConfigError(
                f"num_classes={num_classes} but {len(class_names)} class names were given; pass one of them")
        num_classes = len(class_names)
    num_classes = 2 if num_classes is None else int(num_classes)
    if num_classes < 2:
        raise ConfigError(f"a classifier needs at least 2 classes, got {num_classes}")
    if class_names is None:
        class_names = [str(i) for i in range(num_classes)]
    return class_names, num_classes
