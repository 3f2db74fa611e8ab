"""Pick the backend from the registry entry."""

from __future__ import annotations

from tfbert.errors import ConfigError
from tfbert.registry import get_spec


def _check_length(spec, seq_length: int) -> None:
    if not isinstance(seq_length, int) or seq_length < 2:
        raise ConfigError(f"seq_length must be an integer >= 2, got {seq_length!r}")
    if seq_length > spec.max_seq_length:
        raise ConfigError(
            f"seq_length {seq_length} is longer than '{spec.name}' allows ({spec.max_seq_length}); "
            f"use --seq-length {spec.max_seq_length} or less")


def load_encoder(name_or_spec, trainable: bool = True):
    """The encoder layer (named ``encoder``) for a registry name or spec."""
    spec = get_spec(name_or_spec)
    if spec.backend == "tfhub":
        from tfbert.encoders.tfhub import load_tfhub_encoder
        return load_tfhub_encoder(spec, trainable)
    from tfbert.encoders.huggingface import load_hf_encoder
    return load_hf_encoder(spec, trainable)


def load_preprocessor(name_or_spec, seq_length: int = 128):
    """The matching preprocessor: in-graph for TF Hub, Python-side for HuggingFace."""
    spec = get_spec(name_or_spec)
    _check_length(spec, seq_length)
    if spec.backend == "tfhub":
        from tfbert.encoders.tfhub import TFHubPreprocessor
        return TFHubPreprocessor(spec, seq_length)
    from tfbert.encoders.huggingface import HFPreprocessor
    return HFPreprocessor(spec, seq_length)
