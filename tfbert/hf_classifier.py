"""Fine-tuned HuggingFace classification checkpoints, used as they are (no training).

A ``...ForSequenceClassification`` checkpoint (an SST-2 or NSMC model from the
hub, or your own ``save_pretrained`` folder) becomes a ``TextClassifier``
whose class names are the config's ``id2label``, so everything that takes a
trained tfbert model takes it too::

    model = load_hf_classifier("hf:./sst2-checkpoint")
    model.class_names                     # ['NEGATIVE', 'POSITIVE']
    ReadyPredictor(model).predict(["a fine film"])
    export_classifier(model, "sst2-export")

Two labels are served as one logit (``logit_1 - logit_0``), tfbert's binary
layout: its sigmoid is the checkpoint's softmax probability of label 1.
The config's ``problem_type`` picks the task: ``regression`` checkpoints
predict a value, ``multi_label_classification`` ones a sigmoid per label
(threshold 0.5), ``tfbert.tasks``.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

from tfbert.errors import ConfigError

__all__ = ["load_hf_classifier", "ReadyPredictor", "is_ready_name", "ready_output_dir"]

HEAD_NAME = "hf_classification"


def is_ready_name(name: str) -> bool:
    """True for names the predict/evaluate/export commands read as checkpoints: ``hf:...``."""
    return isinstance(name, str) and name.startswith("hf:")


def ready_output_dir(name: str, data) -> str:
    """Where ``tfbert evaluate hf:...`` writes its report: inside a local checkpoint folder, else here."""
    import os

    from tfbert.evaluate import _data_name

    folder = name[3:] if is_ready_name(name) else name
    if os.path.isdir(os.path.expanduser(folder)):
        return os.path.join(os.path.expanduser(folder), f"eval_{_data_name(data)}")
    return f"eval_{_data_name(folder)}_{_data_name(data)}"


class HFClassifierLogits(keras.layers.Layer):
    """The checkpoint's logits from tfbert's int inputs; two labels as one logit."""

    def __init__(self, hf_model, uses_token_type_ids: bool, softmax_pair: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.hf_model = hf_model
        self.uses_token_type_ids = uses_token_type_ids
        self.softmax_pair = softmax_pair  # two labels of one softmax (not two independent sigmoids)

    def call(self, inputs, training=None):
        kwargs = dict(input_ids=inputs["input_word_ids"], attention_mask=inputs["input_mask"])
        if self.uses_token_type_ids and "input_type_ids" in inputs:
            kwargs["token_type_ids"] = inputs["input_type_ids"]
        logits = tf.cast(self.hf_model(**kwargs, training=False).logits, tf.float32)
        if logits.shape[-1] == 2 and self.softmax_pair:
            return logits[:, 1:2] - logits[:, 0:1]
        return logits


def _load_model(spec):
    from transformers import TFAutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    from tfbert.encoders import checkpoint_files
    from tfbert.encoders.huggingface import _load_error

    hf_logging.set_verbosity_error()
    kwargs = checkpoint_files.load_kwargs(spec.name, spec.encoder_path)
    try:
        model, info = TFAutoModelForSequenceClassification.from_pretrained(
            spec.encoder_path, output_loading_info=True, **kwargs)
    except Exception as err:
        raise checkpoint_files.explain(spec.name, spec.encoder_path, err) or _load_error(
            spec, "classification checkpoint", err) from None
    head_missing = [k for k in info.get("missing_keys", []) if "classifier" in k or "score" in k]
    if head_missing:
        architectures = ", ".join(getattr(model.config, "architectures", None) or ["none listed"])
        raise ConfigError(
            f"'{spec.name}' is not a fine-tuned classification checkpoint (its config lists {architectures}; "
            f"no classifier weights): train a head on it with tfbert train, or pass a "
            f"...ForSequenceClassification checkpoint")
    return model


#: HuggingFace ``problem_type`` -> tfbert task (HF's default with one label is regression).
_TASKS = {"single_label_classification": "classification", "multi_label_classification": "multi_label",
          "regression": "regression"}


def _task_and_names(config, name: str) -> tuple[str, list[str]]:
    problem = getattr(config, "problem_type", None) or ("regression" if config.num_labels == 1
                                                         else "single_label_classification")
    if problem not in _TASKS:
        raise ConfigError(f"'{name}': unknown problem_type '{problem}' in its config.json; expected one of "
                          f"{', '.join(_TASKS)}")
    task = _TASKS[problem]
    id2label = {int(k): str(v) for k, v in (config.id2label or {}).items()}
    if task == "regression":
        label = id2label.get(0, "LABEL_0")
        return task, ["value" if label == "LABEL_0" else label]
    if sorted(id2label) != list(range(config.num_labels)) or config.num_labels < (2 if task == "classification" else 1):
        raise ConfigError(f"'{name}': its config's id2label {id2label} does not name labels 0..{config.num_labels - 1}; "
                          f"fix id2label in its config.json")
    return task, [id2label[i] for i in range(config.num_labels)]


def _default_length(preprocessor, config) -> int:
    # RoBERTa-style models reserve two positions past the padding id.
    reserved = 2 if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert") else 0
    limits = [512, preprocessor.spec.max_seq_length,
              getattr(config, "max_position_embeddings", 512) - reserved]
    model_max = getattr(preprocessor.hf_tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and model_max < 100_000:
        limits.append(model_max)
    return int(min(limits))


def load_hf_classifier(name, seq_length: int | None = None, text_pair: bool | None = None):
    """A ``TextClassifier`` from a HuggingFace ``...ForSequenceClassification`` checkpoint.

    Args:
        name: ``hf:<checkpoint id or folder>``, a folder, or a huggingface registry name.
        seq_length: int or None. Tokens read per text; default the shortest of
            512, the tokenizer's and the model's limits.
        text_pair: bool or None. Whether the checkpoint reads sentence pairs
            (an MNLI model does); None: either, as given (its export then
            takes single texts; pass True to export a pair model).

    Raises:
        ConfigError: not a HuggingFace checkpoint, no classifier weights, or
            labels that are not single-label classes.
    """
    from tfbert.encoders import load_preprocessor
    from tfbert.models import TextClassifier, _Description
    from tfbert.registry import get_spec

    spec = get_spec(name)
    if spec.backend != "huggingface":
        raise ConfigError(f"'{spec.name}' is a {spec.backend} model; a ready classifier must be a HuggingFace "
                          f"...ForSequenceClassification checkpoint (hf:<id or folder>)")
    hf_model = _load_model(spec)
    task, class_names = _task_and_names(hf_model.config, spec.name)
    preprocessor = load_preprocessor(spec, seq_length or min(512, spec.max_seq_length))
    if seq_length is None:
        seq_length = preprocessor.seq_length = _default_length(preprocessor, hf_model.config)
    inputs = {k: keras.Input(shape=(None,), dtype=tf.int32, name=k) for k in preprocessor.input_names}
    logits = HFClassifierLogits(hf_model, spec.uses_token_type_ids, softmax_pair=task == "classification",
                                name="logits")(inputs)
    core = keras.Model(inputs, logits, name="hf_classifier")
    description = _Description(spec=spec, head=HEAD_NAME, head_config={}, class_names=tuple(class_names),
                               seq_length=seq_length, train_encoder=False, precision="float32", task=task,
                               text_pair=text_pair)
    return TextClassifier(core, preprocessor, description)


class ReadyPredictor:
    """``Predictor``'s interface (``predict``, ``predict_outputs``, ``predict_proba``, ``predict_arrays``)
    on an in-memory model."""

    def __init__(self, model):
        self.model = model
        self.task = model.task
        self.class_names = list(model.class_names)
        self.seq_length = model.seq_length
        self.info = {"task": self.task.name, "class_names": self.class_names, "thresholds": None}

    def predict_outputs(self, texts, batch_size: int | None = None, progress: bool | None = None,
                        text_pairs=None):
        """(the task's outputs and ``logits`` as arrays, how many texts were truncated): an export's answer."""
        from tfbert.predict import _check_texts
        from tfbert.training import predict_logits

        texts = _check_texts(texts)
        pairs = None if text_pairs is None else _check_texts(text_pairs, what="second text")
        logits = predict_logits(self.model, texts, batch_size=batch_size or 64, text_pairs=pairs)
        outputs = {k: np.asarray(v) for k, v in self.task.outputs(tf.constant(logits), self.class_names).items()}
        counts = self.model.preprocessor.token_ids(texts, max_length=1_000_000, text_pairs=pairs).row_lengths().numpy()
        return {**outputs, "logits": logits}, int((counts > self.seq_length).sum())

    def predict_arrays(self, texts, batch_size: int | None = None, progress: bool | None = None,
                       text_pairs=None):
        """Classification: (probabilities [n, classes], label ids [n], how many texts were truncated)."""
        if self.task.name != "classification":
            raise ConfigError(f"this checkpoint is a {self.task.name} model; use predict() or predict_outputs()")
        outputs, truncated = self.predict_outputs(texts, batch_size, progress, text_pairs=text_pairs)
        return outputs["probabilities"].astype(np.float32), outputs["label_id"].astype(np.int64), truncated

    def predict_proba(self, texts, batch_size: int | None = None, progress: bool | None = None,
                      text_pairs=None) -> np.ndarray:
        if self.task.name == "regression":
            raise ConfigError("this checkpoint is a regression model: it predicts values; use predict()")
        outputs, _ = self.predict_outputs(texts, batch_size, progress, text_pairs=text_pairs)
        return outputs["probabilities"].astype(np.float32)

    def predict(self, texts, batch_size: int | None = None, progress: bool | None = None,
                text_pairs=None) -> list[dict]:
        outputs, _ = self.predict_outputs(texts, batch_size, progress, text_pairs=text_pairs)
        return [self.task.describe(outputs, self.class_names, i) for i in range(len(outputs["logits"]))]

    __call__ = predict
