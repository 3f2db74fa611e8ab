"""Encoders and their preprocessors, one interface for both backends.

An encoder is a Keras layer called on a dict of int32 tensors
(``input_word_ids``, ``input_mask`` and, where the model uses segments,
``input_type_ids``; shape [batch, length]) that returns a dict with
``sequence_output`` [batch, length, hidden] and ``pooled_output``
[batch, hidden] (the model's pooler, else the first token's vector).

A preprocessor turns raw strings into that dict. For TF Hub models it is a
Keras layer (in-graph); for HuggingFace models it is the checkpoint's own
tokenizer, run in Python.
"""

from tfbert.encoders.base import INPUT_NAMES, Preprocessor, sentence_vector
from tfbert.encoders.loading import load_encoder, load_preprocessor

__all__ = ["INPUT_NAMES", "Preprocessor", "load_encoder", "load_preprocessor", "sentence_vector"]
