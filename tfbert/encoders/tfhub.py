"""TF Hub backend: encoder and preprocess SavedModels loaded with hub.KerasLayer."""

from __future__ import annotations

import tensorflow as tf
import tensorflow_hub as hub
import tensorflow_text  # noqa: F401  (registers the ops preprocess models use)
import tf_keras as keras

from tfbert import conversion_cache, scratch_cache
from tfbert.encoders.base import Preprocessor, TextFrontEnd, as_text_list, check_pairs, with_type_ids
from tfbert.errors import ConfigError


def _load(handle: str, what: str, name: str):
    # Handles built on first use: converted:NAME/PART and scratch:SIZE@VOCAB_DIR.
    part = "encoder" if what == "encoder" else "preprocess"
    path = scratch_cache.resolve_handle(conversion_cache.resolve_handle(handle), part)
    try:
        return hub.load(path)
    except Exception as err:  # hub raises many types; the user needs one line
        raise ConfigError(
            f"could not load the TF Hub {what} of '{name}' from {handle}: "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}; "
            f"check the handle, or download it and point the registry entry at the local folder"
        ) from None


def load_tfhub_encoder(spec, trainable: bool = True) -> keras.layers.Layer:
    """``hub.KerasLayer`` on the encoder; called on the standard dict, returns its dict."""
    scratch_cache.check_pair(spec.name, spec.encoder_path, spec.preprocess_path)
    obj = _load(spec.encoder_path, "encoder", spec.name)
    return hub.KerasLayer(obj, trainable=trainable, name="encoder")


class TFHubPreprocessor(Preprocessor, keras.layers.Layer):
    """The preprocess model's ``tokenize`` then ``bert_pack_inputs(seq_length=...)``.

    Calling the preprocess model directly would fix the length at its default
    (128); packing separately makes the length a parameter.
    """

    in_graph = True

    def __init__(self, spec, seq_length: int, name: str = "preprocess"):
        keras.layers.Layer.__init__(self, name=name, trainable=False)
        Preprocessor.__init__(self, spec, seq_length)
        scratch_cache.check_pair(spec.name, spec.encoder_path, spec.preprocess_path)
        self._hub_object = _load(spec.preprocess_path, "preprocess model", spec.name)
        self.tokenize_layer = hub.KerasLayer(self._hub_object.tokenize, name="tokenize")
        self.pack_layer = hub.KerasLayer(
            self._hub_object.bert_pack_inputs, arguments=dict(seq_length=seq_length),
            name="bert_pack_inputs")
        self._vocab = None

    def call(self, texts):
        if isinstance(texts, (list, tuple)):  # [text, text_pair]: HF's truncation, not bert_pack_inputs'
            from tfbert.tokenizers import pack_inputs

            packed = pack_inputs([self.tokenize_layer(t) for t in texts], self.seq_length, self.special_tokens)
        else:
            packed = self.pack_layer([self.tokenize_layer(texts)])
        return {k: packed[k] for k in self.input_names}

    def __call__(self, texts, *args, **kwargs):
        if isinstance(texts, (list, tuple)) and all(isinstance(t, str) for t in texts):
            texts = tf.constant(list(texts), dtype=tf.string)
        return keras.layers.Layer.__call__(self, texts, *args, **kwargs)

    def text_front_end(self) -> tuple[TextFrontEnd, str]:
        # The tokenize sub-object holds the vocabulary table and asset; the
        # whole preprocess model is the fallback if its resources live elsewhere.
        hub_object = self._hub_object
        return TextFrontEnd(self.tokenize_layer, self.pack_layer, [getattr(hub_object, "tokenize", hub_object)],
                            kind="tfhub_preprocess", source=self.spec.preprocess,
                            fallback_resources=[hub_object], special_tokens=dict(self.special_tokens)), ""

    def _vocabulary(self) -> list[str]:
        if self._vocab is None:
            encoder = _load(self.spec.encoder_path, "encoder", self.spec.name)
            vocab_asset = getattr(encoder, "vocab_file", None)
            if vocab_asset is None:
                return []
            path = vocab_asset.asset_path.numpy().decode()
            with tf.io.gfile.GFile(path) as f:
                self._vocab = [line.rstrip("\n") for line in f]
        return self._vocab

    @property
    def special_tokens(self) -> dict:
        if not hasattr(self, "_special"):
            with tf.init_scope():  # eager even when first asked while a Keras model is being built
                special = self._hub_object.tokenize.get_special_tokens_dict()
                self._special = {k: int(v.numpy()) for k, v in special.items()}
        return self._special

    @property
    def pad_id(self) -> int:
        return self.special_tokens["padding_id"]

    def token_ids(self, texts, max_length: int | None = None, chunk: int = 1024,
                  text_pairs=None) -> tf.RaggedTensor:
        """Like ``bert_pack_inputs`` for one segment, without padding; pairs as HF packs them."""
        texts = as_text_list(texts)
        pairs = None if text_pairs is None else check_pairs(texts, text_pairs)
        length = max_length or self.seq_length
        parts = []
        for i in range(0, len(texts), chunk):
            segments = [self._pieces(texts[i:i + chunk])]
            if pairs is not None:
                segments.append(self._pieces(pairs[i:i + chunk]))
            parts.append(self._combine(segments, length, pairs is not None))
        if not parts:
            empty = tf.RaggedTensor.from_row_lengths(tf.zeros([0], tf.int32), tf.zeros([0], tf.int64))
            return empty if pairs is None else with_type_ids(empty, empty)
        return tf.concat(parts, axis=0)

    def _pieces(self, texts: list[str]) -> tf.RaggedTensor:
        tokens = self.tokenize_layer(tf.constant(texts, dtype=tf.string))
        if tokens.ragged_rank == 2:  # [batch, words, pieces] -> [batch, pieces]
            tokens = tokens.merge_dims(-2, -1)
        return tf.cast(tokens, tf.int32)

    def _combine(self, segments, length: int, pairs: bool) -> tf.RaggedTensor:
        from tfbert.tokenizers import combine_segments

        ids, type_ids = combine_segments(segments, length, self.special_tokens)
        return with_type_ids(ids, type_ids) if pairs else ids

    def token_ids_graph(self, texts: tf.Tensor, length: int) -> tf.Tensor:
        """In-graph tokenize + pack to a fixed ``length`` (the usual per-epoch pipeline)."""
        packed = self._hub_object.bert_pack_inputs([self.tokenize_layer(texts)], seq_length=length)
        return tf.cast(packed["input_word_ids"], tf.int32)

    def tokenize(self, text: str) -> tuple[list[str], list[int]]:
        packed = self([text])
        mask = packed["input_mask"].numpy()[0].astype(bool)
        ids = packed["input_word_ids"].numpy()[0][mask].tolist()
        vocab = self._vocabulary()
        pieces = [vocab[i] if i < len(vocab) else f"<{i}>" for i in ids]
        return pieces, ids
