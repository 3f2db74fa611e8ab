"""tfbert: a TensorFlow/Keras model zoo for fine-tuning BERT-family encoders.

    >>> import tfbert
    >>> tfbert.list_models("*minilm*")
    ['minilm-l6-h384-uncased']
    >>> model = tfbert.create_classifier("minilm-l6-h384-uncased", head="dense")

Importing tfbert selects Keras 2 (tf-keras), which TF Hub layers and HF TF
models need; heavy modules load on first use so that ``tfbert models`` is fast.
"""

import importlib
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

from tfbert.errors import (  # noqa: E402
    ConfigError, DataError, ExportError, TfbertError, UnknownModelError)
from tfbert.registry import (  # noqa: E402
    ModelSpec, get_spec, is_model, list_models, load_registry_file, register_model)

_LAZY = {
    "TextClassifier": "tfbert.models",
    "create_classifier": "tfbert.models",
    "create_preprocessor": "tfbert.models",
    "load_encoder": "tfbert.encoders",
    "load_preprocessor": "tfbert.encoders",
    "HEADS": "tfbert.heads",
    "HeadSpec": "tfbert.heads",
    "register_head": "tfbert.heads",
    "create_optimizer": "tfbert.optimization",
    "compile_classifier": "tfbert.training",
    "make_dataset": "tfbert.training",
    "predict_logits": "tfbert.training",
    "train_classifier": "tfbert.training",
    "export_classifier": "tfbert.export",
    "LongText": "tfbert.long_text",
    "RunFolder": "tfbert.runs",
    "learn_vocab": "tfbert.vocab",
    "pretrain": "tfbert.pretraining",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tfbert' has no attribute '{name}'")


__all__ = [
    "ConfigError", "DataError", "ExportError", "TfbertError", "UnknownModelError",
    "ModelSpec", "get_spec", "is_model", "list_models", "load_registry_file",
    "register_model", *_LAZY,
]
