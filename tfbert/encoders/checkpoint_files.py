"""Which weight files a HuggingFace checkpoint folder holds, and how TensorFlow can read them.

``TFAutoModel.from_pretrained`` (transformers 4.53) reads ``tf_model.h5`` and
``model.safetensors`` (TF or PyTorch tensor names; PyTorch ones are renamed
and transposed as it loads, without torch). A folder with only
``pytorch_model.bin`` is a pickled torch state dict: reading it needs torch.
These checks say so in one line, with the command that converts it once,
instead of transformers' multi-line advice to pass ``from_pt=True``.
"""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path

from tfbert.errors import ConfigError

TF_FILES = ("tf_model.h5", "tf_model.h5.index.json")
SAFETENSORS_FILES = ("model.safetensors", "model.safetensors.index.json")
TORCH_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")


def convert_command(source: str, target: str) -> str:
    """A shell command that reads PyTorch weights once (with torch) and saves TF weights."""
    return (f"pip install torch && python -c \"from transformers import AutoTokenizer, TFAutoModel; "
            f"TFAutoModel.from_pretrained('{source}', from_pt=True).save_pretrained('{target}'); "
            f"AutoTokenizer.from_pretrained('{source}').save_pretrained('{target}')\"")


def torch_needed(name: str, source: str, found: str) -> ConfigError:
    target = source if Path(source).is_dir() else f"./{Path(source).name}-tf"
    return ConfigError(
        f"'{name}' has only PyTorch weights ({found}), which need torch to read; install torch "
        f"(pip install torch) or convert them once to TF weights: {convert_command(source, target)}"
        + ("" if target == source else f", then use {target} as the model"))


def _safetensors_format(path: Path) -> str | None:
    """The ``format`` in a safetensors file's header metadata (``pt``, ``tf``, ...), or None."""
    try:
        with open(path, "rb") as f:
            size = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(size))
    except (OSError, ValueError, struct.error):
        return None
    return (header.get("__metadata__") or {}).get("format")


def load_kwargs(name: str, folder: str) -> dict:
    """Extra ``from_pretrained`` arguments for a local checkpoint folder; ConfigError if TF cannot read it.

    Hub ids (not folders) are left to transformers; :func:`explain` turns its
    errors into one line.
    """
    path = Path(folder)
    if not path.is_dir():
        return {}
    present = {f for f in (*TF_FILES, *SAFETENSORS_FILES, *TORCH_FILES) if (path / f).is_file()}
    if "model.safetensors" in present and not present & set(TF_FILES):
        fmt = _safetensors_format(path / "model.safetensors")
        if fmt not in ("pt", "tf", "flax", "mlx"):
            file = path / "model.safetensors"
            raise ConfigError(
                f"'{name}': {file} has no 'format' in its metadata, which transformers needs to read it; "
                f"add it once: python -c \"from safetensors.numpy import load_file, save_file; "
                f"save_file(load_file('{file}'), '{file}', metadata={{'format': 'pt'}})\" "
                f"(use 'tf' instead of 'pt' if its tensor names are TensorFlow's)")
    if present & set(TORCH_FILES) and not present - set(TORCH_FILES):
        if importlib.util.find_spec("torch") is not None:
            return {"from_pt": True}
        raise torch_needed(name, folder, sorted(present)[0])
    return {}


def explain(name: str, source: str, err: Exception) -> ConfigError | None:
    """A one-line ConfigError for transformers' "only PyTorch weights" errors; None for others."""
    text = str(err)
    if "from_pt=True" in text or "file for PyTorch weights" in text:
        return torch_needed(name, source, "pytorch_model.bin")
    return None
