"""Texts longer than the encoder's window: keep the head and tail, or read overlapping windows.

Three strategies (``--long-text``):

* ``truncate``: the first ``seq_length - 2`` text tokens (what BERT recipes do).
* ``head_tail``: the first ``head_tokens`` and the last ``tail_tokens`` text
  tokens of a longer text (Sun et al. 2019, "How to Fine-Tune BERT for Text
  Classification?": head 128 + tail 382 was best on IMDB).
* ``windows``: windows of the model's length, starting every ``stride`` text
  tokens; the last one is moved back to end at the text's end, so every
  window of a long text is full length (a text's windows all have one length:
  length buckets and the batch count stay the same whichever window an epoch
  samples). Training reads every window with the document's label (``all``)
  or one window per document and epoch (``sample``, chosen by (seed, epoch));
  prediction pools the windows' logits per document (``mean`` or ``max``).

Everything here cuts *content pieces* (token ids without special tokens) with
TF ops only, so that the same functions serve the Python path (training,
evaluation, ``predict_logits``) and the exported SavedModel (in-graph, on raw
strings): the two agree to float rounding. Windows are made of whole word
pieces; a word may be split between two windows (the overlap sees it whole).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from tfbert.errors import ConfigError

STRATEGIES = ("truncate", "head_tail", "windows")
POOLINGS = ("mean", "max")
WINDOW_TRAINING = ("all", "sample")
# Sun et al. 2019: head 128 + tail 382 of the 510 text tokens of a 512-token window.
_SUN_HEAD, _SUN_CONTENT = 128, 510
#: The RunConfig fields this module reads, and which strategy each matters for.
SETTINGS = {"head_tokens": "head_tail", "tail_tokens": "head_tail", "stride": "windows",
            "window_pooling": "windows", "window_training": "windows"}


@dataclasses.dataclass(frozen=True)
class LongText:
    """How a model reads texts longer than its window (see the module docstring).

    Attributes:
        strategy: ``truncate``, ``head_tail`` or ``windows``.
        head_tokens, tail_tokens: head_tail: text tokens kept from the start and
            the end (default: Sun et al.'s 128/382 split of the window's text tokens).
        stride: windows: text tokens from one window's start to the next
            (default: half the window's text tokens).
        pooling: windows: ``mean`` or ``max`` of the windows' logits.
        training: windows: ``all`` (every window, the document's label) or
            ``sample`` (one window per document, a new one each epoch).
        capacity: text tokens per window (``seq_length`` less the special
            tokens); set by :meth:`resolve`.
    """

    strategy: str = "truncate"
    head_tokens: int | None = None
    tail_tokens: int | None = None
    stride: int | None = None
    pooling: str = "mean"
    training: str = "all"
    capacity: int | None = None

    @property
    def active(self) -> bool:
        """True when texts are cut otherwise than at the end."""
        return self.strategy != "truncate"

    @property
    def windowed(self) -> bool:
        return self.strategy == "windows"

    def resolve(self, seq_length: int, num_special: int = 2) -> "LongText":
        """The settings with the defaults for a window of ``seq_length`` tokens filled in, checked.

        Raises:
            ConfigError: one line for an unknown choice, a window with no room
                for text, head + tail over the window, or a stride that skips tokens.
        """
        check_choices(self.strategy, self.pooling, self.training)
        capacity = int(seq_length) - int(num_special)
        if self.active and capacity < 1:
            raise ConfigError(f"--long-text {self.strategy}: a window of {seq_length} tokens holds only the "
                              f"{num_special} special tokens; raise --seq-length")
        head, tail = _head_tail(self.head_tokens, self.tail_tokens, capacity)
        if self.strategy == "head_tail" and head + tail > capacity:
            raise ConfigError(f"--head-tokens {head} + --tail-tokens {tail} = {head + tail} is more than the "
                              f"{capacity} text tokens of a {seq_length}-token window; lower them")
        stride = self.stride if self.stride is not None else max(capacity // 2, 1)
        if self.windowed and not 1 <= stride <= capacity:
            raise ConfigError(f"--stride {stride} must be from 1 to the {capacity} text tokens of a "
                              f"{seq_length}-token window (a longer step would skip tokens)")
        return dataclasses.replace(self, head_tokens=head, tail_tokens=tail, stride=stride, capacity=capacity)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def from_config(config) -> LongText:
    """The ``LongText`` of a RunConfig's ``long_text``/``head_tokens``/... settings (unresolved)."""
    return LongText(strategy=config.long_text, head_tokens=config.head_tokens, tail_tokens=config.tail_tokens,
                    stride=config.stride, pooling=config.window_pooling, training=config.window_training)


def check_choices(strategy: str, pooling: str, training: str) -> None:
    for flag, value, choices in (("long-text", strategy, STRATEGIES), ("window-pooling", pooling, POOLINGS),
                                 ("window-training", training, WINDOW_TRAINING)):
        if value not in choices:
            raise ConfigError(f"--{flag} must be one of {', '.join(choices)}, got '{value}'")


def _head_tail(head, tail, capacity: int) -> tuple[int, int]:
    """Given, or Sun et al.'s split scaled to ``capacity``; one given: the other takes the rest."""
    if head is None and tail is None:
        head = int(round(max(capacity, 0) * _SUN_HEAD / _SUN_CONTENT))
    if head is None:
        head = max(capacity - tail, 0)
    if tail is None:
        tail = max(capacity - head, 0)
    return int(head), int(tail)


# --------------------------------------------------------------------------- cutting (TF ops)


def window_counts(lengths, capacity: int, stride: int) -> tf.Tensor:
    """Windows per text of ``lengths`` text tokens: 1, plus one per ``stride`` past the first window."""
    lengths = tf.cast(lengths, tf.int64)
    extra = tf.maximum(lengths - capacity, 0)
    return 1 + (extra + stride - 1) // stride


def cut(pieces: tf.RaggedTensor, settings: LongText) -> tuple[tf.RaggedTensor, tf.Tensor]:
    """Model rows of text tokens (no special tokens) from untruncated content pieces.

    Args:
        pieces: ragged [n, (length)] ids of each text, without special tokens.
        settings: a :meth:`LongText.resolve`-d ``LongText``.

    Returns:
        (rows ragged [rows, (<= capacity)], doc int32 [rows]: the text each row
        comes from, ascending). ``truncate`` and ``head_tail`` give one row per text.
    """
    lengths = pieces.row_lengths()
    n = tf.shape(lengths, out_type=tf.int64)[0]
    capacity = tf.constant(settings.capacity, tf.int64)
    if settings.windowed:
        counts = window_counts(lengths, settings.capacity, settings.stride)
        doc = tf.repeat(tf.range(n), counts)
        index = tf.ragged.range(counts).flat_values  # each window's number within its text
        doc_lengths = tf.gather(lengths, doc)
        starts = tf.minimum(index * settings.stride, tf.maximum(doc_lengths - capacity, 0))
        spans = [(starts, tf.minimum(starts + capacity, doc_lengths))]
    else:
        doc = tf.range(n)
        doc_lengths = lengths
        zero = tf.zeros_like(lengths)
        if settings.strategy == "head_tail":
            long = lengths > capacity
            spans = [(zero, tf.where(long, tf.minimum(lengths, settings.head_tokens), lengths)),
                     (tf.where(long, lengths - settings.tail_tokens, lengths), lengths)]
        else:
            spans = [(zero, tf.minimum(lengths, capacity))]
    return _gather_spans(pieces, doc, spans), tf.cast(doc, tf.int32)


def _gather_spans(pieces: tf.RaggedTensor, doc: tf.Tensor, spans) -> tf.RaggedTensor:
    """Row r: the tokens [start, limit) of text ``doc[r]`` for each (start, limit) span, concatenated."""
    offsets = tf.gather(pieces.row_starts(), doc)
    parts = [tf.ragged.range(start + offsets, limit + offsets) for start, limit in spans]
    positions = parts[0] if len(parts) == 1 else tf.concat(parts, axis=1)
    return positions.with_flat_values(tf.gather(pieces.flat_values, positions.flat_values))


def frame(rows: tf.RaggedTensor, prefix, suffix) -> tf.RaggedTensor:
    """``prefix + row + suffix`` for each row: the special tokens around the text tokens."""
    n = rows.nrows()
    dtype = rows.flat_values.dtype
    parts = []
    for ids in (prefix, rows, suffix):
        if isinstance(ids, tf.RaggedTensor):
            parts.append(ids)
        elif len(ids):
            fixed = tf.tile(tf.constant([list(ids)], dtype), tf.stack([n, tf.constant(1, n.dtype)]))
            parts.append(tf.RaggedTensor.from_tensor(fixed))
    return tf.concat(parts, axis=1)


def pool(logits, doc, num_docs, pooling: str) -> tf.Tensor:
    """[rows, outputs] logits -> [num_docs, outputs]: the mean or max over each document's rows.

    Every document has at least one row (an empty text makes one), so no
    segment is empty. Pooled in float32: bfloat16 models' logits too.
    """
    logits = tf.cast(logits, tf.float32)
    if pooling == "max":
        return tf.math.unsorted_segment_max(logits, doc, num_docs)
    return tf.math.unsorted_segment_mean(logits, doc, num_docs)


# --------------------------------------------------------------------------- Python-side helpers


def special_frame(preprocessor) -> tuple[list[int], list[int]]:
    """The special-token ids a preprocessor puts before and after a text's pieces.

    Read off the ids of an empty text and of a one-word text: ``[CLS]``/``[SEP]``
    for BERT, ``<s>``/``</s>`` for RoBERTa, none before and two after for XLNet.
    """
    empty, word = preprocessor.token_ids(["", "a"], max_length=2**30).to_list()
    common = 0
    while common < len(empty) and empty[common] == word[common]:
        common += 1
    return list(empty[:common]), list(empty[common:])


def document_rows(preprocessor, texts, settings: LongText) -> tuple[tf.RaggedTensor, np.ndarray]:
    """Model rows with special tokens for ``texts`` (untruncated ids cut by ``settings``), and each row's text.

    Returns (ids ragged [rows, (length)] int32, doc int32 [rows])."""
    prefix, suffix = special_frame(preprocessor)
    full = preprocessor.token_ids(list(texts), max_length=2**30)
    pieces = tf.ragged.boolean_mask(full, _inner(full.row_lengths(), len(prefix), len(suffix)))
    rows, doc = cut(pieces, settings)
    return tf.cast(frame(rows, prefix, suffix), tf.int32), doc.numpy()


def _inner(lengths, before: int, after: int) -> tf.RaggedTensor:
    """Ragged booleans, True on the tokens between the special tokens."""
    positions = tf.ragged.range(lengths)
    return (positions >= before) & (positions < tf.expand_dims(lengths, 1) - after)


def sample_rows(doc: np.ndarray, seed: int) -> np.ndarray:
    """One row index per document, uniformly among its rows, fixed by ``seed`` (``doc`` ascending)."""
    doc = np.asarray(doc)
    counts = np.bincount(doc)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rng = np.random.default_rng(int(seed))
    return starts + np.floor(rng.random(len(counts)) * counts).astype(np.int64)


def summary(token_lengths, settings: LongText, num_special: int = 2) -> dict:
    """How many texts each strategy affects, from untruncated token counts (incl. special tokens)."""
    content = np.maximum(np.asarray(token_lengths, np.int64) - num_special, 0)
    over = content > settings.capacity
    counts = window_counts(content, settings.capacity, settings.stride).numpy()
    return {"strategy": settings.strategy, "window": settings.capacity + num_special,
            "texts_over_window": int(over.sum()), "fraction_over_window": round(float(over.mean()), 4),
            "head_tokens": settings.head_tokens, "tail_tokens": settings.tail_tokens, "stride": settings.stride,
            "windows_per_text": {"mean": round(float(counts.mean()), 3), "max": int(counts.max()),
                                 "total": int(counts.sum())}}


def describe_summary(info: dict) -> str:
    """One line of :func:`summary` for the printed data summary."""
    w = info["windows_per_text"]
    return (f"long texts ({info['strategy']}): {info['texts_over_window']} ({info['fraction_over_window']:.1%}) "
            f"longer than the {info['window']}-token window: truncate cuts their ends; head_tail keeps the first "
            f"{info['head_tokens']} + last {info['tail_tokens']} tokens; windows (stride {info['stride']}) make "
            f"{w['total']} windows, {w['mean']:.2f} per text (max {w['max']})")
