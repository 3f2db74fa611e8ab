"""Run settings: one dataclass, its command-line flags, YAML files and sweep grids.

Precedence: dataclass defaults < ``--config FILE.yaml`` < command-line flags.
A setting given as a list (several values after a flag, or a YAML list, or a
``grid:`` section in the YAML file) makes a sweep over every combination.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
import json
import math
import re
from pathlib import Path

import yaml

from tfbert.errors import ConfigError


def _field(default, help, group, sweep=False):
    return dataclasses.field(default=default, metadata={"help": help, "group": group, "sweep": sweep})


@dataclasses.dataclass
class RunConfig:
    """Everything one training run needs; each field is a ``--flag``."""

    # model
    model: str = _field("minilm-l6-h384-uncased", "registry name, hf:<checkpoint> or a local folder", "model", True)
    head: str = _field("dense", "dense, cls_bn, bilstm, transformer, or one added with tfbert.register_head "
                                "(tfbert --plugin FILE)", "model", True)
    seq_length: int | None = _field(None, "maximum tokens per text, or auto: the smallest length covering --length-percentile of training texts", "model", True)
    length_percentile: float = _field(99.0, "percentile of training texts the automatic length covers", "model")
    train_encoder: bool | None = _field(None, "fine-tune the encoder (default: the head's; dense trains it, frozen heads do not)", "model", True)
    hidden_units: int | None = _field(None, "head Dense size (cls_bn, bilstm; default: the head's)", "model", True)
    dropout: float | None = _field(None, "head dropout (default: the head's)", "model", True)
    lstm_units: int | None = _field(None, "BiLSTM units per direction (bilstm; default: the head's)", "model", True)
    head_options: str | None = _field(None, "more head options as NAME=VALUE pairs, comma-separated, e.g. "
                                            "'num_layers=2,num_heads=4' (transformer) or a registered head's", "model", True)
    # long texts (tfbert.long_text)
    long_text: str = _field("truncate", "texts longer than seq_length: truncate (keep the start), head_tail (the "
                                        "first --head-tokens and last --tail-tokens) or windows (overlapping "
                                        "windows, --stride apart, logits pooled per text)", "long texts", True)
    head_tokens: int | None = _field(None, "head_tail: text tokens kept from the start (default: 128 of a 512 "
                                           "window, as Sun et al. 2019, scaled to --seq-length)", "long texts", True)
    tail_tokens: int | None = _field(None, "head_tail: text tokens kept from the end (default: the rest of the "
                                           "window)", "long texts", True)
    stride: int | None = _field(None, "windows: text tokens from one window's start to the next (default: half "
                                      "a window)", "long texts", True)
    window_pooling: str = _field("mean", "windows: pool the windows' logits per text by mean or max", "long texts",
                                 True)
    window_training: str = _field("all", "windows: train on all windows with the text's label, or sample one "
                                         "window per text each epoch", "long texts", True)
    # task
    task: str = _field("classification", "what to predict: classification (one class per text), regression (a number: "
                                         "STS scores, ratings) or multi_label (any number of tags per text)", "task")
    label_separator: str = _field(",", "multi_label: the character between tags in a label cell such as 'spam,ads' "
                                       "(JSON lists work too; an empty cell means no tag)", "task")
    loss: str = _field("auto", "auto (the task's: cross-entropy; mse for regression), or mse / huber for regression",
                       "task", True)
    threshold: str = _field("tune", "multi_label: probability from which a tag is chosen: a number, tune (one cut "
                                    "maximising micro-F1 on validation data; 0.5 without any) or tune_per_label; "
                                    "saved with the model", "task")
    # data
    data: str | None = _field(None, "data set with train/test splits: demo, imdb[:PATH], nsmc[:PATH] or a folder", "data")
    train: str | None = _field(None, "training file (CSV/TSV/JSONL/NSMC, .gz ok) or folder", "data")
    valid: str | None = _field(None, "validation file; default: a stratified split of train", "data")
    test: str | None = _field(None, "test file; default: the data set's test split if any", "data")
    text_column: str = _field("text", "text column of CSV/TSV/JSONL files", "data")
    text_pair_column: str | None = _field(None, "second text column of sentence pairs (NLI, paraphrase): the model "
                                                "reads [CLS] text [SEP] pair [SEP]", "data")
    label_column: str = _field("label", "label column of CSV/TSV/JSONL files", "data")
    valid_fraction: float = _field(0.1, "fraction of train held out for validation when --valid is not given", "data")
    max_train_examples: int | None = _field(None, "use at most this many training examples (stratified sample)", "data")
    drop_empty: bool = _field(True, "drop empty documents", "data")
    drop_duplicates: bool = _field(True, "drop duplicate documents (first one kept)", "data")
    # training
    epochs: int = _field(2, "passes over the training data", "training", True)
    batch_size: int = _field(32, "examples per batch", "training", True)
    accumulation_steps: int = _field(1, "average the gradients of this many batches per update: an effective batch "
                                        "of batch-size x this, in the memory of one batch", "training", True)
    learning_rate: float | None = _field(None, "peak learning rate (default: the head's, see tfbert.heads.HEADS)", "training", True)
    warmup_ratio: float = _field(0.1, "fraction of steps with linear warmup", "training", True)
    warmup_steps: int | None = _field(None, "warmup length in optimizer steps (overrides --warmup-ratio)", "training", True)
    weight_decay: float = _field(0.01, "AdamW decoupled weight decay", "training", True)
    clip_norm: float = _field(1.0, "clip gradients to this global norm (0: off)", "training", True)
    seed: int = _field(42, "random seed (data split, init, shuffling)", "training", True)
    precision: str = _field("auto", "auto (bfloat16 mixed precision where the CPU/GPU is fast at it), bfloat16 or float32", "speed", True)
    bucketing: bool = _field(True, "batch texts of similar length together, each batch padded to its own longest", "speed")
    jit_compile: bool = _field(False, "compile training steps with XLA (batches padded to bucket bounds; measured slower on CPU)", "speed")
    cache_encoder_outputs: bool = _field(True, "frozen encoder: compute its outputs once and train only the head on them ($TFBERT_ENCODER_CACHE_MB caps the memory)", "speed")
    eval_every_steps: int | None = _field(None, "also score the validation set every N batches (RUN/steps.csv, "
                                                "TensorBoard step_val_*)", "training")
    log_every_steps: int | None = _field(None, "write training loss and accuracy to TensorBoard every N batches "
                                               "(default: per epoch)", "training")
    save_every_steps: int | None = _field(None, "also checkpoint the run every N batches (it always checkpoints at each "
                                                "epoch end); --resume continues a killed run from its last checkpoint", "training")
    keep_checkpoints: int = _field(1, "checkpoints kept in RUN/checkpoints while a run trains (removed when it finishes)",
                                   "training")
    early_stopping: int = _field(0, "stop after this many epochs without val_loss improvement (0: off)", "training")
    restore_best: bool = _field(False, "end with the weights of the epoch with the lowest val_loss", "training")
    # distribution
    strategy: str = _field("auto", "auto (mirrored when several GPUs are visible, else one device), one_device, mirrored, "
                                   "multi_worker (machines from $TF_CONFIG) or tpu; --batch-size is the global batch",
                           "distribution")
    workers: int = _field(1, "run a sweep's runs in this many processes on this machine, each on its share of the CPU "
                             "cores or on one GPU", "distribution")
    worker_timeout: float = _field(300.0, "seconds without a heartbeat after which a run claimed by a dead sweep worker "
                                          "(this machine or another sharing --output-dir) is taken over", "distribution")
    # output
    output_dir: str = _field("runs", "sweep folder; each run gets a sub-folder named after its settings", "output")
    resume: bool = _field(True, "skip runs already finished in output_dir and continue killed ones from their last "
                                "checkpoint (--no-resume: start them over)", "output")
    export: bool = _field(True, "export the trained model (raw-string SavedModel) into the run folder", "output")
    tensorboard: bool = _field(True, "write TensorBoard scalars (loss, accuracy, learning rate, examples/s, validation) "
                                     "to RUN/logs; tensorboard --logdir OUTPUT_DIR compares a sweep's runs", "output")

    def head_kwargs(self) -> dict:
        """Every head option, the named flags and ``head_options`` together (unset ones None)."""
        return {"hidden_units": self.hidden_units, "dropout": self.dropout, "lstm_units": self.lstm_units,
                **parse_head_options(self.head_options)}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def parse_head_options(text: str | None) -> dict:
    """``"num_layers=2,head_pooling=cls"`` -> ``{"num_layers": 2, "head_pooling": "cls"}`` (YAML scalars)."""
    options = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, eq, value = part.partition("=")
        if not eq or not name.strip().isidentifier():
            raise ConfigError(f"--head-options: '{part.strip()}' is not NAME=VALUE; "
                              f"write e.g. 'num_layers=2,num_heads=4'")
        options[name.strip()] = yaml.safe_load(value.strip()) if value.strip() else None
    return options


FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}
SWEEPABLE = [n for n, f in FIELDS.items() if f.metadata["sweep"]]
# Short run-folder labels for the settings a sweep varies.
_LABELS = {"learning_rate": "lr", "seq_length": "len", "epochs": "ep", "batch_size": "bs", "accumulation_steps": "acc",
           "warmup_ratio": "wu", "warmup_steps": "ws", "weight_decay": "wd", "clip_norm": "clip", "seed": "seed",
           "train_encoder": "train_enc", "hidden_units": "hu", "dropout": "do", "lstm_units": "lstm",
           "head_options": "ho", "long_text": "lt", "window_pooling": "pool", "window_training": "wt"}


def _length(value):
    if value is None or str(value).lower() == "auto":
        return None
    return int(value)


def _scalar_type(f: dataclasses.Field):
    if f.name == "seq_length":
        return _length
    text = str(f.type)
    if "bool" in text:
        return _parse_bool
    if "int" in text:
        return int
    if "float" in text:
        return float
    return str


def _parse_bool(value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got '{value}'")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per RunConfig field, in argparse groups; defaults stay unset."""
    parser.add_argument("--config", help="YAML file of settings (lists or a grid: section make a sweep)")
    groups = {}
    for name, f in FIELDS.items():
        group = groups.setdefault(f.metadata["group"], parser.add_argument_group(f.metadata["group"]))
        flag = "--" + name.replace("_", "-")
        kind = _scalar_type(f)
        default = f"(default: {f.default})" if f.default is not None else ""
        if name == "seq_length":
            default = "(default: auto)"
        help_text = f"{f.metadata['help']} {default}".strip()
        if kind is _parse_bool and not f.metadata["sweep"]:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                               help=help_text)
        elif f.metadata["sweep"]:
            group.add_argument(flag, type=kind, nargs="+", default=argparse.SUPPRESS,
                               metavar=name.upper(), help=help_text + "; several values sweep")
        else:
            group.add_argument(flag, type=kind, default=argparse.SUPPRESS, metavar=name.upper(),
                               help=help_text)


def load_yaml_settings(path: str | Path) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError:
        raise ConfigError(f"config file {path} is not valid YAML; fix its syntax") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a mapping of setting: value")
    grid = data.pop("grid", None) or {}
    data.update(grid)
    return {k.replace("-", "_"): v for k, v in data.items()}


def settings_from_args(args: argparse.Namespace) -> dict:
    """Merge YAML settings and flags (flags win) into a dict of values or lists."""
    settings = load_yaml_settings(args.config) if getattr(args, "config", None) else {}
    for name in FIELDS:
        if hasattr(args, name):
            settings[name] = getattr(args, name)
    return settings


def expand_grid(settings: dict) -> list[RunConfig]:
    """Every combination of the list-valued settings, as RunConfigs (grid order)."""
    unknown = set(settings) - set(FIELDS)
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(sorted(unknown))}; see 'tfbert train --help'")
    fixed, axes = {}, {}
    for name, value in settings.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        if len(values) > 1 and not FIELDS[name].metadata["sweep"]:
            raise ConfigError(f"setting '{name}' cannot take several values in a sweep")
        if len(values) == 0:
            raise ConfigError(f"setting '{name}' has no value")
        kind = _scalar_type(FIELDS[name])
        try:
            values = [None if v is None else kind(v) for v in values]
        except (ValueError, argparse.ArgumentTypeError):
            raise ConfigError(f"setting '{name}': cannot read {values!r} as {getattr(kind, '__name__', kind)}") from None
        if len(values) > 1:
            axes[name] = values
        else:
            fixed[name] = values[0]
    configs = []
    for combo in itertools.product(*axes.values()):
        configs.append(RunConfig(**fixed, **dict(zip(axes, combo))))
    return configs


# (setting, lowest, highest, whether the lowest itself is allowed); None: no bound.
_RANGES = {
    "epochs": (1, None, True), "batch_size": (1, None, True), "accumulation_steps": (1, None, True), "seed": (0, 2**32 - 1, True),
    "length_percentile": (0, 100, False), "learning_rate": (0, None, False),
    "warmup_ratio": (0, 1, True), "warmup_steps": (0, None, True), "weight_decay": (0, None, True), "clip_norm": (0, None, True),
    "valid_fraction": (0, 1, True), "max_train_examples": (1, None, True),
    "hidden_units": (1, None, True), "lstm_units": (1, None, True), "dropout": (0, 1, True),
    "early_stopping": (0, None, True), "eval_every_steps": (1, None, True), "log_every_steps": (1, None, True),
    "save_every_steps": (1, None, True), "keep_checkpoints": (1, None, True), "workers": (1, None, True),
    "worker_timeout": (0, None, False), "head_tokens": (0, None, True), "tail_tokens": (0, None, True),
    "stride": (1, None, True),
}
# Upper bounds that are themselves excluded (a ratio of 1 leaves nothing).
_OPEN_ABOVE = {"warmup_ratio", "valid_fraction", "dropout"}


def _check_range(name: str, value) -> None:
    if not math.isfinite(value):
        raise ConfigError(f"--{name.replace('_', '-')} must be a finite number, got {value}")
    low, high, low_ok = _RANGES[name]
    too_low = value < low if low_ok else value <= low
    too_high = high is not None and (value >= high if name in _OPEN_ABOVE else value > high)
    if too_low or too_high:
        lower = f"{'>=' if low_ok else '>'} {low:g}"
        upper = f" and {'<' if name in _OPEN_ABOVE else '<='} {high:g}" if high is not None else ""
        raise ConfigError(f"--{name.replace('_', '-')} must be {lower}{upper}, got {value:g}")


def _check_head_options(config: RunConfig, head) -> None:
    import inspect

    params = list(inspect.signature(head.build).parameters.values())[4:]  # after outputs, input_mask, ...
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    takes = [p.name for p in params]
    given = [k for k, v in config.head_kwargs().items() if v is not None and k not in takes]
    if given:
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        raise ConfigError(f"head '{head.name}' takes no {', '.join(given)} (its options: {', '.join(takes)}); "
                          f"drop {flags} or choose a head that takes it")


def validate(config: RunConfig) -> RunConfig:
    """Check every setting (ranges, names, combinations) before any data or model loads.

    Raises:
        ConfigError / UnknownModelError: one line naming the setting and what it takes.
    """
    from tfbert.distribute import STRATEGIES
    from tfbert.heads import get_head
    from tfbert.precision import CHOICES
    from tfbert.registry import get_spec

    for name in _RANGES:
        value = getattr(config, name)
        if value is not None:
            _check_range(name, value)
    _check_head_options(config, get_head(config.head))
    if config.strategy not in STRATEGIES:
        raise ConfigError(f"--strategy must be one of {', '.join(STRATEGIES)}, got '{config.strategy}'")
    _check_task(config)
    if config.precision not in CHOICES:
        raise ConfigError(f"--precision must be one of {', '.join(CHOICES)}, got '{config.precision}'")
    spec = get_spec(config.model)
    if config.seq_length is not None and not 2 <= config.seq_length <= spec.max_seq_length:
        raise ConfigError(f"--seq-length must be auto or an integer from 2 to {spec.max_seq_length} "
                          f"('{spec.name}' reads at most {spec.max_seq_length} tokens), got {config.seq_length}")
    _check_long_text(config, spec)
    if not config.data and not config.train:
        raise ConfigError("no training data: pass --data (demo, imdb:PATH, nsmc:PATH) or --train FILE")
    has_valid = bool(config.valid) or config.valid_fraction > 0
    for name in ("early_stopping", "restore_best", "eval_every_steps"):
        if getattr(config, name) and not has_valid:
            raise ConfigError(f"--{name.replace('_', '-')} needs validation data: pass --valid FILE or "
                              f"a --valid-fraction above 0")
    if not str(config.output_dir).strip():
        raise ConfigError("--output-dir is empty; name the folder the runs go into")
    return config


THRESHOLD_CHOICES = ("tune", "tune_per_label")


def threshold_value(text: str) -> float | None:
    """``--threshold`` as a number, or None for one of ``THRESHOLD_CHOICES``."""
    if str(text) in THRESHOLD_CHOICES:
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1:
        raise ConfigError(f"--threshold must be a probability between 0 and 1 (exclusive), tune or tune_per_label, "
                          f"got '{text}'")
    return value


def _check_task(config: RunConfig) -> None:
    from tfbert.tasks import get_task

    task = get_task(config.task)
    task.check_loss(config.loss)
    threshold_value(config.threshold)
    if not config.label_separator:
        raise ConfigError("--label-separator is empty; give the character between tags, e.g. ',' or '|'")


def _check_long_text(config: RunConfig, spec) -> None:
    """One-line errors for long-text settings that cannot work. With --seq-length auto the window is
    checked here at the model's longest and again, at its chosen length, when the model is built."""
    from tfbert.long_text import from_config

    settings = from_config(config)
    settings.resolve(config.seq_length or spec.max_seq_length)
    python_tokenizer = spec.backend == "huggingface" and (spec.tokenizer_type or "wordpiece").lower() != "wordpiece"
    if settings.active and config.export and python_tokenizer:  # the export cuts texts in-graph, from strings
        raise ConfigError(f"--long-text {config.long_text} is exported in-graph, but the {spec.tokenizer_type} "
                          f"tokenizer of '{spec.name}' runs in Python; pass --no-export or a WordPiece model")
    if settings.active and config.text_pair_column is not None:
        raise ConfigError(f"--long-text {config.long_text} reads single texts; sentence pairs "
                          f"(--text-pair-column) are truncated (drop --long-text or the pair column)")


def resolve(config: RunConfig) -> RunConfig:
    """The config with the head's defaults filled in where a setting was left unset.

    Runs resolve once, here (``tfbert.heads.resolve_head_settings``), and pass
    the resolved values on. Head sizes and dropout stay ``None`` when unset:
    ``create_classifier`` drops them, so the head function's own defaults apply.
    ``seq_length`` stays ``None`` (auto) until the training texts are known.
    """
    from tfbert.heads import resolve_head_settings

    return dataclasses.replace(config, **resolve_head_settings(
        config.head, train_encoder=config.train_encoder, learning_rate=config.learning_rate))


# Settings that say where results go or what is logged, not what they are.
_WHERE_NOT_WHAT = ("output_dir", "resume", "tensorboard", "eval_every_steps", "log_every_steps", "save_every_steps",
                   "keep_checkpoints", "strategy", "workers", "worker_timeout")


def identity(config: RunConfig) -> dict:
    """The resolved settings that decide a run's results: what a resumed run must match.

    Long-text settings count only where they act (``long_text`` when not
    truncate; ``stride`` only for windows, ...): a run's identity does not
    change with a setting it ignores, and runs from before these settings resume.
    """
    from tfbert.long_text import SETTINGS

    ident = {k: v for k, v in resolve(config).to_dict().items() if k not in _WHERE_NOT_WHAT}
    if ident.get("long_text") == "truncate":
        ident.pop("long_text")
    for name, strategy in SETTINGS.items():
        if ident.get("long_text") != strategy:
            ident.pop(name, None)
    return ident


def identity_differences(recorded: dict, current: dict) -> list[str]:
    """Settings (keys) whose values differ between a recorded identity and the current one."""
    from tfbert.files import json_safe

    recorded, current = json_safe(recorded), json_safe(current)
    return [k for k in sorted(set(current) | set(recorded)) if recorded.get(k) != current.get(k)]


def identity_hash(ident: dict) -> str:
    """8 hex digits that change with any setting of ``ident`` (for run names)."""
    from tfbert.files import json_safe

    text = json.dumps(json_safe(ident), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def run_name(config: RunConfig, varying: list[str] | None = None) -> str:
    """A folder name that says what the run is: model, head, then key settings.

    Pass a :func:`resolve`-d config, so the learning rate shown is the one used.
    """
    model = re.sub(r"[^A-Za-z0-9._-]+", "_", config.model.split("://")[-1]).strip("_")[-60:]
    parts = [model, config.head]
    keys = ["learning_rate", "seq_length", "epochs", "batch_size", "seed"]
    keys += [k for k in (varying or []) if k not in keys and k not in ("model", "head")]
    for key in keys:
        value = getattr(config, key)
        if value is None and key == "seq_length":
            value = "auto"
        if value is None:
            continue
        text = f"{value:g}" if isinstance(value, float) else re.sub(r"[^A-Za-z0-9._-]+", "-", str(value))
        parts.append(f"{_LABELS.get(key, key)}{text}")
    return "__".join(parts)


def varying_settings(configs: list[RunConfig]) -> list[str]:
    return [n for n in FIELDS if len({repr(getattr(c, n)) for c in configs}) > 1]
