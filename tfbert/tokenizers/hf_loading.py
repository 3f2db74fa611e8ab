"""Load a HuggingFace tokenizer folder, with the class a registry entry names if it names one.

Used both where models are built and where exports are read back, so a
tokenizer whose class is tfbert's own (``KoBERTTokenizer``) reloads as the
same class from an exported ``tokenizer/`` folder.
"""

from __future__ import annotations

import json
from pathlib import Path

from tfbert.errors import ConfigError

# Classes tfbert provides, by the name a registry entry or a saved tokenizer_config.json uses.
_OWN_CLASSES = {"KoBERTTokenizer": ("tfbert.tokenizers.kobert", "KoBERTTokenizer")}


def tokenizer_class(name: str):
    """The tokenizer class called ``name``: tfbert's own, else one of ``transformers``."""
    import importlib

    if name in _OWN_CLASSES:
        module, attr = _OWN_CLASSES[name]
        return getattr(importlib.import_module(module), attr)
    import transformers

    cls = getattr(transformers, name, None)
    if cls is None or not hasattr(cls, "from_pretrained"):
        raise ConfigError(
            f"unknown tokenizer_class '{name}'; use {', '.join(_OWN_CLASSES)} or a transformers tokenizer "
            f"class name such as AlbertTokenizer or XLMRobertaTokenizer")
    return cls


def saved_class_name(folder: str) -> str | None:
    """The ``tokenizer_class`` a local folder's ``tokenizer_config.json`` records, if it is one of tfbert's."""
    path = Path(folder) / "tokenizer_config.json"
    try:
        name = json.loads(path.read_text(encoding="utf-8")).get("tokenizer_class")
    except (OSError, ValueError, AttributeError):
        return None
    return name if name in _OWN_CLASSES else None


def load_hf_tokenizer(path: str, class_name: str | None = None):
    """``class_name.from_pretrained(path)``, or ``AutoTokenizer`` when no class is named.

    A folder saved from one of tfbert's classes names it in its
    ``tokenizer_config.json``; ``AutoTokenizer`` does not know those names,
    so they are looked up here first.
    """
    class_name = class_name or saved_class_name(path)
    if class_name:
        from transformers.utils import logging as hf_logging

        cls = tokenizer_class(class_name)
        # Naming a class on purpose (KoBERT's config says XLNetTokenizer) is not worth a warning.
        previous = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            return cls.from_pretrained(path)
        finally:
            hf_logging.set_verbosity(previous)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)
