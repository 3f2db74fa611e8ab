"""KerasHub's side of ``mlm_speed.py``: MLM pretraining speed of ``keras_hub.models.BertMaskedLM``.

Run *inside* the KerasHub virtualenv (``benchmarks/keras_hub_env.py`` makes it), with Keras 3
on the TensorFlow backend; ``mlm_speed.py`` starts it like this:

    KERAS_BACKEND=tensorflow .bench-venvs/keras-hub/bin/python benchmarks/keras_hub_mlm.py \\
        --vocab VOCAB_DIR_OR_vocab.txt --corpus unlabeled_reviews.txt.gz --texts 2000 \\
        --layers 2 --hidden 128 --heads 2 --seq-length 64 --batch-size 16 \\
        --steps 20 --warmup-steps 3 --precision float32

The pipeline is the one KerasHub's guides use: a ``tf.data`` dataset of raw strings, batched,
``.map(BertMaskedLMPreprocessor)`` (tokenize with ``BertTokenizer``, pack to ``[CLS] .. [SEP]``
and pad to ``--seq-length``, choose and mask 15% of the tokens) on every step, then
``BertMaskedLM.fit`` with the preprocessor detached from the task (``preprocessor=None``), as the
"Getting started" guide does for a pre-mapped dataset. The model is
``BertBackbone(vocabulary_size=V, num_layers=L, num_heads=A, hidden_dim=H,
intermediate_dim=4H, max_sequence_length=512)`` with random weights; the optimizer is
``keras.optimizers.AdamW`` set up as tfbert's ``create_optimizer`` (peak lr, linear warmup then
linear decay to 0, weight decay 0.01 without LayerNorm and biases, epsilon 1e-6, global
gradient-norm clip 1.0).

Timing: one ``fit`` call of ``warmup + steps`` steps; a callback takes the wall clock at the
end of warmup step ``warmup`` (tracing and the first steps are not timed) and at the end of the
last step (both after reading the loss, so the step has finished). Tokens: the texts are
shuffled once in Python (seeded) and fed in that order, repeated, in batches of
``--batch-size``, so the texts of the timed steps are known; after timing, the same
preprocessor is run on them and its ``padding_mask`` summed: *real tokens* are the non-padding
positions of the model input, i.e. wordpieces of the (truncated) text plus ``[CLS]`` and
``[SEP]``. ``padded_tokens`` are ``steps x batch x seq_length`` (what the model computes on).

Prints progress to stderr and one JSON line to stdout (the last line).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import random
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.pop("TF_USE_LEGACY_KERAS", None)  # this is the Keras 3 side

SEED = 1234


def log(*args) -> None:
    print("[keras_hub_mlm]", *args, file=sys.stderr, flush=True)


def read_texts(path: str, limit: int) -> list[str]:
    """The first ``limit`` non-empty lines (stripped) of a text file, ``.gz`` allowed."""
    opener = gzip.open if path.lower().endswith(".gz") else open
    texts = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            line = line.strip().lstrip("\ufeff")
            if line:
                texts.append(line)
                if len(texts) >= limit:
                    break
    if not texts:
        raise SystemExit(f"no texts in {path}")
    return texts


def vocab_file(vocab: str) -> Path:
    path = Path(vocab)
    if path.is_dir():
        path = path / "vocab.txt"
    if not path.is_file():
        raise SystemExit(f"no vocab file at {path} (give vocab.txt or the folder holding it)")
    return path


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vocab", required=True, help="vocab.txt (WordPiece, one piece a line) or its folder")
    ap.add_argument("--lowercase", action="store_true", help="BertTokenizer(lowercase=True); default cased")
    ap.add_argument("--corpus", required=True, help="text file, one text a line; .gz allowed")
    ap.add_argument("--texts", type=int, default=20000, help="use the first N non-empty lines")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--heads", type=int, default=None, help="default hidden // 64 (at least 1)")
    ap.add_argument("--seq-length", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=50, help="timed steps")
    ap.add_argument("--warmup-steps", type=int, default=5, help="untimed steps before timing (>= 1)")
    ap.add_argument("--mask-rate", type=float, default=0.15, help="mask_selection_rate")
    ap.add_argument("--mask-token-rate", type=float, default=0.8)
    ap.add_argument("--random-token-rate", type=float, default=0.1)
    ap.add_argument("--max-predictions", type=int, default=None,
                    help="mask_selection_length; default ceil(mask_rate * seq_length)")
    ap.add_argument("--learning-rate", type=float, default=1e-4)
    ap.add_argument("--lr-warmup-steps", type=int, default=None,
                    help="learning-rate warmup; default 10%% of warmup + steps")
    ap.add_argument("--precision", choices=["float32", "bfloat16"], default="float32",
                    help="bfloat16: Keras mixed_bfloat16 policy")
    ap.add_argument("--pipeline-batches", type=int, default=20,
                    help="after training, time this many batches of the input pipeline alone (0: skip)")
    ap.add_argument("--jit-compile", choices=["auto", "true", "false"], default="auto",
                    help="Model.compile(jit_compile=...); Keras 'auto' means no XLA on a CPU-only machine")
    args = ap.parse_args(argv)
    if args.heads is None:
        args.heads = max(1, args.hidden // 64)
    if args.max_predictions is None:
        args.max_predictions = math.ceil(args.mask_rate * args.seq_length)
    if args.lr_warmup_steps is None:
        args.lr_warmup_steps = int(round(0.1 * (args.warmup_steps + args.steps)))
    if args.warmup_steps < 1:
        ap.error("--warmup-steps must be >= 1 (the first step traces the graph)")
    if args.steps < 1:
        ap.error("--steps must be >= 1")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    t_start = time.perf_counter()

    import keras
    import keras_hub
    import numpy as np
    import tensorflow as tf
    from importlib import metadata

    assert keras.backend.backend() == "tensorflow", keras.backend.backend()
    keras.utils.set_random_seed(SEED)
    if args.precision == "bfloat16":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")

    vocab_path = vocab_file(args.vocab)
    texts = read_texts(args.corpus, args.texts)
    random.Random(SEED).shuffle(texts)  # once; the batches' texts are then known (see the docstring)
    log(f"{len(texts)} texts from {args.corpus}; vocab {vocab_path}")

    tokenizer = keras_hub.tokenizers.BertTokenizer(vocabulary=str(vocab_path), lowercase=args.lowercase)
    vocab_size = tokenizer.vocabulary_size()
    preprocessor = keras_hub.models.BertMaskedLMPreprocessor(
        tokenizer=tokenizer,
        sequence_length=args.seq_length,
        mask_selection_rate=args.mask_rate,
        mask_selection_length=args.max_predictions,
        mask_token_rate=args.mask_token_rate,
        random_token_rate=args.random_token_rate,
    )
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=vocab_size,
        num_layers=args.layers,
        num_heads=args.heads,
        hidden_dim=args.hidden,
        intermediate_dim=4 * args.hidden,
        max_sequence_length=512,
    )
    model = keras_hub.models.BertMaskedLM(backbone=backbone, preprocessor=None)

    total_steps = args.warmup_steps + args.steps

    class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
        """Linear warmup to ``peak`` over ``warmup`` steps, then linear decay to 0 at ``total``."""

        def __init__(self, peak, warmup, total):
            self.peak, self.warmup, self.total = float(peak), int(warmup), int(total)

        def __call__(self, step):
            step = keras.ops.cast(step, "float32")
            warm = self.peak * step / max(1, self.warmup)
            decay = self.peak * keras.ops.maximum(0.0, (self.total - step) / max(1, self.total - self.warmup))
            return keras.ops.where(step < self.warmup, warm, decay)

        def get_config(self):
            return {"peak": self.peak, "warmup": self.warmup, "total": self.total}

    optimizer = keras.optimizers.AdamW(
        learning_rate=WarmupLinearDecay(args.learning_rate, args.lr_warmup_steps, total_steps),
        weight_decay=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-6, global_clipnorm=1.0)
    # BERT's decay excludes LayerNorm and biases (Keras 3 names: gamma/beta, bias).
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta", "LayerNorm", "layer_norm"])
    jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
    # MaskedLM's default loss is SCCE(from_logits) with "sum_over_batch_size", which divides by
    # all batch x mask_selection_length slots (padded ones too); "mean_with_sample_weight" divides
    # by the masked tokens instead, so final_loss is per masked token like tfbert's. Same work.
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight")
    model.compile(optimizer=optimizer, loss=loss, jit_compile=jit)  # weighted accuracy: MaskedLM default

    # The guides' pipeline: raw strings -> batch -> map(preprocessor) -> prefetch -> fit.
    strings = tf.data.Dataset.from_tensor_slices(texts).repeat().batch(args.batch_size, drop_remainder=True)
    train_ds = strings.map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    class StepClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times, self.mean_losses = {}, {}

        def on_train_batch_end(self, batch, logs=None):
            # Reading the loss waits for the step to finish.
            loss = float(keras.ops.convert_to_numpy((logs or {}).get("loss", float("nan"))))
            now = time.perf_counter()
            if batch + 1 in (args.warmup_steps, total_steps) or batch + 1 >= total_steps - 10:
                self.times[batch + 1] = now
            self.mean_losses[batch + 1] = loss  # Keras reports the running mean over the epoch

    clock = StepClock()
    t_fit = time.perf_counter()
    log(f"fit: {args.warmup_steps} warmup + {args.steps} timed steps, batch {args.batch_size}, "
        f"length {args.seq_length}, L-{args.layers}_H-{args.hidden}_A-{args.heads}, {args.precision}")
    model.fit(train_ds, epochs=1, steps_per_epoch=total_steps, callbacks=[clock], verbose=0)
    fit_seconds = time.perf_counter() - t_fit
    seconds = clock.times[total_steps] - clock.times[args.warmup_steps]

    # Per-step loss from the running means: loss_k = k*M_k - (k-1)*M_{k-1}; report the last <=10.
    m = clock.mean_losses
    last = min(10, args.steps)
    final_loss = (total_steps * m[total_steps] - (total_steps - last) * m[total_steps - last]) / last \
        if total_steps - last >= 1 else m[total_steps]

    # Diagnostic (untimed for the result): the input pipeline alone, i.e. what tokenizing,
    # packing and masking every batch on the fly costs on these cores when nothing else runs.
    pipeline_examples_per_s = None
    if args.pipeline_batches > 0:
        it = iter(train_ds)
        next(it)
        t0 = time.perf_counter()
        for _ in range(args.pipeline_batches):
            next(it)
        pipeline_examples_per_s = round(args.pipeline_batches * args.batch_size / (time.perf_counter() - t0), 1)
        del it

    # Real tokens of the timed steps' texts, from the same preprocessor's padding_mask.
    n = len(texts)
    first = args.warmup_steps * args.batch_size
    timed_idx = [(first + i) % n for i in range(args.steps * args.batch_size)]
    real_per_text = np.zeros(n, dtype=np.int64)
    needed = sorted(set(timed_idx))
    for start in range(0, len(needed), 1024):
        chunk = needed[start:start + 1024]
        x, _, _ = preprocessor(tf.constant([texts[i] for i in chunk]))
        real_per_text[chunk] = keras.ops.convert_to_numpy(
            keras.ops.sum(keras.ops.cast(x["padding_mask"], "int32"), axis=1))
    real_tokens = int(real_per_text[timed_idx].sum())
    padded_tokens = args.steps * args.batch_size * args.seq_length
    truncated = int((real_per_text[timed_idx] >= args.seq_length).sum())

    def version(pkg):
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    result = {
        "framework": "keras_hub",
        "versions": {"keras_hub": version("keras-hub"), "keras": version("keras"),
                     "tensorflow": version("tensorflow"), "tensorflow_text": version("tensorflow-text"),
                     "python": platform.python_version()},
        "size": f"L-{args.layers}_H-{args.hidden}_A-{args.heads}",
        "layers": args.layers, "hidden": args.hidden, "heads": args.heads, "intermediate": 4 * args.hidden,
        "vocab_size": int(vocab_size),
        "parameters": int(model.count_params()),
        "seq_length": args.seq_length, "batch_size": args.batch_size,
        "mask_rate": args.mask_rate, "mask_token_rate": args.mask_token_rate,
        "random_token_rate": args.random_token_rate, "max_predictions": args.max_predictions,
        "precision": args.precision,
        "jit_compile": bool(getattr(model, "jit_compile", False)),
        "texts": n,
        "warmup_steps": args.warmup_steps,
        "steps": args.steps,
        "seconds": round(seconds, 3),
        "real_tokens": real_tokens,
        "padded_tokens": padded_tokens,
        "real_token_fraction": round(real_tokens / padded_tokens, 4),
        "truncated_examples": truncated,
        "tokens_per_s": round(real_tokens / seconds, 1),
        "padded_tokens_per_s": round(padded_tokens / seconds, 1),
        "examples_per_s": round(args.steps * args.batch_size / seconds, 2),
        "steps_per_s": round(args.steps / seconds, 3),
        "final_loss": round(float(final_loss), 4),
        "final_loss_note": f"mean over the last {last} steps of the MLM loss per masked token",
        "pipeline_only_examples_per_s": pipeline_examples_per_s,
        "fit_seconds": round(fit_seconds, 2),
        "total_seconds": round(time.perf_counter() - t_start, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
