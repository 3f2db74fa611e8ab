"""Export a trained classifier as one self-contained SavedModel folder.

The folder is a plain TensorFlow SavedModel (``saved_model_cli``, TF Serving
and ``tf.saved_model.load`` read it as is) plus two small files tfbert reads::

    MODEL_DIR/
      saved_model.pb         graph + the serving_default signature
      variables/             weights
      assets/                the WordPiece vocabulary (in-graph tokenizers)
      fingerprint.pb
      tfbert.json            class names, seq_length, registry entry, head,
                             training config, metrics, signature description
      labels.txt             class names, one a line (line i = label_id i)
      tokenizer/             only when the tokenizer cannot run in-graph: the
                             HuggingFace tokenizer files (save_pretrained)

Signature ``serving_default``:

* inputs: ``text`` string [batch] (and ``text_pair`` string [batch] for
  sentence-pair models: ``"text_pair": true`` in ``tfbert.json``) -- raw texts (TF Hub encoders, and
  HuggingFace encoders with a WordPiece tokenizer, tokenized in-graph; a
  call may hold thousands: they are sorted by token count and run
  ``SERVING_BATCH`` at a time, each batch padded to its longest); or,
  for SentencePiece/BPE tokenizers, the int32 [batch, seq_length] token ids
  ``input_word_ids``, ``input_mask`` (and ``input_type_ids``), which
  :func:`tfbert.predict.load` computes with the saved ``tokenizer/``.
* outputs, by the model's task (``tfbert.tasks``): classification
  ``probabilities`` float32 [batch, num_classes] (two classes: ``[1 - p, p]``
  with ``p = sigmoid(logit)``), ``label_id`` int32 [batch], ``label`` string
  [batch]; regression ``value`` float32 [batch]; multi-label
  ``probabilities`` float32 [batch, num_tags] (a sigmoid each), ``label_ids``
  int32 [batch, num_tags] (1 where the probability reaches the tag's saved
  threshold) and ``labels`` string [batch] (the chosen tags joined by ",").
  Every task adds ``logits`` float32 [batch, outputs] and ``num_tokens`` int32
  [batch] (string inputs: tokens incl. [CLS]/[SEP] before truncation to
  seq_length, so more than seq_length means the text was truncated -- or, with
  ``long_text`` head_tail or windows in ``tfbert.json``, cut into head + tail or
  windows; token-id inputs: the unmasked tokens given).

Texts longer than seq_length follow the model's ``long_text`` strategy in the
graph (``tfbert.long_text``): head_tail keeps the first and last tokens;
windows cuts each text into overlapping windows, runs them with the other
texts' rows in sorted batches and pools their logits back to one row per text
(mean or max) before the task's outputs: as ``tfbert.predict_logits`` does.

Outputs are float32 also for models trained under a mixed-precision policy.
Loading needs only ``tensorflow`` and ``tensorflow_text`` (import it first:
it registers the tokenizer ops).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
from pathlib import Path
from typing import Mapping

import tensorflow as tf

from tfbert.errors import ConfigError, ExportError
from tfbert.files import atomic_dir, write_json, write_text

__all__ = ["export_classifier", "read_export_info", "describe_export", "EXPORT_INFO_FILE", "LABELS_FILE",
           "TOKENIZER_DIR"]

EXPORT_INFO_FILE = "tfbert.json"
LABELS_FILE = "labels.txt"
TOKENIZER_DIR = "tokenizer"
FORMAT = "tfbert-saved-model"
FORMAT_VERSION = 1
SIGNATURE = "serving_default"
#: Outputs of every export, after the task's own (``Task.output_names``).
COMMON_OUTPUTS = ("logits", "num_tokens")
# Texts per encoder call inside the string signature (sorted by length first).
SERVING_BATCH = 64

_logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- helpers


def _as_dict(obj, what: str) -> dict:
    """A config or metrics object as a dict: mappings, dataclasses, ``to_dict()``, Namespaces."""
    if isinstance(obj, Mapping):
        return dict(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if callable(getattr(obj, "to_dict", None)):
        return dict(obj.to_dict())
    if hasattr(obj, "__dict__"):
        return {k: v for k, v in vars(obj).items() if not k.startswith("_") and not callable(v)}
    raise ExportError(f"{what} must be a dict (or a dataclass), got {type(obj).__name__}")


def _merged(tokens) -> tf.RaggedTensor:
    """Ragged [batch, (pieces)] ids from [batch, (words), (pieces)] or [batch, (pieces)]."""
    if tokens.shape.rank is not None and tokens.shape.rank > 2:
        tokens = tokens.merge_dims(1, -1)
    return tokens


def _token_counts(tokens) -> tf.Tensor:
    """Pieces per text (+2 for [CLS] and [SEP]) from ragged [batch, (words), (pieces)] ids."""
    if isinstance(tokens, tf.RaggedTensor):
        if tokens.shape.rank is not None and tokens.shape.rank > 2:
            tokens = tokens.merge_dims(1, -1)
        counts = tokens.row_lengths()
    else:  # dense [batch, n]
        counts = tf.fill(tf.shape(tokens)[:1], tf.shape(tokens)[1])
    return tf.cast(counts, tf.int32) + 2


class _ExportModule(tf.Module):
    """What gets saved: the trained core, the text front end and the signature."""

    def __init__(self, core, task, class_names, thresholds, input_names, seq_length: int, long_text=None):
        super().__init__(name="tfbert_classifier")
        # Keep the Keras models out of the object graph: only their weights
        # (and the tokenizer's tables and vocabulary) are tracked, which is all
        # the serving function captures. Tracking Keras layers would also trace
        # and save every layer's call functions (slow for a transformer, and
        # useless here) and the optimizer's slot variables.
        self._callables = {"core": core.__call__}
        self.weights = list(core.variables)
        self.resources = []
        self._task = task
        self._class_names = list(class_names)
        self._thresholds = thresholds
        self._input_names = tuple(input_names)
        self._seq_length = int(seq_length)
        self._long_text = long_text  # tfbert.long_text.LongText (resolved) or None: truncate

    def set_text_front_end(self, tokenize, pack, resources) -> None:
        """``tokenize``: strings -> ragged ids; ``pack``: [ragged] -> padded dict;
        ``resources``: trackables holding the tables/assets they use."""
        self._callables.update(tokenize=tokenize, pack=pack)
        self.resources = list(resources)

    def _logits(self, inputs):
        return tf.cast(self._callables["core"](inputs, training=False), tf.float32)

    def _outputs(self, logits, num_tokens):
        return {**self._task.outputs(logits, self._class_names, self._thresholds),
                "logits": logits, "num_tokens": tf.cast(num_tokens, tf.int32)}

    def _packed_logits(self, segments):
        """Logits of one batch of tokenized texts (a list: one segment, or two for pairs),
        padded only to its longest."""
        packed = self._callables["pack"](segments)
        # Pack pads to seq_length; the encoder need only see the batch's
        # longest text, which is most of the speed on short texts.
        longest = tf.maximum(tf.reduce_max(tf.reduce_sum(tf.cast(packed["input_mask"], tf.int32), 1)), 1)
        return self._logits({k: tf.cast(packed[k], tf.int32)[:, :longest] for k in self._input_names})

    def _sorted_logits(self, segments, counts, batch_size: int):
        """Logits [n, outputs] in the callers' order, computed ``batch_size`` texts at a time by token count."""
        num_outputs = self._task.num_outputs(self._class_names)
        order = tf.argsort(counts, stable=True)
        segments = [tf.gather(s, order) for s in segments]
        n = tf.shape(counts)[0]
        num_batches = (n + batch_size - 1) // batch_size

        def body(i, parts):
            batch = [s[i * batch_size:(i + 1) * batch_size] for s in segments]
            return i + 1, parts.write(i, self._packed_logits(batch))

        parts = tf.TensorArray(tf.float32, size=num_batches, infer_shape=False,
                               element_shape=tf.TensorShape([None, num_outputs]))
        _, parts = tf.while_loop(lambda i, _: i < num_batches, body, [tf.constant(0), parts],
                                 parallel_iterations=1)
        sorted_logits = tf.reshape(parts.concat(), [-1, num_outputs])
        return tf.scatter_nd(order[:, None], sorted_logits, tf.stack([n, num_outputs]))

    def text_function(self, batch_size: int = SERVING_BATCH):
        """``text`` [n] -> outputs; texts are sorted by token count and run ``batch_size`` at a time.

        A caller may send thousands of texts in one call: sorted batches pad
        little (the library's own prediction path does the same), and the
        results come back in the callers' order.
        """
        settings = self._long_text

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False)
        def serve(text):
            tokens = self._callables["tokenize"](text)
            counts = _token_counts(tokens)
            if settings is None or not settings.active:
                return self._outputs(self._sorted_logits([tokens], counts, batch_size), counts)
            return self._outputs(self._long_text_logits(_merged(tokens), batch_size), counts)
        return serve

    def _long_text_logits(self, pieces, batch_size: int):
        """Logits [n, outputs] of texts cut by the model's long-text strategy (``tfbert.long_text.cut``):
        the rows (head + tail, or every window) run in sorted batches, pooled back per text."""
        from tfbert.long_text import cut, pool

        rows, doc = cut(pieces, self._long_text)
        row_counts = tf.cast(rows.row_lengths(), tf.int32) + 2  # pack adds [CLS] and [SEP]
        row_logits = self._sorted_logits([rows], row_counts, batch_size)
        return pool(row_logits, doc, tf.shape(pieces.row_lengths())[0], self._long_text.pooling)

    def pair_text_function(self, batch_size: int = SERVING_BATCH):
        """``text`` [n] and ``text_pair`` [n] -> outputs, for sentence-pair models.

        Pairs are packed ``[CLS] text [SEP] text_pair [SEP]`` and truncated as
        HuggingFace's ``longest_first`` (``tfbert.tokenizers.pack_inputs``);
        ``num_tokens`` counts both texts and the three special tokens.
        """
        specs = [tf.TensorSpec([None], tf.string, name="text"), tf.TensorSpec([None], tf.string, name="text_pair")]

        @tf.function(input_signature=specs, autograph=False)
        def serve(text, text_pair):
            check = tf.debugging.assert_equal(tf.size(text), tf.size(text_pair),
                                              message="text and text_pair must hold as many strings")
            with tf.control_dependencies([check]):
                first = _merged(self._callables["tokenize"](text))
                second = _merged(self._callables["tokenize"](text_pair))
            counts = tf.cast(first.row_lengths() + second.row_lengths(), tf.int32) + 3
            return self._outputs(self._sorted_logits([first, second], counts, batch_size), counts)
        return serve

    def ids_function(self):
        specs = [tf.TensorSpec([None, None], tf.int32, name=k) for k in self._input_names]

        def serve_dict(inputs):
            mask = inputs["input_mask"]
            # Python-side tokenizers report truncation themselves; here: tokens present.
            return self._outputs(self._logits(inputs), tf.reduce_sum(tf.cast(mask != 0, tf.int32), axis=1))

        if len(self._input_names) == 3:
            @tf.function(input_signature=specs, autograph=False)
            def serve(input_word_ids, input_mask, input_type_ids):
                return serve_dict(dict(input_word_ids=input_word_ids, input_mask=input_mask,
                                       input_type_ids=input_type_ids))
        else:
            @tf.function(input_signature=specs, autograph=False)
            def serve(input_word_ids, input_mask):
                return serve_dict(dict(input_word_ids=input_word_ids, input_mask=input_mask))
        return serve


def _prepare_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ExportError(f"{out_dir} is a file; pass a folder path to export into")
        if any(out_dir.iterdir()):
            if not overwrite:
                raise ExportError(
                    f"{out_dir} already exists and is not empty; pick a new folder or pass overwrite=True")
            if not (out_dir / EXPORT_INFO_FILE).exists():
                raise ExportError(
                    f"{out_dir} is not empty and is not a tfbert export, so it is not overwritten; "
                    f"pick a new or empty folder")


# --------------------------------------------------------------------------- export


def export_classifier(model, out_dir: str | os.PathLike, metrics: Mapping | None = None,
                      config: Mapping | None = None, overwrite: bool = False) -> Path:
    """Save ``model`` as a SavedModel that maps raw strings to class probabilities.

    Args:
        model: TextClassifier from :func:`tfbert.create_classifier`, trained.
        out_dir: folder to write (created; must be new or empty unless
            ``overwrite``). See the module docstring for the layout.
        metrics: dict or None. Evaluation results kept in ``tfbert.json``
            (e.g. a :func:`tfbert.metrics.classification_report`).
        config: dict or None. The training configuration kept in ``tfbert.json``.
        overwrite: bool. Replace an earlier tfbert export in ``out_dir``.

    Returns:
        pathlib.Path of the folder.

    Raises:
        ExportError: ``model`` was not built by tfbert, ``out_dir`` is in the
            way, or saving failed.

    The preprocessor's in-graph tokenizer (``Preprocessor.text_front_end``:
    TF Hub preprocess models, and HuggingFace WordPiece tokenizers rebuilt
    with the same ids) goes into the SavedModel so that it takes strings;
    other tokenizers (SentencePiece, BPE) log a warning and are saved as files
    for :func:`tfbert.predict.load`, and the SavedModel then takes token ids.
    The folder appears atomically (``tfbert.files.atomic_dir``).
    """
    from tfbert.models import TextClassifier

    if not isinstance(model, TextClassifier):
        raise ExportError("the model is not a tfbert TextClassifier; build it with tfbert.create_classifier")
    out_dir = Path(out_dir).expanduser()
    _prepare_dir(out_dir, overwrite)
    module = _ExportModule(model.core, model.task, model.class_names, getattr(model, "thresholds", None),
                           model.preprocessor.input_names, model.seq_length, model.long_text)
    front_end, reason = model.preprocessor.text_front_end()
    _check_long_text(model, front_end, reason)
    pairs = bool(model.takes_pairs)
    if front_end is not None:
        module.set_text_front_end(front_end.tokenize, _pair_pack(front_end, model) if pairs else front_end.pack,
                                  front_end.resources)
        serve = module.pair_text_function() if pairs else module.text_function()
        tokenizer_info = {"kind": "in_graph", "type": front_end.kind, "source": front_end.source}
    else:
        _logger.warning(
            "warning: the tokenizer of '%s' cannot run inside TensorFlow (%s); the SavedModel "
            "takes token ids, and the tokenizer is saved in %s/ for tfbert predict "
            "(TF Serving clients must tokenize themselves)", model.spec.name, reason, TOKENIZER_DIR)
        serve = module.ids_function()
        tokenizer_info = {"kind": "python", "type": model.spec.tokenizer_type, "path": TOKENIZER_DIR,
                          "reason": reason, "source": model.spec.tokenizer or model.spec.encoder}
    meta = _description(model, tokenizer_info, config, metrics)
    with atomic_dir(out_dir) as tmp:
        _save(module, serve.get_concrete_function(), tmp, front_end.fallback_resources if front_end else None)
        if front_end is None:
            model.preprocessor.hf_tokenizer.save_pretrained(str(tmp / TOKENIZER_DIR))
        write_json(tmp / EXPORT_INFO_FILE, meta)
        write_text(tmp / LABELS_FILE, "".join(f"{n}\n" for n in model.class_names))
    return out_dir


def _check_long_text(model, front_end, reason: str) -> None:
    """ExportError when head_tail/windows would need the string signature but the tokenizer runs in Python."""
    if front_end is None and model.long_text.active:
        raise ExportError(f"long_text={model.long_text.strategy!r} is done inside the SavedModel, on strings, "
                          f"but the tokenizer of '{model.spec.name}' cannot run in-graph ({reason}); export "
                          f"a truncate model, or use a WordPiece/TF Hub model")


def _pair_pack(front_end, model):
    """Packs [text ids, text_pair ids] as HF does: the front end's own ``pack`` may be
    tf-models' ``BertPackInputs``, whose pair truncation differs."""
    from tfbert.tokenizers import pack_inputs

    special = front_end.special_tokens
    if not special:
        raise ExportError(f"the in-graph tokenizer of '{model.spec.name}' does not say its special tokens, "
                          f"so sentence pairs cannot be packed in-graph")
    seq_length = model.seq_length
    return lambda segments: pack_inputs(segments, seq_length, special)


def _description(model, tokenizer_info: dict, config, metrics) -> dict:
    """What ``tfbert.json`` says about the export."""
    input_names = model.preprocessor.input_names
    pairs = bool(model.takes_pairs)
    if tokenizer_info["kind"] == "in_graph":
        inputs_desc = {"text": "string [batch]", **({"text_pair": "string [batch]"} if pairs else {})}
    else:
        inputs_desc = {k: f"int32 [batch, {model.seq_length}]" for k in input_names}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tfbert_version": _tfbert_version(),
        "tensorflow_version": tf.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "task": model.task.name,
        "class_names": model.class_names,
        "num_classes": model.num_classes,
        "thresholds": _thresholds(model),
        "seq_length": model.seq_length,
        # sentence pairs: [CLS] text [SEP] text_pair [SEP], truncated like HF's longest_first
        "text_pair": pairs,
        # texts longer than seq_length: truncate, head_tail or windows (tfbert.long_text), done in-graph
        "long_text": model.long_text.to_dict(),
        "signature": {"name": SIGNATURE, "inputs": inputs_desc,
                      "outputs": [*model.task.output_names, *COMMON_OUTPUTS],
                      "batch_size": SERVING_BATCH if tokenizer_info["kind"] == "in_graph" else None},
        "tokenizer": tokenizer_info,
        "model": model.spec.to_dict(),
        "head": model.head_name,
        "head_config": model.head_config,
        "train_encoder": model.train_encoder,
        "precision": model.precision,
        "config": _as_dict(config, "config") if config is not None else None,
        "metrics": _as_dict(metrics, "metrics") if metrics is not None else None,
    }


def _thresholds(model) -> list[float] | None:
    """A multi-label model's tag cuts, as its export applies them."""
    from tfbert.tasks import resolve_thresholds

    if model.task.name != "multi_label":
        return None
    return resolve_thresholds(getattr(model, "thresholds", None), model.num_classes)


def _save(module, concrete, folder: Path, fallback_resources) -> None:
    """``tf.saved_model.save`` with one retry tracking ``fallback_resources``; one-line errors."""
    try:
        try:
            tf.saved_model.save(module, str(folder), signatures={SIGNATURE: concrete})
        except (ValueError, AssertionError) as err:
            if fallback_resources is None or "untracked" not in str(err).lower():
                raise
            module.resources = fallback_resources
            tf.saved_model.save(module, str(folder), signatures={SIGNATURE: concrete})
    except Exception as err:  # noqa: BLE001 - TF raises many types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ExportError(f"saving the SavedModel failed: {type(err).__name__}: {first}") from err


def _tfbert_version() -> str:
    try:
        from tfbert import __version__
        return __version__
    except ImportError:  # pragma: no cover
        return "unknown"


def read_export_info(model_dir: str | os.PathLike) -> dict:
    """The ``tfbert.json`` of an exported folder, checked.

    Raises:
        ConfigError: the folder is missing or is not a tfbert export.
    """
    model_dir = Path(model_dir).expanduser()
    if not model_dir.is_dir():
        raise ConfigError(f"model folder not found: {model_dir}; pass the folder export_classifier wrote")
    path = model_dir / EXPORT_INFO_FILE
    if not path.is_file():
        hint = (" (it is a plain SavedModel)" if (model_dir / "saved_model.pb").exists() else "")
        raise ConfigError(
            f"{model_dir} is not a tfbert export: no {EXPORT_INFO_FILE}{hint}; "
            f"export the trained model with tfbert.export.export_classifier")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path} is not valid JSON ({err}); re-export the model") from None
    if meta.get("format") != FORMAT or not isinstance(meta.get("class_names"), list):
        raise ConfigError(f"{path} is not a tfbert export description; re-export the model")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise ConfigError(
            f"{model_dir} was exported by a newer tfbert (format {meta['format_version']}); "
            f"upgrade tfbert to load it")
    return meta


def _long_text_note(info: dict | None) -> str:
    """`` (longer texts: ...)`` for ``describe_export``; empty for truncate (and exports before it was recorded)."""
    if not info or info.get("strategy", "truncate") == "truncate":
        return ""
    if info["strategy"] == "head_tail":
        return f" (longer texts: first {info['head_tokens']} + last {info['tail_tokens']} tokens)"
    return f" (longer texts: windows every {info['stride']} tokens, logits pooled by {info['pooling']})"


def describe_export(meta: dict) -> str:
    """A few lines about an export (its ``tfbert.json``): model, classes, inputs, tokenizer, metrics."""
    spec = meta.get("model") or {}
    tok = meta.get("tokenizer") or {}
    where = "in-graph" if tok.get("kind") == "in_graph" else f"Python-side, {tok.get('path')}/"
    lines = [
        f"model:      {spec.get('name')} ({spec.get('backend')}), head {meta.get('head')}",
        f"task:       {meta.get('task', 'classification')}"
        + (f" (thresholds {', '.join(f'{c:g}' for c in meta['thresholds'])})" if meta.get("thresholds") else ""),
        f"{'classes:' if meta.get('task', 'classification') == 'classification' else 'labels:':<12}"
        f"{', '.join(meta['class_names'])}",
        f"seq_length: {meta.get('seq_length')}" + _long_text_note(meta.get("long_text")),
        f"reads:      {'sentence pairs (text, text_pair)' if meta.get('text_pair') else 'single texts'}",
        f"inputs:     {', '.join(f'{k} {v}' for k, v in meta['signature']['inputs'].items())}",
        f"tokenizer:  {tok.get('type')} ({where})",
        f"outputs:    {', '.join(meta['signature']['outputs'])}",
        f"created:    {meta.get('created')} (tfbert {meta.get('tfbert_version')}, TF {meta.get('tensorflow_version')})",
    ]
    metrics = meta.get("metrics") or {}
    keys = ("accuracy", "f1_macro", "f1", "roc_auc", "pearson", "spearman", "rmse", "f1_micro")
    shown = {k: metrics[k] for k in keys if isinstance(metrics.get(k), (int, float))}
    if shown:
        lines.append("metrics:    " + ", ".join(f"{k} {v:.4f}" for k, v in shown.items()))
    return "\n".join(lines)
