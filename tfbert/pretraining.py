"""Masked-LM pretraining: ``tfbert.pretraining.pretrain`` (``tfbert pretrain`` on the command line).

A plain training loop (one ``tf.function`` step over batches of varying
shape) around Model Garden's ``BertPretrainerV2``, fed by
``tfbert.pretrain_data``; AdamW with warmup from ``tfbert.optimization``.

Checkpoints (``tf.train.CheckpointManager`` in ``OUT/checkpoints``, the last
K) hold the network, the MLM head, the optimizer (slots and step count, which
is the learning-rate schedule's position) and the counters (tokens seen,
seconds trained). The data position follows from the step: epoch =
step // steps per epoch, and within it the batches already done are skipped.
Batches and masks depend only on (seed, epoch, batch index), so a resumed
run with dropout 0 ends with the weights of an uninterrupted one (with
dropout, the dropout masks differ: TF's random ops restart in a new process).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
import time
from pathlib import Path

from tfbert.errors import ConfigError
from tfbert.files import read_json, write_json

logger = logging.getLogger(__name__)

SETTINGS = "settings.json"  # in OUT/checkpoints: the run's settings, written when it starts
# Settings that may change when resuming: they do not change what is trained.
_FREE = ("output", "name", "resume", "save_every_steps", "keep_checkpoints", "log_every_steps", "verbose")


@dataclasses.dataclass
class PretrainSettings:
    """The settings of a pretraining run (the CLI flags of ``tfbert pretrain``)."""

    corpus: list
    output: str
    name: str
    vocab: str | None = None
    size: str | None = None
    model: str | None = None
    seq_length: int = 128
    batch_size: int = 64
    steps: int | None = None
    epochs: float | None = None
    learning_rate: float = 5e-4
    warmup_ratio: float = 0.1
    warmup_steps: int | None = None
    weight_decay: float = 0.01
    mask_rate: float = 0.15
    mask_token_rate: float = 0.8
    random_token_rate: float = 0.1
    whole_word_masking: bool = False
    max_texts: int | None = None
    text_column: str = "text"
    dropout: float | None = None
    save_every_steps: int = 1000
    keep_checkpoints: int = 3
    resume: bool = False
    seed: int = 0
    precision: str | None = None
    log_every_steps: int = 100
    verbose: int = 1

    def __post_init__(self):
        self.corpus = [str(c) for c in ([self.corpus] if isinstance(self.corpus, (str, Path)) else self.corpus)]
        if (self.steps is None) == (self.epochs is None):
            raise ConfigError("pass exactly one of --steps N or --epochs E")
        for name in ("seq_length", "batch_size", "save_every_steps", "keep_checkpoints", "log_every_steps"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if (self.steps is not None and self.steps < 1) or (self.epochs is not None and self.epochs <= 0):
            raise ConfigError("--steps and --epochs must be positive")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ConfigError(f"--dropout must be in [0, 1), got {self.dropout}")

    def identity(self) -> dict:
        """What a resumed run must share with the run it resumes (paths in one spelling)."""
        return comparable({k: v for k, v in dataclasses.asdict(self).items() if k not in _FREE})


def comparable(identity: dict) -> dict:
    """``identity`` with its corpus, vocab and model paths resolved: ``data/x.txt``, ``./data/x.txt``
    and its absolute path (or a symlink to it) are one corpus."""
    out = dict(identity)
    if out.get("corpus") is not None:
        out["corpus"] = [_one_spelling(c) for c in out["corpus"]]
    for key in ("vocab", "model"):
        if out.get(key) is not None:
            out[key] = _one_spelling(out[key])
    return out


def _one_spelling(source: str) -> str:
    path = Path(str(source)).expanduser()
    if path.exists():
        return str(path.resolve())
    kind, sep, rest = str(source).partition(":")
    if sep and len(kind) > 1 and Path(rest).expanduser().exists():  # nsmc:PATH, hf:PATH, csv:PATH
        return f"{kind}:{Path(rest).expanduser().resolve()}"
    return str(source)


def pretrain(corpus, output, name: str, **settings) -> dict:
    """Masked-LM pretraining of a new encoder (``vocab`` + ``size``) or of an existing one (``model``).

    Arguments are those of ``PretrainSettings`` (the ``tfbert pretrain`` flags).
    Writes the output folder described in ``tfbert.pretrain_outputs`` and
    returns the summary also written to ``OUT/pretrain.json``.
    """
    return run(PretrainSettings(corpus=corpus, output=str(output), name=name, **settings))


def run(settings: PretrainSettings) -> dict:
    import os

    from tfbert.precision import set_precision

    out_dir = Path(settings.output).expanduser().absolute()
    restart = _check_output(out_dir, settings)
    precision = set_precision(settings.precision or os.environ.get("TFBERT_PRECISION", "auto"))
    parts = _prepare(settings, out_dir)
    _check_corpus_unchanged(parts.corpus, settings, out_dir)
    if restart:
        shutil.rmtree(out_dir / "logs", ignore_errors=True)  # the stopped run's TensorBoard curves
    state = _State.build(parts, settings, out_dir)
    started = time.time()
    _train(state, parts, settings, out_dir)
    return _finish(state, parts, settings, out_dir, precision, time.time() - started)


def _check_output(out_dir: Path, settings: PretrainSettings) -> bool:
    """Refuses a folder that is not this run's to write; True when a stopped run starts over."""
    import tensorflow as tf

    ckpt_dir = out_dir / "checkpoints"
    finished, latest = (out_dir / "pretrain.json").exists(), tf.train.latest_checkpoint(str(ckpt_dir))
    if not finished and not (ckpt_dir / SETTINGS).exists():
        if out_dir.is_dir() and any(out_dir.iterdir()):
            raise ConfigError(f"--output {out_dir} holds other files and no pretraining run; choose a new or "
                              f"empty folder")
        settings.resume = False
        return False
    if not finished and not latest:
        # A run killed before its first checkpoint: nothing to keep or resume, so it starts from
        # step 0, with or without --resume.
        _say(settings, f"{out_dir} holds a run stopped before its first checkpoint; starting it over")
        settings.resume = False
        return True
    if not settings.resume:
        raise ConfigError(f"{out_dir} already holds a pretraining run; pass --resume to continue it, "
                          f"or choose another --output")
    if not latest:
        raise ConfigError(f"--resume: {out_dir} holds a finished run whose checkpoints are gone; nothing to "
                          f"resume: choose another --output")
    saved = read_json(ckpt_dir / SETTINGS)
    if not saved:
        raise ConfigError(f"--resume: {ckpt_dir / SETTINGS} is missing, so the run's settings cannot be checked; "
                          f"choose another --output to start a new run")
    saved, now = comparable(saved), settings.identity()
    differ = [k for k, v in now.items() if k in saved and saved[k] != v]
    if differ:
        shown = ", ".join(f"--{k.replace('_', '-')} {saved[k]!r} -> {now[k]!r}" for k in differ)
        raise ConfigError(f"--resume: {out_dir} holds a run with other settings ({shown}); pass the run's "
                          f"settings, or choose another --output to start a new run")
    return False


def _check_corpus_unchanged(corpus, settings: PretrainSettings, out_dir: Path) -> None:
    """A resumed run must read the corpus its checkpoints were trained on (same texts and tokens);
    a new run records them."""
    path = out_dir / "checkpoints" / SETTINGS
    saved, seen = read_json(path) or {}, {"corpus_texts": corpus.rows, "corpus_tokens": corpus.tokens}
    if not settings.resume:
        write_json(path, {**saved, **seen})
    elif "corpus_texts" in saved and (saved["corpus_texts"], saved["corpus_tokens"]) != (corpus.rows, corpus.tokens):
        raise ConfigError(f"--resume: the corpus changed since the run began ({saved['corpus_texts']} texts, "
                          f"{saved['corpus_tokens']} tokens then; {corpus.rows}, {corpus.tokens} now); resume "
                          f"with the same files, or choose another --output to start a new run")


def _say(settings: PretrainSettings, message: str) -> None:
    logger.info("%s", message)
    if settings.verbose:
        print(message, flush=True)


@dataclasses.dataclass
class _Parts:
    start: object
    tokenizer: object
    batches: object
    corpus: object
    total_steps: int


def _prepare(settings: PretrainSettings, out_dir: Path) -> _Parts:
    """Encoder choice, tokenizer files in OUT, the corpus tokenized once, the batches."""
    from tfbert.data.corpus import check_sources
    from tfbert.masking import Masker, MaskingOptions
    from tfbert.pretrain_data import PretrainBatches, check_corpus, tokenize_corpus
    from tfbert.pretrain_model import resolve_start
    from tfbert.pretrain_outputs import save_tokenizer
    from tfbert.tokenizers.wordpiece import WordPieceTokenizer

    options = MaskingOptions(settings.mask_rate, settings.mask_token_rate, settings.random_token_rate,
                             settings.whole_word_masking)
    check_sources(settings.corpus)
    start = resolve_start(settings.model, settings.vocab, settings.size, settings.seq_length, settings.dropout)
    out_dir.mkdir(parents=True, exist_ok=True)
    if settings.resume:
        _check_vocab_unchanged(start.tokenizer_dir, out_dir)
    else:  # the folder is this run's from now on: the tokenizing below is long, a kill may come
        write_json(out_dir / "checkpoints" / SETTINGS, settings.identity())
    tokenizer = WordPieceTokenizer.from_hf(save_tokenizer(start.tokenizer_dir, out_dir))
    masker = Masker(tokenizer, options, max_selections=settings.seq_length)
    corpus = tokenize_corpus(settings.corpus, tokenizer, settings.seq_length, settings.max_texts,
                             settings.text_column)
    check_corpus(corpus, settings.batch_size, settings.corpus)
    batches = PretrainBatches(corpus, tokenizer, masker, settings.batch_size, settings.seed)
    total = settings.steps or max(1, math.ceil(settings.epochs * batches.steps_per_epoch))
    _say(settings, f"corpus: {corpus.rows} texts, {corpus.tokens} tokens; {batches.steps_per_epoch} batches an "
                   f"epoch; {total} steps")
    return _Parts(start, tokenizer, batches, corpus, total)


def _check_vocab_unchanged(tokenizer_dir: str, out_dir: Path) -> None:
    """The vocabulary a resumed run starts from must be the one its checkpoints were trained with."""
    if not (out_dir / "vocab.txt").is_file() or not (Path(tokenizer_dir) / "vocab.txt").is_file():
        return

    def tokens(path: Path) -> list:
        return path.read_text(encoding="utf-8").splitlines()

    if tokens(Path(tokenizer_dir) / "vocab.txt") != tokens(out_dir / "vocab.txt"):
        raise ConfigError(f"--resume: the vocabulary in {tokenizer_dir} changed since the run began (the run "
                          f"kept a copy in {out_dir / 'vocab.txt'}); resume with that vocabulary, or choose "
                          f"another --output to start a new run")


class _State:
    """The model, optimizer, counters and checkpoint manager of a run (restored when resuming)."""

    @classmethod
    def build(cls, parts: _Parts, settings: PretrainSettings, out_dir: Path) -> "_State":
        import tensorflow as tf

        from tfbert.optimization import create_optimizer
        from tfbert.pretrain_model import build_network, build_pretrainer, fill_weights

        self = cls()
        self.pretrainer = build_pretrainer(build_network(parts.start, settings.seed),
                                           parts.start.config["hidden_act"])
        self.loaded = fill_weights(parts.start, self.pretrainer)
        self.optimizer = create_optimizer(settings.learning_rate, parts.total_steps, settings.warmup_ratio,
                                          settings.warmup_steps, weight_decay=settings.weight_decay)
        self.tokens = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False)
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.batch = tf.Variable(0, dtype=tf.int64, trainable=False)
        checkpoint = tf.train.Checkpoint(model=self.pretrainer, optimizer=self.optimizer, tokens_seen=self.tokens,
                                         seconds=self.seconds, epoch=self.epoch, batch=self.batch)
        ckpt_dir = out_dir / "checkpoints"
        self.manager = tf.train.CheckpointManager(checkpoint, str(ckpt_dir), max_to_keep=settings.keep_checkpoints)
        if settings.resume:
            checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
            self.loaded = f"resumed from {self.manager.latest_checkpoint} (step {int(self.optimizer.iterations)})"
        _say(settings, self.loaded)
        return self

    @property
    def step(self) -> int:
        return int(self.optimizer.iterations.numpy())

    def save(self, steps_per_epoch: int, seconds: float) -> None:
        self.epoch.assign(self.step // steps_per_epoch)
        self.batch.assign(self.step % steps_per_epoch)
        self.seconds.assign_add(seconds)
        self.manager.save(checkpoint_number=self.step)


def _train_step(state: _State):
    import tensorflow as tf

    from tfbert.pretrain_model import mlm_loss_and_accuracy

    model, optimizer = state.pretrainer, state.optimizer
    ints = tf.TensorSpec([None, None], tf.int32)
    features = {k: ints for k in ("input_word_ids", "input_mask", "input_type_ids", "masked_lm_positions")}
    targets = {"masked_lm_ids": ints, "masked_lm_weights": tf.TensorSpec([None, None], tf.float32)}

    # The pooler only serves sentence tasks (no next-sentence loss here): it keeps its initial weights.
    variables = [v for v in model.trainable_variables if "pooler_transform" not in v.name]

    @tf.function(input_signature=[features, targets])
    def step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)["mlm_logits"]
            loss, accuracy = mlm_loss_and_accuracy(logits, y["masked_lm_ids"], y["masked_lm_weights"])
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss, accuracy, tf.reduce_sum(tf.cast(x["input_mask"], tf.int64))

    return step


def _train(state: _State, parts: _Parts, settings: PretrainSettings, out_dir: Path) -> None:
    import tf_keras as keras

    from tfbert.pretrain_outputs import History

    per_epoch, total = parts.batches.steps_per_epoch, parts.total_steps
    history = History(out_dir, state.step if settings.resume else 0)
    step_fn, window = _train_step(state), _Window()
    bar = keras.utils.Progbar(total, verbose=settings.verbose,
                              stateful_metrics=["loss", "mlm_accuracy", "tokens/s"]) if settings.verbose else None
    last_save = time.time()
    for features, targets in parts.batches.stream(state.step, total):
        window.add(*step_fn(features, targets))
        step = state.step
        if step % settings.log_every_steps == 0 or step == total:
            row = window.row(step, state, per_epoch)
            history.add(row)
            if bar:
                bar.update(step, [("loss", row["loss"]), ("mlm_accuracy", row["mlm_accuracy"]),
                                  ("tokens/s", row["tokens_per_s"])])
        if step % settings.save_every_steps == 0 or step == total:
            window.credit(state)
            state.save(per_epoch, time.time() - last_save)
            last_save = time.time()
    history.plot(out_dir, f"{settings.name}: masked-LM pretraining")


class _Window:
    """Loss, accuracy and tokens summed on the device between log steps (no sync every step)."""

    def __init__(self):
        self.loss = self.accuracy = self.tokens = None
        self.count, self.since, self.credited = 0, time.time(), 0

    def credit(self, state: _State) -> None:
        """Adds the window's tokens not yet counted to the run's (at log rows and before checkpoints)."""
        if self.count:
            tokens = int(self.tokens)
            state.tokens.assign_add(tokens - self.credited)
            self.credited = tokens

    def add(self, loss, accuracy, tokens):
        if self.count == 0:
            self.loss, self.accuracy, self.tokens = loss, accuracy, tokens
        else:
            self.loss, self.accuracy, self.tokens = self.loss + loss, self.accuracy + accuracy, self.tokens + tokens
        self.count += 1

    def row(self, step: int, state: _State, per_epoch: int) -> dict:
        from tfbert.optimization import current_learning_rate
        from tfbert.pretrain_outputs import rss_mb

        tokens, seconds = int(self.tokens), max(time.time() - self.since, 1e-9)
        self.credit(state)
        current, peak = rss_mb()
        row = dict(step=step, epoch=round(step / per_epoch, 4), loss=float(self.loss) / self.count,
                   mlm_accuracy=float(self.accuracy) / self.count,
                   learning_rate=current_learning_rate(state.optimizer), tokens_per_s=round(tokens / seconds, 1),
                   tokens_seen=int(state.tokens.numpy()), seconds=round(seconds, 3),
                   rss_mb=round(current, 1), peak_rss_mb=round(peak, 1))
        self.__init__()
        return row


def _finish(state: _State, parts: _Parts, settings: PretrainSettings, out_dir: Path, precision: str,
            seconds: float) -> dict:
    """The exports, ``pretrain.json`` and ``registry.yaml``; says where they went."""
    import pandas as pd

    from tfbert.pretrain_outputs import HISTORY, export_hub, write_registry, write_summary

    network = _float32_copy(parts.start, state.pretrainer.encoder_network, settings.seed)
    export_hub(network, out_dir, parts.tokenizer, settings.seq_length)
    config = parts.start.config
    description = (f"{settings.name}: masked-LM pretrained {_size_name(config)} "
                   f"({'from ' + parts.start.source if parts.start.kind != 'scratch' else 'from scratch'})")
    registry = write_registry(out_dir, settings.name, config, parts.tokenizer, parts.start.langs, description)
    history = pd.read_csv(out_dir / HISTORY)
    last = history.iloc[-1] if len(history) else {}
    summary = dict(name=settings.name, settings=dataclasses.asdict(settings), precision=precision,
                   start=dict(kind=parts.start.kind, source=parts.start.source, loaded=state.loaded),
                   encoder_config=config, langs=list(parts.start.langs), steps=state.step,
                   steps_per_epoch=parts.batches.steps_per_epoch, corpus_texts=parts.corpus.rows,
                   corpus_tokens=parts.corpus.tokens, tokens_seen=int(state.tokens.numpy()),
                   train_seconds=round(float(state.seconds.numpy()), 1), this_session_seconds=round(seconds, 1),
                   final_loss=float(last.get("loss", math.nan)), final_mlm_accuracy=float(last.get("mlm_accuracy", math.nan)),
                   first_loss=float(history["loss"].iloc[0]) if len(history) else math.nan,
                   peak_rss_mb=float(history["peak_rss_mb"].max()) if len(history) else math.nan,
                   encoder=str(out_dir / "encoder"), preprocess=str(out_dir / "preprocess"), registry=str(registry))
    write_summary(out_dir, summary)
    if settings.verbose:
        print(f"pretrained {settings.name}: loss {summary['final_loss']:.4f}, MLM accuracy "
              f"{summary['final_mlm_accuracy']:.3f} after {state.step} steps; wrote {out_dir} (encoder/, "
              f"preprocess/, registry.yaml, history.csv, curves.png, checkpoints/); fine-tune with: "
              f"tfbert --registry {registry} train --model {settings.name} ...")
    return summary


def _size_name(config: dict) -> str:
    return f"L-{config['num_hidden_layers']}_H-{config['hidden_size']}_A-{config['num_attention_heads']}"


def _float32_copy(start, network, seed: int):
    """The network rebuilt under the float32 policy with the trained weights: exports compute in float32."""
    import tf_keras as keras

    from tfbert.pretrain_model import build_network

    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        copy = build_network(start, seed)
        copy.set_weights(network.get_weights())
    finally:
        keras.mixed_precision.set_global_policy(policy)
    return copy
