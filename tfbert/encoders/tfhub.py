"""TF Hub backend: encoder and preprocess SavedModels loaded with hub.KerasLayer."""

from __future__ import annotations

import tensorflow as tf
import tensorflow_hub as hub
import tensorflow_text  # noqa: F401  (registers the ops preprocess models use)
import tf_keras as keras

from tfbert import conversion_cache
from tfbert.encoders.base import Preprocessor, TextFrontEnd
from tfbert.errors import ConfigError


def _load(handle: str, what: str, name: str):
    try:
        return hub.load(conversion_cache.resolve_handle(handle))
    except Exception as err:  # hub raises many types; the user needs one line
        raise ConfigError(
            f"could not load the TF Hub {what} of '{name}' from {handle}: "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}; "
            f"check the handle, or download it and point the registry entry at the local folder"
        ) from None


def load_tfhub_encoder(spec, trainable: bool = True) -> keras.layers.Layer:
    """``hub.KerasLayer`` on the encoder; called on the standard dict, returns its dict."""
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
        self._hub_object = _load(spec.preprocess_path, "preprocess model", spec.name)
        self.tokenize_layer = hub.KerasLayer(self._hub_object.tokenize, name="tokenize")
        self.pack_layer = hub.KerasLayer(
            self._hub_object.bert_pack_inputs, arguments=dict(seq_length=seq_length),
            name="bert_pack_inputs")
        self._vocab = None

    def call(self, texts):
        packed = self.pack_layer([self.tokenize_layer(texts)])
        return {k: packed[k] for k in self.input_names}

    def __call__(self, texts, *args, **kwargs):
        if isinstance(texts, (list, tuple)):
            texts = tf.constant(list(texts), dtype=tf.string)
        return keras.layers.Layer.__call__(self, texts, *args, **kwargs)

    def text_front_end(self) -> tuple[TextFrontEnd, str]:
        # The tokenize sub-object holds the vocabulary table and asset; the
        # whole preprocess model is the fallback if its resources live elsewhere.
        hub_object = self._hub_object
        return TextFrontEnd(self.tokenize_layer, self.pack_layer, [getattr(hub_object, "tokenize", hub_object)],
                            kind="tfhub_preprocess", source=self.spec.preprocess,
                            fallback_resources=[hub_object]), ""

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
            special = self._hub_object.tokenize.get_special_tokens_dict()
            self._special = {k: int(v.numpy()) for k, v in special.items()}
        return self._special

    @property
    def pad_id(self) -> int:
        return self.special_tokens["padding_id"]

    def token_ids(self, texts, max_length: int | None = None, chunk: int = 1024) -> tf.RaggedTensor:
        """Like ``bert_pack_inputs`` for one segment, without padding."""
        if isinstance(texts, str):
            texts = [texts]
        texts = [str(t) for t in texts]
        keep = (max_length or self.seq_length) - 2
        cls, sep = self.special_tokens["start_of_sequence_id"], self.special_tokens["end_of_segment_id"]
        parts = []
        for i in range(0, len(texts), chunk):
            tokens = self.tokenize_layer(tf.constant(texts[i:i + chunk]))
            if tokens.ragged_rank == 2:  # [batch, words, pieces] -> [batch, pieces]
                tokens = tokens.merge_dims(-2, -1)
            tokens = tf.cast(tokens[:, :keep], tf.int32)
            n = tokens.nrows()
            parts.append(tf.concat([tf.fill([n, 1], cls), tokens, tf.fill([n, 1], sep)], axis=1))
        return tf.concat(parts, axis=0)

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
