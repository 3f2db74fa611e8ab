"""What both backends share: input names, the preprocessor contract, pooling."""

from __future__ import annotations

import dataclasses
from typing import Callable

import tensorflow as tf
import tf_keras as keras

INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")


@dataclasses.dataclass
class TextFrontEnd:
    """Strings -> packed ids with TF ops only, so an exported model can take raw text.

    Attributes:
        tokenize: callable. String tensor [batch] -> ragged ids [batch, (words), (pieces)]
            or [batch, (pieces)].
        pack: callable. ``[ragged ids]`` -> dict of ids padded to ``seq_length``
            (``input_word_ids``, ``input_mask``, ``input_type_ids``).
        resources: list. Trackable objects holding the vocabulary tables and
            assets the two use; a SavedModel must track them.
        fallback_resources: list or None. A larger set to track if saving with
            ``resources`` reports untracked resources.
        kind: str. What the tokenizer is, for the export's description.
        source: str. Where its vocabulary came from.
        special_tokens: dict or None. ``start_of_sequence_id``, ``end_of_segment_id``
            and ``padding_id``, for packing sentence pairs with
            ``tfbert.tokenizers.pack_inputs`` (HF's truncation; ``pack`` may be
            tf-models' ``BertPackInputs``, which truncates pairs differently).
    """

    tokenize: Callable
    pack: Callable
    resources: list
    kind: str
    source: str
    fallback_resources: list | None = None
    special_tokens: dict | None = None


class Preprocessor:
    """Strings -> the encoder's int32 input dict, plus helpers for display.

    Attributes:
        spec: ModelSpec. The registry entry.
        seq_length: int. Inputs are truncated (and, unless dynamic, padded) to it.
        input_names: tuple of str. The keys the encoder takes.
        in_graph: bool. True when ``__call__`` is made of TF ops (TF Hub), so it
            can live inside a Keras model or a SavedModel.
    """

    in_graph = False

    def __init__(self, spec, seq_length: int):
        self.spec = spec
        self.seq_length = seq_length
        self.input_names = INPUT_NAMES if spec.uses_token_type_ids else INPUT_NAMES[:2]

    def __call__(self, texts):
        raise NotImplementedError

    def tokenize(self, text: str) -> tuple[list[str], list[int]]:
        """Pieces and ids of one text, with the model's special tokens."""
        raise NotImplementedError

    @property
    def pad_id(self) -> int:
        raise NotImplementedError

    def text_front_end(self) -> tuple[TextFrontEnd | None, str]:
        """The in-graph tokenizer for exports, or (None, the reason there is none)."""
        return None, "the preprocessor runs in Python"

    def token_ids(self, texts, max_length: int | None = None, text_pairs=None) -> tf.RaggedTensor:
        """Ids of each text with special tokens, truncated to ``max_length``
        (default ``seq_length``), unpadded: [n, (length)] int32.

        With ``text_pairs`` (one second text per text), each row is the pair
        packed and truncated as HuggingFace's tokenizers do
        (``truncation="longest_first"``), with its segment ids alongside:
        [n, (length), 2] int32, ``[..., 0]`` the ids and ``[..., 1]`` the
        segment (0 for ``[CLS] A [SEP]``, 1 for ``B [SEP]``). Carrying the
        segment ids, rather than finding the first ``[SEP]`` later, keeps them
        right when a text holds a literal ``[SEP]``.

        Token ids instead of padded arrays let the input pipeline batch texts
        of similar length together and pad each batch only to its own longest.
        """
        raise NotImplementedError


def ragged_from_lists(lists) -> tf.RaggedTensor:
    """A [n, (len)] int32 RaggedTensor from Python lists, without tf.ragged.constant's slowness."""
    import numpy as np

    lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
    values = np.fromiter((i for x in lists for i in x), dtype=np.int32, count=int(lengths.sum()))
    return tf.RaggedTensor.from_row_lengths(values, lengths)


def with_type_ids(ids: tf.RaggedTensor, type_ids: tf.RaggedTensor) -> tf.RaggedTensor:
    """[n, (length)] ids and segment ids -> one [n, (length), 2] RaggedTensor (see ``Preprocessor.token_ids``)."""
    values = tf.stack([tf.cast(ids.flat_values, tf.int32), tf.cast(type_ids.flat_values, tf.int32)], axis=1)
    return tf.RaggedTensor.from_row_splits(values, ids.row_splits)


def as_text_list(texts) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    return [str(t) for t in texts]


def check_pairs(texts: list[str], text_pairs) -> list[str]:
    """``text_pairs`` as a list of str, one per text; DataError when the counts differ."""
    from tfbert.errors import DataError

    pairs = as_text_list(text_pairs)
    if len(pairs) != len(texts):
        raise DataError(f"{len(texts)} texts but {len(pairs)} second texts (text_pairs); give one pair per text")
    return pairs


class MeanPool(keras.layers.Layer):
    """Masked mean of token vectors: padding does not dilute the average."""

    def call(self, sequence_output, input_mask):
        # Sum in float32: a bfloat16 sum over hundreds of tokens loses most of
        # its 8-bit mantissa.
        sequence_output = tf.cast(sequence_output, tf.float32)
        mask = tf.cast(input_mask, tf.float32)[:, :, None]
        total = tf.reduce_sum(sequence_output * mask, axis=1)
        count = tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
        return tf.cast(total / count, self.compute_dtype)


def sentence_vector(outputs: dict, input_mask, pooling: str):
    """The [batch, hidden] sentence vector: ``pooled``, ``cls`` or ``mean``."""
    if pooling == "pooled":
        return outputs["pooled_output"]
    if pooling == "cls":
        return keras.layers.Lambda(lambda s: s[:, 0, :], name="cls_vector")(outputs["sequence_output"])
    return MeanPool(name="mean_pool")(outputs["sequence_output"], input_mask)
