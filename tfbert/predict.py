"""Load an exported classifier and label texts with it.

    >>> from tfbert.predict import load
    >>> clf = load("runs/nsmc/export")
    >>> clf.predict(["재밌어요", "별로"])
    [{'label': 'pos', 'score': 0.97, 'scores': {'neg': 0.03, 'pos': 0.97}}, ...]

Only the exported folder is needed (see :mod:`tfbert.export`): the SavedModel,
its ``tfbert.json`` and, for tokenizers that cannot run in TensorFlow, the
saved ``tokenizer/`` (loaded with ``transformers``).
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from tfbert.errors import ConfigError, DataError
from tfbert.export import SIGNATURE, TOKENIZER_DIR, read_export_info

__all__ = ["Predictor", "load", "read_texts", "check_utf8", "write_predictions", "format_predictions"]

_logger = logging.getLogger(__name__)

#: ``predict(progress=None)`` shows a progress bar from this many texts on.
PROGRESS_MIN_TEXTS = 1000


class Predictor:
    """An exported classifier, ready to label texts (see :func:`load`).

    Attributes:
        model_dir: pathlib.Path. The exported folder.
        class_names: list of str. ``class_names[label_id]`` names each class.
        seq_length: int. Tokens the model reads per text; longer texts are truncated.
        info: dict. The folder's ``tfbert.json`` (registry entry under
            ``"model"``, ``"config"``, ``"metrics"``, ...).
    """

    def __init__(self, model_dir: str | os.PathLike):
        self.model_dir = Path(model_dir).expanduser()
        self.info = read_export_info(self.model_dir)
        self.class_names = [str(c) for c in self.info["class_names"]]
        self.seq_length = int(self.info["seq_length"])
        tok = self.info.get("tokenizer") or {}
        self.takes_text = tok.get("kind", "in_graph") == "in_graph"

        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the tokenizer ops)

        self._tf = tf
        try:
            self._saved = tf.saved_model.load(str(self.model_dir))
        except Exception as err:  # noqa: BLE001
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(
                f"cannot load the SavedModel in {self.model_dir} ({type(err).__name__}: {first}); "
                f"re-export the model") from None
        if SIGNATURE not in self._saved.signatures:
            raise ConfigError(f"{self.model_dir} has no '{SIGNATURE}' signature; re-export the model")
        self._serve = self._saved.signatures[SIGNATURE]
        self._hf_tokenizer = None
        if not self.takes_text:
            self._input_names = [k for k in ("input_word_ids", "input_mask", "input_type_ids")
                                 if k in self._serve.structured_input_signature[1]]
            self._hf_tokenizer = self._load_hf_tokenizer(self.model_dir / tok.get("path", TOKENIZER_DIR))

    @staticmethod
    def _load_hf_tokenizer(path: Path):
        if not path.is_dir():
            raise ConfigError(f"{path} is missing: this export tokenizes in Python; re-export the model")
        try:
            from transformers import AutoTokenizer
            from transformers.utils import logging as hf_logging
        except ImportError:
            raise ConfigError(
                "this model's tokenizer runs in Python and needs transformers; pip install transformers"
            ) from None
        hf_logging.set_verbosity_error()  # no "sequence too long" line per text: we say it once
        return AutoTokenizer.from_pretrained(str(path))

    @property
    def spec(self) -> dict:
        """The registry entry (``ModelSpec.to_dict()``) the model was built from."""
        return self.info.get("model") or {}

    @property
    def metrics(self) -> dict | None:
        return self.info.get("metrics")

    @property
    def config(self) -> dict | None:
        return self.info.get("config")

    def __repr__(self) -> str:
        return (f"Predictor({str(self.model_dir)!r}, model={self.spec.get('name')!r}, "
                f"classes={self.class_names}, seq_length={self.seq_length})")

    # ------------------------------------------------------------------ running

    def _encode(self, batch: list[str]) -> tuple[dict, np.ndarray]:
        enc = self._hf_tokenizer(batch, truncation=True, max_length=self.seq_length,
                                 padding="longest", return_tensors="np",
                                 return_token_type_ids="input_type_ids" in self._input_names)
        full = self._hf_tokenizer(batch, truncation=False, padding=False)["input_ids"]
        inputs = {"input_word_ids": enc["input_ids"], "input_mask": enc["attention_mask"]}
        if "input_type_ids" in self._input_names:
            inputs["input_type_ids"] = enc["token_type_ids"]
        tf = self._tf
        return ({k: tf.constant(v.astype(np.int32)) for k, v in inputs.items()},
                np.asarray([len(ids) for ids in full], dtype=np.int64))

    def _run_batch(self, batch: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.takes_text:
            out = self._serve(text=self._tf.constant(batch, dtype=self._tf.string))
            num_tokens = out["num_tokens"].numpy()
        else:
            inputs, num_tokens = self._encode(batch)
            out = self._serve(**inputs)
        return out["probabilities"].numpy(), out["label_id"].numpy(), num_tokens

    def predict_proba(self, texts: str | Iterable[str], batch_size: int = 64,
                      progress: bool | None = None) -> np.ndarray:
        """Class probabilities, float32 [len(texts), num_classes]."""
        return self._predict_arrays(texts, batch_size, progress)[0]

    def _predict_arrays(self, texts, batch_size: int = 64, progress: bool | None = None):
        texts = _check_texts(texts)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        n = len(texts)
        probs = np.zeros((n, len(self.class_names)), dtype=np.float32)
        ids = np.zeros((n,), dtype=np.int64)
        truncated = 0
        longest = 0
        if progress is None:
            progress = n >= PROGRESS_MIN_TEXTS
        bar = None
        if progress and n:
            from tqdm.auto import tqdm
            bar = tqdm(total=n, unit="text", desc="predict", file=sys.stderr)
        # Batches of similar length pad less; character length is a cheap
        # stand-in for token length. Results go back to the input order.
        order = np.argsort([len(t) for t in texts], kind="stable")
        try:
            for start in range(0, n, batch_size):
                rows = order[start:start + batch_size]
                batch = [texts[r] for r in rows]
                p, i, num_tokens = self._run_batch(batch)
                probs[rows] = p
                ids[rows] = i
                over = num_tokens > self.seq_length
                truncated += int(over.sum())
                if over.any():
                    longest = max(longest, int(num_tokens.max()))
                if bar is not None:
                    bar.update(len(batch))
        finally:
            if bar is not None:
                bar.close()
        if truncated:
            _logger.warning(
                "warning: %d of %d text(s) are longer than the model's %d tokens (longest: %d) and "
                "were truncated; export a model trained with a larger seq_length to read more",
                truncated, n, self.seq_length, longest)
        return probs, ids, truncated

    def predict(self, texts: str | Iterable[str], batch_size: int = 64,
                progress: bool | None = None) -> list[dict[str, Any]]:
        """Label texts.

        Args:
            texts: str or list of str. An empty string is predicted like any text.
            batch_size: int. Texts per model call.
            progress: bool or None. Show a tqdm bar; by default from
                ``PROGRESS_MIN_TEXTS`` (1000) texts on.

        Returns:
            One dict per text: ``{"label": name, "score": probability of that
            label, "scores": {name: probability, ...}}``.

        Texts longer than ``seq_length`` tokens are truncated, with one
        warning line (logger ``tfbert.predict``) for the whole call.
        """
        probs, ids, _ = self._predict_arrays(texts, batch_size, progress)
        names = self.class_names
        return [{"label": names[int(i)], "score": float(p[int(i)]),
                 "scores": {name: float(v) for name, v in zip(names, p)}}
                for p, i in zip(probs, ids)]

    __call__ = predict


def load(model_dir: str | os.PathLike) -> Predictor:
    """A :class:`Predictor` for a folder written by :func:`tfbert.export.export_classifier`.

    Raises:
        ConfigError: the folder is missing, is not a tfbert export, or cannot load.
    """
    return Predictor(model_dir)


def _check_texts(texts) -> list[str]:
    if isinstance(texts, (str, bytes)):
        texts = [texts]
    try:
        texts = list(texts)
    except TypeError:
        raise DataError(f"texts must be a string or a list of strings, got {type(texts).__name__}") from None
    out = []
    for position, text in enumerate(texts):
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(f"text {position} (0-based) is bytes that are not UTF-8; decode it first") from None
        if text is None or (isinstance(text, float) and math.isnan(text)):
            raise DataError(f"text {position} (0-based) is missing ({text!r}); drop it or use an empty string")
        if not isinstance(text, str):
            raise DataError(f"text {position} (0-based) is a {type(text).__name__}, not a string; pass strings")
        out.append(text)
    return out


# ---------------------------------------------------------------------- files


def _read_bytes(path: Path) -> bytes:
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError) as err:
        raise DataError(f"cannot read {path} ({err}); check that it is a valid file") from None


def check_utf8(path: str | os.PathLike) -> str:
    """The file's text; DataError naming the first line that is not UTF-8."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"input file not found: {path}; check the path")
    if not path.is_file():
        raise DataError(f"{path} is a folder, expected a file; pass a file path")
    data = _read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise DataError(
            f"line {line} of {path} is not UTF-8 text (byte 0x{data[err.start]:02x}); "
            f"re-save the file as UTF-8 (e.g. iconv -f cp949 -t utf-8)") from None
    return text[1:] if text.startswith("\ufeff") else text


def read_texts(path: str | os.PathLike, text_column: str = "text") -> list[str]:
    """Texts from a file: ``.txt`` one per line; ``.csv``/``.tsv``/``.jsonl`` (optionally
    ``.gz``) the ``text_column`` column.

    Raises:
        DataError: missing file, non-UTF-8 bytes (names the line), missing column.
    """
    path = Path(path).expanduser()
    content = check_utf8(path)
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    if suffixes and suffixes[-1] in (".txt", ".text"):
        lines = content.split("\n")
        if lines and lines[-1] == "":
            lines.pop()  # the file's final newline
        return [line[:-1] if line.endswith("\r") else line for line in lines]
    from tfbert.data import load_table

    df = load_table(path, text_column=text_column, label_column=None)
    return df["text"].astype(str).tolist()


def write_predictions(path: str | os.PathLike, texts: Sequence[str], predictions: Sequence[dict],
                      class_names: Sequence[str]) -> Path:
    """Write predictions as ``.csv`` (text, label, score, score_<class>...) or ``.jsonl``."""
    path = Path(path).expanduser()
    kind = path.suffix.lower()
    if kind not in (".csv", ".jsonl"):
        raise ConfigError(f"cannot write predictions to {path.name}; name the output file .csv or .jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == ".jsonl":
        with open(path, "w", encoding="utf-8") as f:
            for text, pred in zip(texts, predictions):
                f.write(json.dumps({"text": text, **pred}, ensure_ascii=False) + "\n")
    else:
        with open(path, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label", "score", *[f"score_{n}" for n in class_names]])
            for text, pred in zip(texts, predictions):
                writer.writerow([text, pred["label"], f"{pred['score']:.6f}",
                                 *[f"{pred['scores'][n]:.6f}" for n in class_names]])
    return path


def format_predictions(texts: Sequence[str], predictions: Sequence[dict], width: int = 70) -> str:
    """A plain table: label, score, text (clipped to ``width`` characters, one line)."""
    label_w = max([len("label")] + [len(p["label"]) for p in predictions])
    lines = [f"{'label':<{label_w}}  {'score':>6}  text"]
    for text, pred in zip(texts, predictions):
        shown = " ".join(text.split())
        if len(shown) > width:
            shown = shown[:width - 3] + "..."
        lines.append(f"{pred['label']:<{label_w}}  {pred['score']:6.4f}  {shown}")
    return "\n".join(lines)
