"""HuggingFace backend: ``TFAutoModel`` with the checkpoint's own tokenizer."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

from tfbert.encoders.base import Preprocessor, TextFrontEnd, as_text_list, check_pairs, ragged_from_lists, with_type_ids
from tfbert.errors import ConfigError


def _load_error(spec, what, err) -> ConfigError:
    import os

    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    source = spec.tokenizer_path if what == "tokenizer" else spec.encoder_path
    if not os.path.isdir(source) and os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        # Offline, transformers' own error is about a missing file, not about the network.
        first = f"it is not a local folder and HF_HUB_OFFLINE is set ({first})"
    return ConfigError(
        f"could not load the HuggingFace {what} of '{spec.name}' from '{source}': {first}; "
        f"if this machine is offline, save the checkpoint with save_pretrained (or "
        f"huggingface-cli download {source} --local-dir DIR) and point the registry entry at that folder")


class HFEncoder(keras.layers.Layer):
    """Wraps a ``TF*Model`` so it speaks the TF Hub encoder dict."""

    def __init__(self, hf_model, uses_token_type_ids: bool, has_pooler: bool, **kwargs):
        super().__init__(**kwargs)
        self.hf_model = hf_model
        self.uses_token_type_ids = uses_token_type_ids
        self.has_pooler = has_pooler

    def call(self, inputs, training=None):
        # A frozen encoder is a fixed feature extractor: no dropout noise, as
        # hub.KerasLayer(trainable=False) does for TF Hub encoders.
        training = bool(training) and self.trainable
        kwargs = dict(input_ids=inputs["input_word_ids"], attention_mask=inputs["input_mask"])
        if self.uses_token_type_ids and "input_type_ids" in inputs:
            kwargs["token_type_ids"] = inputs["input_type_ids"]
        out = self.hf_model(**kwargs, training=training)
        sequence = out.last_hidden_state
        pooled = getattr(out, "pooler_output", None) if self.has_pooler else None
        if pooled is None:
            pooled = sequence[:, 0, :]
        return {"sequence_output": sequence, "pooled_output": pooled}

    def freeze_pooler(self) -> None:
        """Stop training the pooler when the head does not use it.

        Its weights would get no gradient (Keras warns at every step) yet still
        be touched by weight decay.
        """
        main = getattr(self.hf_model, self.hf_model.base_model_prefix, self.hf_model)
        pooler = getattr(main, "pooler", None)
        if pooler is not None:
            pooler.trainable = False


def load_hf_encoder(spec, trainable: bool = True) -> HFEncoder:
    from transformers import TFAutoModel
    from transformers.utils import logging as hf_logging

    from tfbert.encoders import checkpoint_files

    hf_logging.set_verbosity_error()  # weight-loading chatter is not for users
    kwargs = checkpoint_files.load_kwargs(spec.name, spec.encoder_path)
    try:
        model = TFAutoModel.from_pretrained(spec.encoder_path, **kwargs)
    except Exception as err:
        raise checkpoint_files.explain(spec.name, spec.encoder_path, err) or _load_error(
            spec, "checkpoint", err) from None
    has_pooler = spec.has_pooler and hasattr(getattr(model, model.base_model_prefix, model), "pooler")
    encoder = HFEncoder(model, spec.uses_token_type_ids, has_pooler, name="encoder")
    encoder.trainable = trainable
    return encoder


class HFPreprocessor(Preprocessor):
    """The checkpoint's tokenizer, run in Python (fixed-length padding)."""

    def __init__(self, spec, seq_length: int):
        super().__init__(spec, seq_length)
        from tfbert.tokenizers.hf_loading import load_hf_tokenizer

        try:
            self.hf_tokenizer = load_hf_tokenizer(spec.tokenizer_path, spec.tokenizer_class)
        except ConfigError:
            raise
        except Exception as err:
            raise _load_error(spec, "tokenizer", err) from None

    def encode(self, texts, padding="max_length") -> dict[str, np.ndarray]:
        enc = self.hf_tokenizer(
            list(texts), truncation=True, max_length=self.seq_length, padding=padding,
            return_token_type_ids=self.spec.uses_token_type_ids, return_tensors="np")
        out = {"input_word_ids": enc["input_ids"], "input_mask": enc["attention_mask"]}
        if self.spec.uses_token_type_ids:
            out["input_type_ids"] = enc["token_type_ids"]
        return {k: v.astype(np.int32) for k, v in out.items()}

    def __call__(self, texts):
        if isinstance(texts, str):
            texts = [texts]
        if isinstance(texts, (tf.Tensor, np.ndarray)):
            texts = [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in np.asarray(texts)]
        return {k: tf.constant(v) for k, v in self.encode(texts).items()}

    def tokenize(self, text: str) -> tuple[list[str], list[int]]:
        ids = self.token_ids([text])[0].numpy().tolist()
        return self.hf_tokenizer.convert_ids_to_tokens(ids), ids

    @property
    def pad_id(self) -> int:
        return int(self.hf_tokenizer.pad_token_id or 0)

    def text_front_end(self) -> tuple[TextFrontEnd | None, str]:
        """tfbert's in-graph WordPiece tokenizer, rebuilt from the checkpoint's (same ids)."""
        from official.nlp.modeling.layers import BertPackInputs

        from tfbert.errors import ExportError
        from tfbert.tokenizers import WordPieceTokenizer

        if (self.spec.tokenizer_type or "wordpiece").lower() != "wordpiece":
            return None, f"its tokenizer is {self.spec.tokenizer_type}, not WordPiece"
        try:
            tokenizer = WordPieceTokenizer.from_hf(self.hf_tokenizer)
        except ExportError as err:
            return None, str(err).split(";")[0]
        pack = BertPackInputs(self.seq_length, special_tokens_dict=tokenizer.get_special_tokens_dict(),
                              name="pack_inputs")
        return TextFrontEnd(tokenizer, pack, [tokenizer], kind="wordpiece",
                            source=self.spec.tokenizer or self.spec.encoder,
                            special_tokens=tokenizer.get_special_tokens_dict()), ""

    def token_ids(self, texts, max_length: int | None = None, chunk: int = 4096,
                  text_pairs=None) -> tf.RaggedTensor:
        texts = as_text_list(texts)
        pairs = None if text_pairs is None else check_pairs(texts, text_pairs)
        ids, type_ids = [], []
        for i in range(0, len(texts), chunk):  # bounded memory for big data sets
            second = [] if pairs is None else [pairs[i:i + chunk]]
            # truncation=True is "longest_first": the longer text loses tokens first
            enc = self.hf_tokenizer(texts[i:i + chunk], *second, truncation=True,
                                    max_length=max_length or self.seq_length, add_special_tokens=True,
                                    return_token_type_ids=pairs is not None)
            ids += enc["input_ids"]
            if pairs is not None:
                type_ids += enc["token_type_ids"]
        if pairs is None:
            return ragged_from_lists(ids)
        return with_type_ids(ragged_from_lists(ids), ragged_from_lists(type_ids))


def check_pairing(preprocessor, encoder) -> None:
    """ConfigError when a tokenizer cannot be the one the model was trained with.

    Ids past the embedding table, or a [CLS] token placed last (an XLNet
    layout on a BERT-style model, as ``AutoTokenizer`` builds for KoBERT)
    would train without an error and learn from the wrong vectors.
    """
    tokenizer, config = preprocessor.hf_tokenizer, encoder.hf_model.config
    rows = getattr(config, "vocab_size", None)
    name = preprocessor.spec.name
    fix = ("use the tokenizer the model was trained with: set the registry entry's 'tokenizer' "
           "(its files) or 'tokenizer_class' (e.g. KoBERTTokenizer)")
    if rows and len(tokenizer) > rows:
        raise ConfigError(
            f"the tokenizer of '{name}' has {len(tokenizer)} ids but the model has {rows} token embeddings, "
            f"so they are not a pair; {fix}")
    cls_id = tokenizer.cls_token_id
    if cls_id is None or getattr(config, "model_type", "") == "xlnet":
        return
    ids = preprocessor.token_ids(["a"])[0].numpy().tolist()
    if ids and ids[0] != cls_id:
        raise ConfigError(
            f"the tokenizer of '{name}' ({type(tokenizer).__name__}) does not start texts with "
            f"{tokenizer.cls_token} (it gives {tokenizer.convert_ids_to_tokens(ids)}), but the model reads "
            f"the first token as the sentence; {fix}")
