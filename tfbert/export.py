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

* inputs: ``text`` string [batch] -- raw texts (TF Hub encoders, and
  HuggingFace encoders with a WordPiece tokenizer, tokenized in-graph); or,
  for SentencePiece/BPE tokenizers, the int32 [batch, seq_length] token ids
  ``input_word_ids``, ``input_mask`` (and ``input_type_ids``), which
  :func:`tfbert.predict.load` computes with the saved ``tokenizer/``.
* outputs: ``probabilities`` float32 [batch, num_classes] (two classes:
  ``[1 - p, p]`` with ``p = sigmoid(logit)``), ``label_id`` int32 [batch],
  ``label`` string [batch], ``logits`` float32 [batch, 1 or num_classes] and
  ``num_tokens`` int32 [batch] (string inputs: tokens incl. [CLS]/[SEP]
  before truncation to seq_length, so more than seq_length means the text was
  truncated; token-id inputs: the unmasked tokens given).

Outputs are float32 also for models trained under a mixed-precision policy.
Loading needs only ``tensorflow`` and ``tensorflow_text`` (import it first:
it registers the tokenizer ops).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402

from tfbert.errors import ConfigError, ExportError  # noqa: E402

__all__ = ["export_classifier", "read_export_info", "EXPORT_INFO_FILE", "LABELS_FILE",
           "TOKENIZER_DIR", "add_export_info_parser", "run_export_info"]

EXPORT_INFO_FILE = "tfbert.json"
LABELS_FILE = "labels.txt"
TOKENIZER_DIR = "tokenizer"
FORMAT = "tfbert-saved-model"
FORMAT_VERSION = 1
SIGNATURE = "serving_default"
OUTPUTS = ("probabilities", "label_id", "label", "logits", "num_tokens")

_logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- helpers


def _json_safe(value: Any) -> Any:
    """Config/metrics -> JSON: numpy scalars/arrays to Python, NaN/inf to None, rest str()."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars, tf EagerTensor.numpy()
        return _json_safe(value.tolist())
    if hasattr(value, "numpy"):
        return _json_safe(value.numpy())
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


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


def _token_counts(tokens) -> tf.Tensor:
    """Pieces per text (+2 for [CLS] and [SEP]) from ragged [batch, (words), (pieces)] ids."""
    if isinstance(tokens, tf.RaggedTensor):
        if tokens.shape.rank is not None and tokens.shape.rank > 2:
            tokens = tokens.merge_dims(1, -1)
        counts = tokens.row_lengths()
    else:  # dense [batch, n]
        counts = tf.fill(tf.shape(tokens)[:1], tf.shape(tokens)[1])
    return tf.cast(counts, tf.int32) + 2


def _in_graph_tokenizer(info):
    """(tokenizer layer, None) for a HuggingFace WordPiece tokenizer, else (None, reason)."""
    spec = info.spec
    hf_tokenizer = getattr(info.preprocessor, "hf_tokenizer", None)
    if hf_tokenizer is None:
        return None, "the preprocessor has no HuggingFace tokenizer"
    if (spec.tokenizer_type or "wordpiece").lower() != "wordpiece":
        return None, f"its tokenizer is {spec.tokenizer_type}, not WordPiece"
    try:
        from tfbert.tokenizers import WordPieceTokenizer
    except ImportError as err:  # pragma: no cover - the package ships it
        return None, f"tfbert.tokenizers.WordPieceTokenizer is unavailable ({err})"
    try:
        return WordPieceTokenizer.from_hf(hf_tokenizer), None
    except ExportError as err:
        return None, str(err).split(";")[0]


class _ExportModule(tf.Module):
    """What gets saved: the trained core, the text front end and the signature."""

    def __init__(self, core, class_names, binary: bool, input_names, seq_length: int):
        super().__init__(name="tfbert_classifier")
        # Keep the Keras models out of the object graph: only their weights
        # (and the tokenizer's tables and vocabulary) are tracked, which is all
        # the serving function captures. Tracking Keras layers would also trace
        # and save every layer's call functions (slow for a transformer, and
        # useless here) and the optimizer's slot variables.
        self._callables = {"core": core.__call__}
        self.weights = list(core.variables)
        self.resources = []
        self._class_names = list(class_names)
        self._binary = binary
        self._input_names = tuple(input_names)
        self._seq_length = int(seq_length)

    def set_text_front_end(self, tokenize, pack, resources) -> None:
        """``tokenize``: strings -> ragged ids; ``pack``: [ragged] -> padded dict;
        ``resources``: trackables holding the tables/assets they use."""
        self._callables.update(tokenize=tokenize, pack=pack)
        self.resources = list(resources)

    def _outputs(self, inputs, num_tokens):
        logits = tf.cast(self._callables["core"](inputs, training=False), tf.float32)
        if self._binary:
            p = tf.sigmoid(logits[:, 0])
            probabilities = tf.stack([1.0 - p, p], axis=1)
        else:
            probabilities = tf.nn.softmax(logits, axis=-1)
        label_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        label = tf.gather(tf.constant(self._class_names), label_id)
        return {"probabilities": probabilities, "label_id": label_id, "label": label,
                "logits": logits, "num_tokens": tf.cast(num_tokens, tf.int32)}

    def text_function(self):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False)
        def serve(text):
            tokens = self._callables["tokenize"](text)
            packed = self._callables["pack"]([tokens])
            # Pack pads to seq_length; the encoder need only see the batch's
            # longest text, which is most of the speed on short texts.
            longest = tf.maximum(tf.reduce_max(tf.reduce_sum(tf.cast(packed["input_mask"], tf.int32), 1)), 1)
            inputs = {k: tf.cast(packed[k], tf.int32)[:, :longest] for k in self._input_names}
            return self._outputs(inputs, _token_counts(tokens))
        return serve

    def ids_function(self):
        specs = [tf.TensorSpec([None, None], tf.int32, name=k) for k in self._input_names]

        def serve_dict(inputs):
            mask = inputs["input_mask"]
            # Python-side tokenizers report truncation themselves; here: tokens present.
            return self._outputs(inputs, tf.reduce_sum(tf.cast(mask != 0, tf.int32), axis=1))

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
        model: keras.Model from :func:`tfbert.create_classifier`, trained.
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

    HuggingFace WordPiece tokenizers are rebuilt in-graph (same ids as the
    checkpoint's tokenizer) so the SavedModel takes strings; other tokenizers
    (SentencePiece, BPE) log a warning and are saved as files for
    :func:`tfbert.predict.load`, and the SavedModel then takes token ids.
    """
    info = getattr(model, "tfbert", None)
    if info is None:
        raise ExportError("the model has no .tfbert info; build it with tfbert.create_classifier")
    out_dir = Path(out_dir).expanduser()
    _prepare_dir(out_dir, overwrite)

    binary = info.num_classes == 2
    input_names = tuple(info.preprocessor.input_names)
    module = _ExportModule(info.core, info.class_names, binary, input_names, info.seq_length)
    tokenizer_info: dict[str, Any]
    hf_tokenizer = None
    fallback_resources = None
    if info.takes_strings:  # TF Hub preprocess model
        pre = info.preprocessor
        hub_object = getattr(pre, "_hub_object", pre)
        # The tokenize sub-object holds the vocabulary table and asset; the
        # whole preprocess model is the fallback if its resources live elsewhere.
        module.set_text_front_end(pre.tokenize_layer, pre.pack_layer,
                                  [getattr(hub_object, "tokenize", hub_object)])
        fallback_resources = [hub_object]
        serve = module.text_function()
        tokenizer_info = {"kind": "in_graph", "type": "tfhub_preprocess",
                          "source": info.spec.preprocess}
    else:
        tokenizer, reason = _in_graph_tokenizer(info)
        if tokenizer is not None:
            from official.nlp.modeling.layers import BertPackInputs

            pack = BertPackInputs(info.seq_length, special_tokens_dict=tokenizer.get_special_tokens_dict(),
                                  name="pack_inputs")
            module.set_text_front_end(tokenizer, pack, [tokenizer])
            serve = module.text_function()
            tokenizer_info = {"kind": "in_graph", "type": "wordpiece",
                              "source": info.spec.tokenizer or info.spec.encoder}
        else:
            hf_tokenizer = info.preprocessor.hf_tokenizer
            _logger.warning(
                "warning: the tokenizer of '%s' cannot run inside TensorFlow (%s); the SavedModel "
                "takes token ids, and the tokenizer is saved in %s/ for tfbert predict "
                "(TF Serving clients must tokenize themselves)",
                info.spec.name, reason, TOKENIZER_DIR)
            serve = module.ids_function()
            tokenizer_info = {"kind": "python", "type": info.spec.tokenizer_type,
                              "path": TOKENIZER_DIR, "reason": reason,
                              "source": info.spec.tokenizer or info.spec.encoder}
    concrete = serve.get_concrete_function()

    inputs_desc = ({"text": "string [batch]"} if tokenizer_info["kind"] == "in_graph"
                   else {k: f"int32 [batch, {info.seq_length}]" for k in input_names})
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tfbert_version": _tfbert_version(),
        "tensorflow_version": tf.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "class_names": list(info.class_names),
        "num_classes": info.num_classes,
        "seq_length": info.seq_length,
        "signature": {"name": SIGNATURE, "inputs": inputs_desc, "outputs": list(OUTPUTS)},
        "tokenizer": tokenizer_info,
        "model": _json_safe(info.spec.to_dict()),
        "head": info.head,
        "head_config": _json_safe(info.head_config),
        "train_encoder": info.train_encoder,
        "precision": getattr(info, "precision", "float32"),
        "config": _json_safe(_as_dict(config, "config")) if config is not None else None,
        "metrics": _json_safe(_as_dict(metrics, "metrics")) if metrics is not None else None,
    }

    # Write next to the target and move into place, so a failed export leaves
    # no half-written folder behind (and an overwrite keeps the old one until then).
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        try:
            try:
                tf.saved_model.save(module, str(tmp), signatures={SIGNATURE: concrete})
            except (ValueError, AssertionError) as err:
                if fallback_resources is None or "untracked" not in str(err).lower():
                    raise
                module.resources = fallback_resources
                tf.saved_model.save(module, str(tmp), signatures={SIGNATURE: concrete})
        except Exception as err:  # noqa: BLE001 - TF raises many types
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ExportError(f"saving the SavedModel failed: {type(err).__name__}: {first}") from err
        if hf_tokenizer is not None:
            hf_tokenizer.save_pretrained(str(tmp / TOKENIZER_DIR))
        (tmp / EXPORT_INFO_FILE).write_text(
            json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (tmp / LABELS_FILE).write_text("".join(f"{n}\n" for n in info.class_names), encoding="utf-8")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp made it private; servers run as other users
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


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


# --------------------------------------------------------------------------- CLI


def add_export_info_parser(subparsers):
    """``tfbert export-info MODEL_DIR``: print what an exported folder holds."""
    parser = subparsers.add_parser(
        "export-info", help="show what an exported model folder holds (classes, inputs, metrics)",
        description="Print the description (tfbert.json) of a folder written by export_classifier.")
    parser.add_argument("model_dir", help="folder written by export_classifier / tfbert train --export")
    parser.set_defaults(func=run_export_info)
    return parser


def run_export_info(args) -> int:
    meta = read_export_info(args.model_dir)
    spec = meta.get("model") or {}
    tok = meta.get("tokenizer") or {}
    lines = [
        f"model:      {spec.get('name')} ({spec.get('backend')}), head {meta.get('head')}",
        f"classes:    {', '.join(meta['class_names'])}",
        f"seq_length: {meta.get('seq_length')}",
        f"inputs:     {', '.join(f'{k} {v}' for k, v in meta['signature']['inputs'].items())}",
        f"tokenizer:  {tok.get('type')} ({'in-graph' if tok.get('kind') == 'in_graph' else 'Python-side, ' + str(tok.get('path')) + '/'})",
        f"outputs:    {', '.join(meta['signature']['outputs'])}",
        f"created:    {meta.get('created')} (tfbert {meta.get('tfbert_version')}, TF {meta.get('tensorflow_version')})",
    ]
    metrics = meta.get("metrics") or {}
    shown = {k: metrics[k] for k in ("accuracy", "f1_macro", "f1", "roc_auc") if isinstance(metrics.get(k), (int, float))}
    if shown:
        lines.append("metrics:    " + ", ".join(f"{k} {v:.4f}" for k, v in shown.items()))
    print("\n".join(lines))
    return 0
