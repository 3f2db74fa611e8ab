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

import contextlib
import csv
import gzip
import json
import logging
import math
import os
import sys
import zlib
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from tfbert.errors import ConfigError, DataError, printable
from tfbert.export import SIGNATURE, TOKENIZER_DIR, read_export_info
from tfbert.files import check_writable_file, utf8_lines
from tfbert.tasks import get_task

__all__ = ["Predictor", "load", "read_texts", "read_text_pairs", "check_utf8", "write_predictions",
           "format_predictions"]

_logger = logging.getLogger(__name__)

#: ``predict(progress=None)`` shows a progress bar from this many texts on.
PROGRESS_MIN_TEXTS = 1000
#: Texts per call of a string signature (it sorts and batches them inside).
CALL_SIZE = 1024
#: ``predict_file`` reads, labels and writes this many texts at a time.
STREAM_CHUNK = 20000


class Predictor:
    """An exported classifier, ready to label texts (see :func:`load`).

    Attributes:
        model_dir: pathlib.Path. The exported folder.
        class_names: list of str. ``class_names[label_id]`` names each class.
        seq_length: int. Tokens the model reads per text; longer texts are truncated.
        takes_pairs: bool. A sentence-pair model: ``predict(texts, text_pairs=...)``.
        info: dict. The folder's ``tfbert.json`` (registry entry under
            ``"model"``, ``"config"``, ``"metrics"``, ...).
    """

    def __init__(self, model_dir: str | os.PathLike):
        self.model_dir = Path(model_dir).expanduser()
        self.info = read_export_info(self.model_dir)
        self.class_names = [str(c) for c in self.info["class_names"]]
        self.task = get_task(self.info.get("task", "classification"))  # exports before tasks classified
        self.seq_length = int(self.info["seq_length"])
        tok = self.info.get("tokenizer") or {}
        self.takes_text = tok.get("kind", "in_graph") == "in_graph"
        self.takes_pairs = bool(self.info.get("text_pair"))

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
            from transformers.utils import logging as hf_logging
        except ImportError:
            raise ConfigError(
                "this model's tokenizer runs in Python and needs transformers; pip install transformers"
            ) from None
        from tfbert.tokenizers.hf_loading import load_hf_tokenizer

        hf_logging.set_verbosity_error()  # no "sequence too long" line per text: we say it once
        # tfbert's own classes (KoBERTTokenizer) are named in the saved tokenizer_config.json.
        return load_hf_tokenizer(str(path))

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

    def _encode(self, batch: list[str], pairs: list[str] | None = None) -> dict:
        second = [] if pairs is None else [pairs]
        # truncation=True is HF's "longest_first", as the model was trained
        enc = self._hf_tokenizer(batch, *second, truncation=True, max_length=self.seq_length,
                                 padding="longest", return_tensors="np",
                                 return_token_type_ids="input_type_ids" in self._input_names)
        inputs = {"input_word_ids": enc["input_ids"], "input_mask": enc["attention_mask"]}
        if "input_type_ids" in self._input_names:
            inputs["input_type_ids"] = enc["token_type_ids"]
        return {k: self._tf.constant(v.astype(np.int32)) for k, v in inputs.items()}

    def _default_batch_size(self) -> int:
        # A string signature sorts and batches inside the graph (``SERVING_BATCH``
        # texts per encoder call), so bigger calls only save call overhead.
        return CALL_SIZE if self.takes_text else 64

    def _plan(self, texts: list[str], pairs: list[str] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """(order to run the texts in, token counts if known up front).

        Sorted batches pad little: token counts where the tokenizer runs here
        (Python-side exports), character counts for string signatures (which
        sort again by tokens inside each call).
        """
        if self.takes_text:
            chars = [len(t) for t in texts] if pairs is None else [len(a) + len(b) for a, b in zip(texts, pairs)]
            return np.argsort(chars, kind="stable"), None
        second = [] if pairs is None else [pairs]
        counts = np.asarray([len(ids) for ids in self._hf_tokenizer(texts, *second, truncation=False)["input_ids"]])
        return np.argsort(np.minimum(counts, self.seq_length), kind="stable"), counts

    def _run_batch(self, batch: list[str], pairs: list[str] | None = None):
        """(the task's outputs and logits, token counts where the SavedModel tokenizes) of one batch."""
        if self.takes_text:
            strings = {"text": self._tf.constant(batch, dtype=self._tf.string)}
            if pairs is not None:
                strings["text_pair"] = self._tf.constant(pairs, dtype=self._tf.string)
            out = self._serve(**strings)
            num_tokens = out["num_tokens"].numpy()
        else:
            out, num_tokens = self._serve(**self._encode(batch, pairs)), None
        return {k: out[k].numpy() for k in (*self.task.output_names, "logits")}, num_tokens

    def _check_pairs(self, texts: list[str], text_pairs) -> list[str] | None:
        """The second texts, checked against the model: a pair model needs them, a single-text model takes none."""
        check_pair_use(self.takes_pairs, text_pairs is not None, self.model_dir)
        if text_pairs is None:
            return None
        pairs = _check_texts(text_pairs, what="second text")
        if len(pairs) != len(texts):
            raise DataError(f"{len(texts)} texts but {len(pairs)} second texts; give one second text per text")
        return pairs

    def predict_proba(self, texts: str | Iterable[str], batch_size: int | None = None,
                      progress: bool | None = None, text_pairs=None) -> np.ndarray:
        """Class (or, multi-label, tag) probabilities, float32 [len(texts), num_classes]."""
        if "probabilities" not in self.task.output_names:
            raise ConfigError(f"{self.model_dir} is a {self.task.name} model: it predicts values, not "
                              f"probabilities; use predict() or predict_outputs()")
        outputs, _ = self.predict_outputs(texts, batch_size, progress, text_pairs=text_pairs)
        return outputs.get("probabilities", np.zeros((0, len(self.class_names)), np.float32))

    def predict_arrays(self, texts, batch_size: int | None = None, progress: bool | None = None,
                       text_pairs=None):
        """Classification: (probabilities [n, classes], label ids [n], how many texts were truncated)."""
        if self.task.name != "classification":
            raise ConfigError(f"{self.model_dir} is a {self.task.name} model; use predict() or predict_outputs()")
        outputs, truncated = self.predict_outputs(texts, batch_size, progress, text_pairs=text_pairs)
        if not outputs:
            return np.zeros((0, len(self.class_names)), np.float32), np.zeros((0,), np.int64), 0
        return outputs["probabilities"], outputs["label_id"].astype(np.int64), truncated

    def predict_outputs(self, texts, batch_size: int | None = None, progress: bool | None = None,
                        text_pairs=None) -> tuple[dict[str, np.ndarray], int]:
        """(the SavedModel's task outputs and logits for every text, in input order; how many texts were
        truncated).

        The keys are the task's (``tfbert.tasks``: ``probabilities``/``label_id``/``label``,
        ``value``, or ``probabilities``/``label_ids``/``labels``) and ``logits``; no texts give an empty dict."""
        texts = _check_texts(texts)
        pairs = self._check_pairs(texts, text_pairs)
        batch_size = self._default_batch_size() if batch_size is None else batch_size
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        n = len(texts)
        outputs: dict[str, np.ndarray] = {}
        order, counts = self._plan(texts, pairs) if n else (np.zeros(0, np.int64), None)
        all_counts = np.zeros((n,), dtype=np.int64) if counts is None else counts
        with _progress(n, progress) as bar:
            for start in range(0, n, batch_size):
                rows = order[start:start + batch_size]
                batch_out, num_tokens = self._run_batch([texts[r] for r in rows],
                                                        None if pairs is None else [pairs[r] for r in rows])
                for key, value in batch_out.items():
                    if key not in outputs:
                        outputs[key] = np.zeros((n, *value.shape[1:]), value.dtype)
                    outputs[key][rows] = value
                if num_tokens is not None:
                    all_counts[rows] = num_tokens
                bar.update(len(rows))
        # windows read every token; head_tail drops the middle by design, without a warning (tfbert.long_text)
        strategy = (self.info.get("long_text") or {}).get("strategy", "truncate")
        truncated = 0 if strategy == "windows" else int((all_counts > self.seq_length).sum())
        if truncated and strategy == "truncate":
            _logger.warning(
                "warning: %d of %d text(s) are longer than the model's %d tokens (longest: %d) and "
                "were truncated; export a model trained with a larger seq_length to read more",
                truncated, n, self.seq_length, int(all_counts.max()))
        return outputs, truncated

    def predict(self, texts: str | Iterable[str], batch_size: int | None = None,
                progress: bool | None = None, text_pairs=None) -> list[dict[str, Any]]:
        """Label texts.

        Texts are run in length order (results come back in the input order),
        so batches pad little.

        Args:
            texts: str or list of str. An empty string is predicted like any text.
            batch_size: int or None. Texts per call of the SavedModel; default
                1024 for string signatures (which batch by token length inside),
                64 where the tokenizer runs in Python.
            progress: bool or None. Show a tqdm bar; by default from
                ``PROGRESS_MIN_TEXTS`` (1000) texts on.
            text_pairs: str or list of str. The second text of each pair, for
                a sentence-pair model (``takes_pairs``); required there, and
                refused by single-text models.

        Returns:
            One dict per text: ``{"label": name, "score": probability of that
            label, "scores": {name: probability, ...}}``; regression models
            ``{"value": number}``; multi-label models ``{"labels": [chosen
            tags], "scores": {tag: probability, ...}}``.

        Texts longer than ``seq_length`` tokens are truncated, with one
        warning line (logger ``tfbert.predict``) for the whole call.
        """
        outputs, _ = self.predict_outputs(texts, batch_size, progress, text_pairs=text_pairs)
        n = len(next(iter(outputs.values()))) if outputs else 0
        return [self.task.describe(outputs, self.class_names, i) for i in range(n)]

    __call__ = predict


class _NoBar:
    def update(self, n):
        pass


@contextlib.contextmanager
def _progress(total: int | None, show: bool | None):
    """A tqdm bar on stderr (by default from ``PROGRESS_MIN_TEXTS`` texts on), else nothing."""
    if show is None:
        show = bool(total) and total >= PROGRESS_MIN_TEXTS
    if not show:
        yield _NoBar()
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="text", desc="predict", file=sys.stderr)
    try:
        yield bar
    finally:
        bar.close()


def check_pair_use(takes_pairs: bool, given: bool, model_dir) -> None:
    """DataError when a sentence-pair model gets no second texts, or a single-text model gets some."""
    if takes_pairs and not given:
        raise DataError(f"the model in {model_dir} reads sentence pairs: give the second texts too "
                        f"(text_pairs=, --text-pair TEXT or --text-pair-column NAME)")
    if given and not takes_pairs:
        raise DataError(f"the model in {model_dir} reads single texts, not pairs: drop the second texts "
                        f"(text_pairs, --text-pair, --text-pair-column)")


def load(model_dir: str | os.PathLike) -> Predictor:
    """A :class:`Predictor` for a folder written by :func:`tfbert.export.export_classifier`.

    Raises:
        ConfigError: the folder is missing, is not a tfbert export, or cannot load.
    """
    return Predictor(model_dir)


def _check_texts(texts, what: str = "text") -> list[str]:
    if isinstance(texts, (str, bytes)):
        texts = [texts]
    try:
        texts = list(texts)
    except TypeError:
        raise DataError(f"{what}s must be a string or a list of strings, got {type(texts).__name__}") from None
    out = []
    for position, text in enumerate(texts):
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{what} {position} (0-based) is bytes that are not UTF-8; decode it first") from None
        if text is None or (isinstance(text, float) and math.isnan(text)):
            raise DataError(f"{what} {position} (0-based) is missing ({text!r}); drop it or use an empty string")
        if not isinstance(text, str):
            raise DataError(f"{what} {position} (0-based) is a {type(text).__name__}, not a string; pass strings")
        _check_encodable(text, position, what)
        out.append(text)
    return out


def _check_encodable(text: str, position: int, what: str = "text") -> None:
    """Lone surrogates (bytes that were not UTF-8, e.g. in a command-line argument) cannot reach TF."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        char = text[err.start]
        byte = f" (byte 0x{ord(char) - 0xDC00:02x})" if 0xDC80 <= ord(char) <= 0xDCFF else ""
        raise DataError(f"{what} {position} (0-based) is not valid UTF-8{byte} at character {err.start}; "
                        f"pass UTF-8 text (a terminal set to another encoding: convert with iconv -t utf-8)") from None


# ---------------------------------------------------------------------- files


def _read_bytes(path: Path) -> bytes:
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
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
    if _is_txt(path):
        check_file_path(path)
        return [text for chunk in _txt_chunks(path, STREAM_CHUNK) for text in chunk]
    check_utf8(path)  # names the line of a non-UTF-8 byte
    from tfbert.data import load_table

    df = load_table(path, text_column=text_column, label_column=None)
    return df["text"].astype(str).tolist()


def read_text_pairs(path: str | os.PathLike, text_column: str = "text",
                    text_pair_column: str = "text_pair") -> tuple[list[str], list[str]]:
    """(texts, second texts) of sentence pairs from a ``.csv``/``.tsv``/``.jsonl`` file (optionally ``.gz``).

    Raises:
        DataError: a ``.txt`` file (one text a line holds no pairs), non-UTF-8
            bytes, a missing column, rows whose second text is missing (named).
    """
    path = Path(path).expanduser()
    if _is_txt(path):
        raise DataError(f"{path} holds one text a line, not pairs; sentence pairs come from a CSV/TSV/JSONL "
                        f"file with two text columns (--text-column and --text-pair-column)")
    check_utf8(path)
    from tfbert.data import load_table

    df = load_table(path, text_column=text_column, label_column=None, text_pair_column=text_pair_column)
    return df["text"].astype(str).tolist(), df["text_pair"].astype(str).tolist()


def _is_txt(path: Path) -> bool:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return bool(suffixes) and suffixes[-1] in (".txt", ".text")


def _txt_chunks(path: Path, chunk_size: int) -> Iterator[list[str]]:
    """Lines of a UTF-8 text file (plain or .gz), ``chunk_size`` at a time, without holding the file."""
    chunk: list[str] = []
    for number, line in utf8_lines(path):
        if not line:  # a file that is only a byte-order mark holds no text
            continue
        line = line[:-1] if line.endswith("\n") else line
        chunk.append(line[:-1] if line.endswith("\r") else line)
        if len(chunk) == chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def iter_text_chunks(path: str | os.PathLike, text_column: str = "text",
                     chunk_size: int = STREAM_CHUNK) -> Iterator[list[str]]:
    """The texts of a file, ``chunk_size`` at a time: ``.txt`` files are streamed line by line
    (any size), tables (``.csv``/``.tsv``/``.jsonl``) are read whole (:func:`read_texts`)."""
    path = Path(path).expanduser()
    if _is_txt(path):
        check_file_path(path)
        yield from _txt_chunks(path, chunk_size)
        return
    texts = read_texts(path, text_column)
    for start in range(0, len(texts), chunk_size):
        yield texts[start:start + chunk_size]


def check_file_path(path: Path) -> None:
    if not path.exists():
        raise DataError(f"input file not found: {path}; check the path")
    if not path.is_file():
        raise DataError(f"{path} is a folder, expected a file; pass a file path")


#: CSV columns between the text(s) and the per-class scores, by task.
_CSV_COLUMNS = {"classification": ("label", "score"), "regression": ("value",), "multi_label": ("labels",)}


def _csv_cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.6f}"
    return ",".join(value) if isinstance(value, list) else str(value)


class _PredictionWriter:
    """Rows of predictions into ``.csv`` (text, [text_pair,] label, score, score_<class>...; regression:
    text, value; multi-label: text, labels, score_<tag>...) or ``.jsonl``, written to a temporary file
    that replaces ``path`` only when complete."""

    def __init__(self, path: Path, class_names: Sequence[str], task: str = "classification", pairs: bool = False):
        self.path, self.class_names, self.pairs = path, list(class_names), pairs
        self.columns = _CSV_COLUMNS[task]
        self.scores = task != "regression"
        self.jsonl = path.suffix.lower() == ".jsonl"
        self._tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self._file = open(self._tmp, "w", encoding="utf-8", newline="")
        self._csv = None if self.jsonl else csv.writer(self._file)
        if self._csv:
            self._csv.writerow(["text", *(["text_pair"] if pairs else []), *self.columns,
                                *([f"score_{n}" for n in self.class_names] if self.scores else [])])

    def write(self, texts: Sequence[str], predictions: Sequence[dict], text_pairs=None) -> None:
        pairs = [None] * len(texts) if text_pairs is None else text_pairs
        for text, pair, pred in zip(texts, pairs, predictions):
            given = {"text": text, **({"text_pair": pair} if self.pairs else {})}
            if self.jsonl:
                self._file.write(json.dumps({**given, **pred}, ensure_ascii=False) + "\n")
            else:
                self._csv.writerow([*given.values(), *[_csv_cell(pred[c]) for c in self.columns],
                                    *([f"{pred['scores'][n]:.6f}" for n in self.class_names] if self.scores else [])])

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        self._file.close()
        if kind is None:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)


def write_predictions(path: str | os.PathLike, texts: Sequence[str], predictions: Sequence[dict],
                      class_names: Sequence[str], task: str = "classification",
                      text_pairs: Sequence[str] | None = None) -> Path:
    """Write predictions as ``.csv`` (text, [text_pair,] label, score, score_<class>...) or ``.jsonl``, atomically."""
    path = check_output_path(path)
    with _PredictionWriter(path, class_names, task, pairs=text_pairs is not None) as writer:
        writer.write(texts, predictions, text_pairs)
    return path


def _chunks(input_path, text_column: str, text_pair_column: str | None, chunk_size: int):
    """(texts, second texts or None) of a file, ``chunk_size`` rows at a time."""
    if text_pair_column is None:
        for texts in iter_text_chunks(input_path, text_column, chunk_size):
            yield texts, None
        return
    texts, pairs = read_text_pairs(input_path, text_column, text_pair_column)
    for start in range(0, len(texts), chunk_size):
        yield texts[start:start + chunk_size], pairs[start:start + chunk_size]


def predict_file(predictor: Predictor, input_path: str | os.PathLike, output_path: str | os.PathLike,
                 text_column: str = "text", batch_size: int | None = None,
                 chunk_size: int = STREAM_CHUNK, text_pair_column: str | None = None) -> int:
    """Label every text of ``input_path`` into ``output_path`` (``.csv``/``.jsonl``), chunk by chunk.

    Memory stays flat for ``.txt`` inputs of any size: texts are read, labelled
    and written ``chunk_size`` at a time. The output appears when complete.
    ``text_pair_column`` names the second text of sentence pairs (tables only).
    Returns the number of texts labelled.
    """
    path = check_output_path(output_path)
    count = 0
    task = getattr(predictor, "task", None)
    with _PredictionWriter(path, predictor.class_names, task.name if task else "classification",
                           pairs=text_pair_column is not None) as writer, _progress(None, True) as bar:
        for texts, pairs in _chunks(input_path, text_column, text_pair_column, chunk_size):
            writer.write(texts, predictor.predict(texts, batch_size=batch_size, progress=False, text_pairs=pairs),
                         pairs)
            count += len(texts)
            bar.update(len(texts))
        if not count:
            raise DataError(f"{input_path} holds no texts; add one text per line (or per row)")
    return count


def check_output_path(path: str | os.PathLike) -> Path:
    """A predictions file that can be written: ``.csv`` or ``.jsonl`` in a writable folder; else one line."""
    path = Path(path).expanduser()
    if path.suffix.lower() not in (".csv", ".jsonl"):
        raise ConfigError(f"cannot write predictions to {path.name}; name the output file .csv or .jsonl")
    return check_writable_file(path, "output file")


def format_predictions(texts: Sequence[str], predictions: Sequence[dict], width: int = 70) -> str:
    """A plain table: label, score, text (clipped to ``width`` characters, one line); regression
    models show the value, multi-label models the chosen tags."""
    kind = "value" if predictions and "value" in predictions[0] else \
        "labels" if predictions and "labels" in predictions[0] else "label"
    cells = [_shown_prediction(p) for p in predictions]
    label_w = max([len(kind)] + [len(printable(c[0])) for c in cells])
    score = "score" if kind == "label" else ""
    lines = [f"{kind:<{label_w}}  {score:>6}  text"]
    for text, (label, value) in zip(texts, cells):
        shown = printable(" ".join(text.split()))
        if len(shown) > width:
            shown = shown[:width - 3] + "..."
        lines.append(f"{printable(label):<{label_w}}  {value:>6}  {shown}")
    return "\n".join(lines)


def _shown_prediction(pred: dict) -> tuple[str, str]:
    if "value" in pred:
        return f"{pred['value']:.4f}", ""
    if "labels" in pred:
        return ",".join(pred["labels"]) or "(none)", ""
    return pred["label"], f"{pred['score']:.4f}"
