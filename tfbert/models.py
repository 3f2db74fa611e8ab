"""Build classifiers by name: registry entry + encoder + head -> Keras model."""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf
import tf_keras as keras

from tfbert.encoders import load_encoder, load_preprocessor
from tfbert.errors import ConfigError
from tfbert.encoder_cache import split_at_head
from tfbert.heads import HeadSpec, get_head, resolve_head_settings
from tfbert.long_text import LongText, special_frame
from tfbert.precision import set_precision
from tfbert.registry import ModelSpec, get_spec
from tfbert.tasks import Task, get_task


@dataclasses.dataclass(frozen=True)
class _Description:
    spec: ModelSpec
    head: str
    head_config: dict
    class_names: tuple
    seq_length: int
    train_encoder: bool
    precision: str
    task: str = "classification"
    # True: reads (text, text_pair); False: single texts; None: either (ready checkpoints)
    text_pair: bool | None = False
    # how texts longer than seq_length are read (resolved for seq_length): tfbert.long_text
    long_text: LongText = LongText()


class TextClassifier(keras.Model):
    """A text classifier made of three parts: preprocessor -> encoder -> head.

    Built by :func:`create_classifier`; a Keras functional model, so ``fit``,
    ``predict``, ``evaluate``, ``save_weights`` and ``save`` (SavedModel) work
    as for any Keras model. Its input is the string tensor ``text`` [batch]
    when the preprocessor runs in-graph (TF Hub entries; a sentence-pair
    model takes ``text`` and ``text_pair``), else the int32 dict the
    preprocessor makes (HuggingFace entries); its output is the logits.

    The parts, each usable alone:

    * ``preprocessor``: strings -> the encoder's int inputs (``tfbert.encoders``).
    * ``encoder``: the encoder layer (the backbone).
    * ``core``: keras.Model, int inputs -> logits (encoder + head). This is
      what trains on tokenized batches (``tfbert.training.make_dataset``).
    * ``head_split()``: (encoder part, head part) of ``core``, cut where the
      head starts; the head part trains on cached frozen-encoder outputs.

    ``part(name)`` returns the Keras model for ``"model"`` (this one),
    ``"core"`` or ``"head"``: training code says which one it fits.

    ``task`` says what the logits mean (``tfbert.tasks``); for multi-label
    models ``thresholds`` holds the per-tag cuts (None: 0.5) that exports use.
    """

    PARTS = ("model", "core", "head")

    def __init__(self, core: keras.Model, preprocessor, description: _Description, name: str | None = None):
        if preprocessor.in_graph and description.text_pair:
            inputs = {k: keras.Input(shape=(), dtype=tf.string, name=k) for k in ("text", "text_pair")}
            outputs = core(preprocessor([inputs["text"], inputs["text_pair"]]))
        elif preprocessor.in_graph:
            text = keras.Input(shape=(), dtype=tf.string, name="text")
            inputs, outputs = text, core(preprocessor(text))
        else:  # same layers as core: the model takes the preprocessor's int dict
            inputs, outputs = core.input, core.output
        super().__init__(inputs=inputs, outputs=outputs, name=name or f"{description.head}_text_classifier")
        self.core = core
        self.preprocessor = preprocessor
        self._description = description
        self._head_split = None
        self.thresholds = None

    # -- what the model is
    @property
    def spec(self) -> ModelSpec:
        """The registry entry the encoder came from."""
        return self._description.spec

    @property
    def head_name(self) -> str:
        return self._description.head

    @property
    def head_spec(self) -> HeadSpec:
        return get_head(self._description.head)

    @property
    def head_config(self) -> dict:
        """The head options that were given (unset ones were dropped: the head function's defaults apply)."""
        return dict(self._description.head_config)

    @property
    def task(self) -> Task:
        """What the model predicts: ``tfbert.tasks.get_task(name)``."""
        return get_task(self._description.task)

    @property
    def class_names(self) -> list[str]:
        """Class names, the regression target's name, or the tag names."""
        return list(self._description.class_names)

    @property
    def num_classes(self) -> int:
        return len(self._description.class_names)

    @property
    def num_outputs(self) -> int:
        """Logits per text: 1 for two classes (sigmoid) or a regression value, else one per class or tag."""
        return self.task.num_outputs(self.class_names)

    @property
    def seq_length(self) -> int:
        return self._description.seq_length

    @property
    def train_encoder(self) -> bool:
        return self._description.train_encoder

    @property
    def precision(self) -> str:
        """``bfloat16`` (mixed) or ``float32``: the policy the layers were built with."""
        return self._description.precision

    @property
    def takes_pairs(self) -> bool | None:
        """True for a sentence-pair model (``text`` + ``text_pair``), False for single
        texts, None when it reads either (a ready HuggingFace checkpoint)."""
        return self._description.text_pair

    @property
    def long_text(self) -> LongText:
        """How texts longer than ``seq_length`` are read (``tfbert.long_text``): truncated, head + tail, or
        in windows whose logits are pooled. ``make_dataset``, ``predict_logits`` and the export follow it;
        the Keras model itself (``model(texts)``) truncates."""
        return self._description.long_text

    @property
    def takes_strings(self) -> bool:
        """True when the model's input is raw text (the preprocessor runs in-graph)."""
        return bool(self.preprocessor.in_graph)

    # -- its parts
    @property
    def encoder(self) -> keras.layers.Layer:
        return self.core.get_layer("encoder")

    def head_split(self) -> tuple[keras.Model, keras.Model]:
        """(encoder part, head part) of ``core``: see ``tfbert.encoder_cache.split_at_head``."""
        if self._head_split is None:
            with self.core.distribute_strategy.scope():  # the parts train under the core's strategy
                self._head_split = split_at_head(self.core, self.head_spec)
        return self._head_split

    def part(self, name: str) -> keras.Model:
        """The Keras model that trains on one kind of input: ``model``, ``core`` or ``head``."""
        if name == "model":
            return self
        if name == "core":
            return self.core
        if name == "head":
            return self.head_split()[1]
        raise ConfigError(f"unknown model part '{name}'; choose one of: {', '.join(self.PARTS)}")


def create_preprocessor(name: str | ModelSpec, seq_length: int = 128):
    """The preprocessor matching ``name``'s encoder (see ``tfbert.encoders``)."""
    return load_preprocessor(name, seq_length)


def create_classifier(name: str | ModelSpec, head: str = "dense", num_classes: int | None = None,
                      class_names=None, seq_length: int = 128, train_encoder: bool | None = None,
                      precision: str | None = None, task: str = "classification", text_pair: bool = False,
                      long_text: LongText | str | None = None, **head_kwargs) -> TextClassifier:
    """A Keras text classifier from a registry name and a head style.

    Args:
        name: str. Registry name, ``hf:<checkpoint>``, ``tfhub:<enc>|<pre>`` or a folder.
        head: str. ``dense``, ``cls_bn`` or ``bilstm`` (see ``tfbert.heads``).
        num_classes: int or None. Number of labels; taken from ``class_names``
            when omitted, else 2 (classification).
        class_names: list of str or None. Label names, kept with the model: the
            classes, the tags (multi-label) or the target's name (regression,
            default ``["value"]``).
        task: str. ``classification``, ``regression`` (one output) or
            ``multi_label`` (one sigmoid output per tag); see ``tfbert.tasks``.
        seq_length: int. Maximum tokens per text, at most the model's limit.
        train_encoder: bool or None. Fine-tune the encoder; default per head
            (``dense`` trains it, ``cls_bn`` and ``bilstm`` freeze it).
        precision: str or None. ``auto`` (bfloat16 mixed precision where the
            CPU/GPU computes it fast, else float32), ``bfloat16`` or ``float32``;
            default ``$TFBERT_PRECISION`` or ``auto``. TF Hub SavedModel
            encoders keep the precision they were saved in.
        text_pair: bool. A sentence-pair model (NLI, paraphrase, QA matching):
            it reads ``[CLS] text [SEP] text_pair [SEP]`` with segment ids 0
            then 1, truncated like HuggingFace's ``longest_first``; pass
            ``text_pairs=`` to ``make_dataset``/``predict_logits``, and its
            export takes ``text`` and ``text_pair``.
        long_text: ``tfbert.long_text.LongText``, a strategy name (``truncate``,
            ``head_tail``, ``windows``) or None (truncate): how texts longer
            than ``seq_length`` are read by ``make_dataset``, ``predict_logits``
            and the export. Single texts only.
        **head_kwargs: head sizes and dropout, e.g. ``hidden_units=192``;
            ``None`` values are dropped so unset CLI flags keep head defaults.

    Returns:
        TextClassifier (a keras.Model). TF Hub entries take a string tensor
        ``text`` [batch]; HF entries take the int32 dict of ``model.preprocessor``.
        Both return logits: [batch, 1] for two classes, [batch, num_classes] else.

    Example:
        >>> model = create_classifier("minilm-l6-h384-uncased", head="cls_bn",
        ...                           class_names=["neg", "pos"])
    """
    spec = get_spec(name)
    head_spec = get_head(head)
    head_kwargs = {k: v for k, v in head_kwargs.items() if v is not None}
    class_names = _resolve_names(get_task(task), class_names, num_classes)
    train_encoder = resolve_head_settings(head, train_encoder=train_encoder)["train_encoder"]

    preprocessor = load_preprocessor(spec, seq_length)
    long_text = resolve_long_text(long_text, preprocessor, seq_length, text_pair)
    core, precision = _build_in_precision(spec, preprocessor, head_spec, get_task(task).num_outputs(class_names),
                                          head_kwargs, train_encoder, precision)
    description = _Description(spec=spec, head=head, head_config=head_kwargs, class_names=tuple(class_names),
                               seq_length=seq_length, train_encoder=train_encoder, precision=precision, task=task,
                               text_pair=bool(text_pair), long_text=long_text)
    return TextClassifier(core, preprocessor, description)


def resolve_long_text(long_text, preprocessor, seq_length: int, text_pair: bool) -> LongText:
    """``long_text`` as a LongText resolved for the window (``LongText.resolve``); ConfigError for pairs."""
    settings = LongText(long_text) if isinstance(long_text, str) else (long_text or LongText())
    if not settings.active:
        return settings.resolve(seq_length)
    if text_pair:
        raise ConfigError(f"long_text={settings.strategy!r} reads single texts; sentence pairs are truncated")
    prefix, suffix = special_frame(preprocessor)
    return settings.resolve(seq_length, len(prefix) + len(suffix))


def _build_in_precision(spec, preprocessor, head_spec, num_outputs, head_kwargs, train_encoder, precision):
    """(encoder + head as a Keras model, the precision its layers were built in)."""
    previous_policy = keras.mixed_precision.global_policy()
    precision = set_precision(precision or os.environ.get("TFBERT_PRECISION", "auto"))
    try:
        encoder = load_encoder(spec, trainable=train_encoder)
        if spec.backend == "huggingface":
            from tfbert.encoders.huggingface import check_pairing
            check_pairing(preprocessor, encoder)
        return _build_core(spec, encoder, preprocessor, head_spec, num_outputs, head_kwargs), precision
    finally:
        # The policy is global; keep it only for the layers built here.
        keras.mixed_precision.set_global_policy(previous_policy)


def _build_core(spec, encoder, preprocessor, head_spec, num_outputs, head_kwargs):
    inputs = {k: keras.Input(shape=(None,), dtype=tf.int32, name=k) for k in preprocessor.input_names}
    outputs = encoder(inputs)
    try:
        logits = head_spec.build(outputs, inputs["input_mask"], num_outputs,
                                 pooling=spec.sentence_pooling, **head_kwargs)
    except TypeError as err:
        raise ConfigError(f"head '{head_spec.name}': {err}; "
                          f"see help(tfbert.heads.{head_spec.build.__name__})") from None
    uses_pooler = head_spec.name == "dense" and spec.sentence_pooling == "pooled"
    if not uses_pooler and hasattr(encoder, "freeze_pooler"):
        encoder.freeze_pooler()
    return keras.Model(inputs, logits, name=f"{head_spec.name}_classifier")


def _resolve_names(task: Task, class_names, num_classes) -> list[str]:
    if class_names is not None:
        class_names = [str(c) for c in class_names]
        if num_classes is not None and num_classes != len(class_names):
            raise ConfigError(
                f"num_classes={num_classes} but {len(class_names)} class names were given; pass one of them")
    elif task.name == "regression":
        class_names = ["value"]
    else:
        class_names = [str(i) for i in range(2 if num_classes is None else int(num_classes))]
    return task.check_names(class_names)
