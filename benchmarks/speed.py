"""Fine-tuning speed: the usual recipe vs tfbert's pipeline, one way per child process.

    python benchmarks/speed.py            # full benchmark (NSMC L=128, IMDB L=512; ~45 min on 2 cores)
    python benchmarks/speed.py --quick    # tiny version, checks every code path (~8 min on 2 busy cores)

Every way fine-tunes ``minilm-l6-h384-uncased`` with the ``dense`` head (masked
mean pooling -> Dropout(0.1) -> Dense(1)), batch size 32, tfbert's AdamW
(``tfbert.optimization.create_optimizer``: lr 1e-4, 10% warmup, decay 0.01,
clip 1.0) for exactly the same number of optimizer steps, then predicts a fixed
held-out set. Ways:

    a               the usual recipe, no tfbert pipeline: HF AutoTokenizer with
                    padding="max_length" on all texts up front, TFAutoModel in a
                    Keras functional model, float32, from_tensor_slices.shuffle.batch(32);
                    prediction with fixed padding in input order
    b               tfbert defaults: create_classifier(precision="auto"), make_dataset
                    (tokenize once, length bucketing), train_classifier, predict_logits
    c_no_bucketing  (b) with fixed padding to L in training (recipes.fixed_padding_dataset)
                    and in prediction (input order, padded to L)
    c_float32       (b) with precision="float32"
    c_no_cache      (b) but tokenizing in the pipeline every epoch (recipes.per_epoch_tokenizing_dataset)
    c_xla           (b) with jit_compile=True, static_shapes=True (XLA; one compilation per bucket)
    c_xla_fixed     (c_no_bucketing) with jit_compile=True (one shape, one compilation)

Each way runs in its own child process, one after the other, so its peak
resident memory (``ru_maxrss``) is its own. Results: ``benchmarks/results/speed.json``
and ``speed.md`` (``speed_quick.*`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from machine import cpu_seconds, machine_info, peak_rss_mb  # noqa: E402
MODEL = "minilm-l6-h384-uncased"
SEED = 42
BATCH = 32
PREDICT_BATCH = 64
# tfbert's dense-head default is 3e-5; with so few steps (fp32 at L=512 costs
# ~20 s a step here) IMDB reached only 66% after 30 steps at 3e-5 but 80% after
# 12 at 1e-4, so every way uses 1e-4 (a common rate for a 6-layer MiniLM).
LEARNING_RATE = 1e-4
NSMC_DIR = Path("/work/shared/data/nsmc")
IMDB_ARCHIVE = Path("/work/shared/data/imdb/aclImdb_v1_labeled.tar.gz")

WAYS = {
    "a": "usual recipe: HF tokenizer padding=max_length up front, TFAutoModel, float32, fixed-shape batches",
    "b": "tfbert defaults: precision=auto (bfloat16 here), tokenize once, length bucketing, sorted prediction",
    "c_no_bucketing": ("(b) but fixed padding to L: recipes.fixed_padding_dataset(pad_to=L); "
                       "prediction padded to L in input order"),
    "c_float32": "(b) but precision=float32",
    "c_no_cache": "(b) but recipes.per_epoch_tokenizing_dataset (texts tokenized in the tf.data pipeline every epoch; same length buckets)",
    "c_xla": ("(b) with jit_compile=True and static_shapes=True (XLA; batches padded to their bucket's upper bound, "
              "prediction to multiples of 32 tokens, so one compilation per bucket)"),
    "c_xla_fixed": "(c_no_bucketing) with jit_compile=True (a single shape)",
}

# Per data set: sequence length L; training pool (random sample of the cleaned
# train split) from which the training set (steps x 32 texts) is drawn;
# validation size; steps left out of the steady-state throughput; ways to run;
# time budgets (s) after which a way stops training early (the c ways are only
# there to split the speed-up by cause; accuracy is compared for a and b);
# and a smaller prediction set for XLA ways (one compilation per batch length).
ALL_WAYS = list(WAYS)
FULL = {
    "nsmc": dict(seq_length=128, pool=8000, steps=50, valid=1000, warmup=3, ways=ALL_WAYS,
                 budgets={"c_no_bucketing": 75, "c_no_cache": 75, "c_xla": 180, "c_xla_fixed": 90},
                 predict_subset={"c_no_bucketing": 500, "c_no_cache": 500, "c_xla": 256, "c_xla_fixed": 256}),
    "imdb": dict(seq_length=512, pool=6000, steps=30, valid=400, warmup=2,
                 ways=[w for w in ALL_WAYS if w != "c_xla_fixed"],
                 budgets={"c_no_bucketing": 110, "c_no_cache": 100, "c_xla": 90},
                 predict_subset={"c_no_bucketing": 200, "c_no_cache": 200, "c_xla": 128}),
}
QUICK = {  # checks every code path in a few minutes: the numbers mean nothing
    "nsmc": dict(seq_length=128, pool=2000, steps=4, valid=64, warmup=1,
                 ways=["a", "b", "c_no_bucketing", "c_no_cache", "c_xla", "c_xla_fixed"],
                 budgets={"c_xla": 10, "c_xla_fixed": 10}, predict_subset={"c_xla": 32, "c_xla_fixed": 32}),
    "imdb": dict(seq_length=512, pool=2000, steps=2, valid=16, warmup=1, ways=["a", "b"],
                 budgets={}, predict_subset={}),
}
CHILD_TIMEOUT_S = {"full": 1500, "quick": 300}


# --------------------------------------------------------------------------- helpers

def forward_flops(batch: int, length: int, layers: int, hidden: int) -> float:
    """Encoder forward FLOPs for ``batch`` sequences padded to ``length``.

    Per layer: 24*T*H^2 (Q, K, V, output projections 8TH^2 + FFN with inner
    4H 16TH^2, multiply-add = 2 FLOPs) + 4*T^2*H (QK^T and attention x V).
    Embeddings, LayerNorm, softmax, pooling and head are left out (< 1%).
    """
    return float(batch) * layers * (24.0 * length * hidden ** 2 + 4.0 * length ** 2 * hidden)


def train_flops(batch: int, length: int, layers: int, hidden: int) -> float:
    """Forward + backward ~ 3x forward."""
    return 3.0 * forward_flops(batch, length, layers, hidden)


def fixed_predict_shapes(texts, length):
    """(batch, padded length) of fixed-size prediction batches padded to ``length``."""
    return [(min(PREDICT_BATCH, len(texts) - i), length) for i in range(0, len(texts), PREDICT_BATCH)]


# --------------------------------------------------------------------------- children

def child_prep(task: dict) -> dict:
    """Load, clean and sample one data set; write the texts for the way children."""
    import numpy as np

    import tfbert
    from tfbert import data
    from tfbert.pipeline import auto_seq_length

    name, cfg = task["dataset"], task["cfg"]
    t0 = time.perf_counter()
    if name == "nsmc":
        train = data.load_nsmc(NSMC_DIR / "ratings_train.txt")
        test = data.load_nsmc(NSMC_DIR / "ratings_test.txt")
    else:
        train = data.load_imdb(IMDB_ARCHIVE, "train")
        test = data.load_imdb(IMDB_ARCHIVE, "test")
    train_all, train_report = data.clean(train)
    test, _ = data.clean(test)
    # held-out validation from the official test split, minus any text also in train
    test = test[~test["text"].str.strip().isin(set(train_all["text"].str.strip()))]
    pool = train_all.sample(n=cfg["pool"], random_state=SEED)
    valid = test.sample(n=cfg["valid"], random_state=SEED)
    load_s = time.perf_counter() - t0

    spec = tfbert.get_spec(MODEL)
    max_len = spec.max_seq_length or 512
    pre = tfbert.create_preprocessor(MODEL, seq_length=max_len)
    full_lengths = pre.token_ids(pool["text"].tolist(), max_length=10 ** 6).row_lengths().numpy()
    auto_len, auto_truncated = auto_seq_length(full_lengths, max_len, percentile=99.0)
    L = cfg["seq_length"]
    chosen, per_bucket = stratified_training_set(np.minimum(full_lengths, L), cfg["steps"])
    train = pool.iloc[chosen]
    train_lengths = np.minimum(full_lengths[chosen], L)
    payload = {
        "train_texts": train["text"].tolist(), "train_labels": train["label"].astype(int).tolist(),
        "valid_texts": valid["text"].tolist(), "valid_labels": valid["label"].astype(int).tolist(),
    }
    with open(task["data_path"], "wb") as f:
        pickle.dump(payload, f)
    return {
        "dataset": name,
        "train_pool": len(pool), "train": len(train), "valid": len(valid),
        "train_rows_after_clean": len(train_all), "clean_report": str(train_report),
        "train_positive_share": float(np.mean(payload["train_labels"])),
        "valid_positive_share": float(np.mean(payload["valid_labels"])),
        "load_s": load_s,
        "token_length_mean": float(full_lengths.mean()),
        "token_length_mean_truncated": float(np.minimum(full_lengths, L).mean()),
        "train_token_length_mean_truncated": float(train_lengths.mean()),
        "train_batches_per_bucket": per_bucket,
        "token_length_p50_p90_p99": [float(x) for x in np.percentile(full_lengths, [50, 90, 99])],
        "share_truncated_at_L": float((full_lengths > L).mean()),
        "auto_seq_length_p99": auto_len, "auto_seq_length_truncates": auto_truncated,
        "auto_seq_length_max_length": max_len,
    }


def stratified_training_set(lengths, steps: int):
    """Indices of ``steps * BATCH`` texts whose length buckets each hold whole batches.

    Bucketing flushes a partial batch per bucket at the end of an epoch, so on a
    few thousand texts (IMDB has 63 buckets below 512) "the same number of steps"
    and "the same examples" would contradict each other, and the first N bucketed
    batches of a bigger pool over-represent frequent lengths. Here batch i comes
    from the tfbert length bucket holding the pool's (i + 0.5) / steps length
    quantile, so the training set spans the pool's length distribution, and
    tfbert's bucketing cuts it into exactly ``steps`` full batches; every way
    trains one epoch on it.
    """
    import numpy as np

    from tfbert.pipeline import batches_per_epoch, bucket_boundaries

    bounds = bucket_boundaries(max(int(lengths.max()), 2))
    bucket = np.searchsorted(bounds, lengths, side="right")
    room = np.bincount(bucket, minlength=len(bounds) + 1) // BATCH
    if room.sum() < steps:
        raise ValueError(f"pool too small: {room.sum()} whole batches, need {steps}")
    ranked = np.sort(bucket)  # bucket ids in length order
    take = np.zeros_like(room)
    for i in range(steps):
        b = int(ranked[int((i + 0.5) / steps * len(ranked))])
        while take[b] >= room[b]:  # bucket used up: the next longer one with room, else shorter
            free = np.flatnonzero(take < room)
            b = int(free[np.argmin(np.abs(free - b) + (free < b) * 0.5)])
        take[b] += 1
    rng = np.random.default_rng(SEED)
    chosen = np.concatenate([rng.choice(np.flatnonzero(bucket == b), take[b] * BATCH, replace=False)
                             for b in range(len(take)) if take[b]])
    rng.shuffle(chosen)
    sub = lengths[chosen]
    got = batches_per_epoch(sub, BATCH, bucket_boundaries(max(int(sub.max()), 2)))
    if got != steps:
        raise AssertionError(f"stratified training set makes {got} bucketed batches, expected {steps}")
    per_bucket = {f"<{bounds[b]}" if b < len(bounds) else f">={bounds[-1]}": int(take[b])
                  for b in range(len(take)) if take[b]}
    return chosen, per_bucket


def child_matmul(task: dict) -> dict:
    """GFLOP/s of tf.matmul: n x n (the reference), plus 2048^2 and the encoder's
    feed-forward shape (32 x 128 tokens x 384 -> 1536) to see what smaller matmuls get."""
    import tensorflow as tf

    n, reps = task["n"], task["reps"]
    shapes = {"square": (n, n, n), "square_2048": (2048, 2048, 2048), "ffn_4096x384x1536": (4096, 384, 1536)}
    out = {"n": n, "shapes": {}}
    matmul = tf.function(lambda x, y: tf.matmul(x, y))
    for label, (m, k, nn) in shapes.items():
        for dtype in ("float32", "bfloat16"):
            a = tf.cast(tf.random.normal([m, k], seed=1), dtype)
            b = tf.cast(tf.random.normal([k, nn], seed=2), dtype)
            matmul(a, b)[0, 0].numpy()  # warm-up
            times = []
            inner = max(1, int(2e10 // (2.0 * m * k * nn)))  # ~20 GFLOP a timing
            for _ in range(reps):
                t = time.perf_counter()
                for _ in range(inner):
                    c = matmul(a, b)
                c[0, 0].numpy()
                times.append((time.perf_counter() - t) / inner)
            flops = 2.0 * m * k * nn
            res = {"best_gflops": flops / min(times) / 1e9,
                   "median_gflops": flops / sorted(times)[len(times) // 2] / 1e9, "times_s": times}
            out["shapes"][f"{label}_{dtype}"] = res
            if label == "square":
                out[dtype] = res
    return out


class StepTimer:
    """Keras callback factory (keras imported lazily): wall time at each step's end."""

    @staticmethod
    def make(keras, budget_s=None):
        class _Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.times, self.losses, self.stopped_early = [], [], False

            def on_train_begin(self, logs=None):
                self.t0 = time.perf_counter()
                self.cpu0 = cpu_seconds()
                self.cpu = []

            def on_train_batch_end(self, batch, logs=None):
                # float() waits for the step: logs hold the step's results
                self.losses.append(float((logs or {}).get("loss", float("nan"))))
                self.times.append(time.perf_counter() - self.t0)
                self.cpu.append(cpu_seconds())
                if budget_s is not None and self.times[-1] > budget_s:
                    self.model.stop_training = True
                    self.stopped_early = True

        return _Timer()


def describe_batches(ds, ids_key: str, mask_key: str):
    """[(batch size, padded length, real tokens)] of a dataset of (inputs, labels)."""
    out = []
    for x, y in ds:
        out.append((int(y.shape[0]), int(x[ids_key].shape[1]), int(x[mask_key].numpy().sum())))
    return out


def child_way(task: dict) -> dict:
    import numpy as np
    import tensorflow as tf
    import tf_keras as keras

    import tfbert
    from tfbert.optimization import create_optimizer
    from tfbert.pipeline import sorted_batches
    from tfbert.training import make_dataset, predict_logits, train_classifier

    import recipes

    way, cfg = task["way"], task["cfg"]
    L, steps, warm = cfg["seq_length"], cfg["steps"], cfg["warmup"]
    with open(task["data_path"], "rb") as f:
        d = pickle.load(f)
    train_texts, valid_texts = d["train_texts"], d["valid_texts"]
    train_labels = np.asarray(d["train_labels"], np.int32)
    valid_labels = np.asarray(d["valid_labels"], np.int32)
    spec = tfbert.get_spec(MODEL)
    layers, hidden = spec.layers, spec.hidden
    keras.utils.set_random_seed(SEED)
    res = {"way": way, "description": WAYS[way], "dataset": task["dataset"], "seq_length": L,
           "steps_planned": steps, "warmup_steps_excluded": warm, "train_examples": len(train_texts),
           "valid": len(valid_texts)}
    jit = way in ("c_xla", "c_xla_fixed")
    budget = cfg["budgets"].get(way)
    res["train_time_budget_s"] = budget
    timer = StepTimer.make(keras, budget)

    t0 = time.perf_counter()
    if way == "a":
        from transformers import AutoTokenizer, TFAutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        keras.mixed_precision.set_global_policy("float32")
        tokenizer = AutoTokenizer.from_pretrained(spec.tokenizer_path)
        hf = TFAutoModel.from_pretrained(spec.encoder_path)
        inputs = {k: keras.Input(shape=(L,), dtype=tf.int32, name=k)
                  for k in ("input_ids", "token_type_ids", "attention_mask")}
        seq = hf(**inputs).last_hidden_state
        mask = tf.cast(inputs["attention_mask"], seq.dtype)[:, :, None]
        sentence = tf.reduce_sum(seq * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
        x = keras.layers.Dropout(0.1)(sentence)
        model = keras.Model(inputs, keras.layers.Dense(1)(x))
        res["build_s"] = time.perf_counter() - t0
        res["precision"] = "float32"

        def encode(texts):
            enc = tokenizer(list(texts), padding="max_length", truncation=True, max_length=L, return_tensors="np")
            return {k: enc[k].astype(np.int32) for k in inputs}

        def build_train():
            feats = encode(train_texts)
            return (tf.data.Dataset.from_tensor_slices((feats, train_labels.astype(np.float32)[:, None]))
                    .shuffle(len(train_texts), seed=SEED).batch(BATCH))

        t = time.perf_counter()
        train_ds = build_train()
        res["prep_s"] = time.perf_counter() - t
        batches = describe_batches(build_train().repeat().take(steps), "input_ids", "attention_mask")
        model.compile(optimizer=create_optimizer(LEARNING_RATE, steps, warmup_ratio=0.1, weight_decay=0.01,
                                                 clip_norm=1.0),
                      loss=keras.losses.BinaryCrossentropy(from_logits=True),
                      metrics=[keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)])
        keras.utils.set_random_seed(SEED)
        t = time.perf_counter()
        model.fit(train_ds.repeat().take(steps), epochs=1, callbacks=[timer], verbose=0)
        res["fit_s"] = time.perf_counter() - t

        def predict(texts):
            return model.predict(encode(texts), batch_size=PREDICT_BATCH, verbose=0)

        predict_shapes = lambda texts: fixed_predict_shapes(texts, L)  # noqa: E731
    else:
        precision = "float32" if way == "c_float32" else "auto"
        model = tfbert.create_classifier(MODEL, head="dense", seq_length=L, precision=precision)
        res["build_s"] = time.perf_counter() - t0
        res["precision"] = model.precision
        fixed = way in ("c_no_bucketing", "c_xla_fixed")
        opts = dict(batch_size=BATCH, shuffle=True, seed=SEED)
        build = make_dataset
        if fixed:
            build, opts["pad_to"] = recipes.fixed_padding_dataset, L
        if way == "c_no_cache":
            build = recipes.per_epoch_tokenizing_dataset
        if way == "c_xla":
            opts.update(static_shapes=True)
        res["make_dataset_options"] = {"function": build.__name__, **opts}
        t = time.perf_counter()
        train_ds = build(model, train_texts, train_labels, **opts)
        res["prep_s"] = time.perf_counter() - t
        batches = describe_batches(build(model, train_texts, train_labels, **opts).repeat().take(steps),
                                   "input_word_ids", "input_mask")
        t = time.perf_counter()
        train_classifier(model, train_ds.repeat().take(steps), epochs=1, learning_rate=LEARNING_RATE,
                         warmup_ratio=0.1, weight_decay=0.01, clip_norm=1.0, seed=SEED, callbacks=[timer],
                         verbose=0, jit_compile=jit)
        res["fit_s"] = time.perf_counter() - t
        pre = model.preprocessor

        if fixed:
            def predict(texts):
                ds = recipes.fixed_padding_dataset(model, texts, batch_size=PREDICT_BATCH, pad_to=L)
                return model.core.predict(ds, verbose=0)

            predict_shapes = lambda texts: fixed_predict_shapes(texts, L)  # noqa: E731
        else:
            static = way == "c_xla"

            def predict(texts):
                return predict_logits(model, texts, batch_size=PREDICT_BATCH, static_shapes=static)

            def predict_shapes(texts):
                """(batch, padded length) of the batches predict_logits makes."""
                ds, _ = sorted_batches(pre.token_ids(texts), PREDICT_BATCH, pre.pad_id, pre.input_names,
                                       static_shapes=static)
                return [tuple(f["input_mask"].shape) for f in ds]

    # ---- training numbers
    n_done = len(timer.times)
    batches = batches[:n_done]
    res["steps_done"] = n_done
    res["stopped_early_by_time_budget"] = timer.stopped_early
    res["step_times_s"] = [round(b - a, 4) for a, b in zip([0.0] + timer.times[:-1], timer.times)]
    res["step_cpu_s"] = [round(b - a, 4) for a, b in zip([timer.cpu0] + timer.cpu[:-1], timer.cpu)]
    res["step_batch_shapes"] = [[b, t] for b, t, _ in batches]
    res["train_examples_seen"] = sum(b for b, _, _ in batches)
    res["train_padded_tokens"] = sum(b * t for b, t, _ in batches)
    res["train_real_tokens"] = sum(r for _, _, r in batches)
    res["distinct_batch_lengths"] = len({t for _, t, _ in batches})
    res["mean_padded_length"] = res["train_padded_tokens"] / max(1, res["train_examples_seen"])
    res["final_train_loss"] = timer.losses[-1] if timer.losses else None
    res["train_ex_per_s_all_steps"] = res["train_examples_seen"] / timer.times[-1]
    w = min(warm, n_done - 1)
    steady = batches[w:]
    steady_s = timer.times[-1] - timer.times[w - 1] if w > 0 else timer.times[-1]
    res["steady_steps"] = len(steady)
    res["steady_s"] = steady_s
    res["train_ex_per_s"] = sum(b for b, _, _ in steady) / steady_s
    # examples per CPU-second of this process (all threads): less sensitive to
    # other jobs on the machine than wall time
    steady_cpu = timer.cpu[-1] - timer.cpu[w - 1] if w > 0 else None
    res["steady_cpu_s"] = steady_cpu
    res["train_ex_per_cpu_s"] = sum(b for b, _, _ in steady) / steady_cpu if steady_cpu else None
    steady_flops = sum(train_flops(b, t, layers, hidden) for b, t, _ in steady)
    res["train_gflops_per_s"] = steady_flops / steady_s / 1e9
    res["train_ex_per_s_end_to_end"] = res["train_examples_seen"] / (res["prep_s"] + res["fit_s"])
    # per-step time of steps at a length seen before (for XLA: without compilation)
    seen, repeat_times, repeat_ex = set(), 0.0, 0
    for (b, t, _), dt in zip(batches, res["step_times_s"]):
        if t in seen:
            repeat_times += dt
            repeat_ex += b
        seen.add(t)
    res["train_ex_per_s_repeated_shapes"] = repeat_ex / repeat_times if repeat_times else None

    # ---- prediction: a warm-up call on training texts (traces the predict
    # function; Keras relaxes the shapes after the second trace), then the timed
    # call on the validation texts (for XLA ways a subset: each new batch length compiles)
    fixed_shape = way in ("a", "c_no_bucketing", "c_xla_fixed")
    warm_texts = train_texts[:(1 if fixed_shape else 2) * PREDICT_BATCH]
    t = time.perf_counter()
    predict(warm_texts)
    res["predict_warmup_s"] = time.perf_counter() - t
    subset = cfg["predict_subset"].get(way)
    if subset:
        valid_texts, valid_labels = valid_texts[:subset], valid_labels[:subset]
    res["predict_examples"] = len(valid_texts)
    t, c = time.perf_counter(), cpu_seconds()
    logits = np.asarray(predict(valid_texts), np.float32)
    res["predict_s"] = time.perf_counter() - t
    res["predict_cpu_s"] = cpu_seconds() - c
    res["predict_ex_per_s"] = len(valid_texts) / res["predict_s"]
    res["predict_ex_per_cpu_s"] = len(valid_texts) / res["predict_cpu_s"]
    shapes = predict_shapes(valid_texts)
    pred_flops = sum(forward_flops(b, t, layers, hidden) for b, t in shapes)
    res["predict_gflops_per_s"] = pred_flops / res["predict_s"] / 1e9
    res["predict_mean_padded_length"] = sum(b * t for b, t in shapes) / len(valid_texts)
    res["val_accuracy"] = float(np.mean((logits[:, 0] > 0).astype(np.int32) == valid_labels))
    res["peak_rss_mb"] = peak_rss_mb()
    res["cpu_s"] = cpu_seconds()
    return res


def run_child_main(path: str) -> None:
    task = json.loads(Path(path).read_text())
    kind = task["kind"]
    t = time.perf_counter()
    result = {"prep": child_prep, "matmul": child_matmul, "way": child_way}[kind](task)
    result["child_wall_s"] = time.perf_counter() - t
    result["child_peak_rss_mb"] = peak_rss_mb()
    Path(task["result_path"]).write_text(json.dumps(result, indent=1))


# --------------------------------------------------------------------------- parent

def spawn(task: dict, work: Path, name: str, timeout: int, resume: bool) -> dict | None:
    result_path = work / f"{name}.json"
    if resume and result_path.exists():
        print(f"[{name}] reusing {result_path}", flush=True)
        return json.loads(result_path.read_text())
    task = dict(task, result_path=str(result_path))
    task_path = work / f"{name}.task.json"
    task_path.write_text(json.dumps(task))
    log = work / f"{name}.log"
    load_before = os.getloadavg()
    t = time.perf_counter()
    print(f"[{name}] running (log {log}) ...", flush=True)
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0")
    with open(log, "w") as f:
        try:
            rc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(task_path)],
                                stdout=f, stderr=subprocess.STDOUT, env=env, timeout=timeout,
                                cwd=str(ROOT)).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    wall = time.perf_counter() - t
    if rc != 0 or not result_path.exists():
        tail = log.read_text()[-3000:]
        print(f"[{name}] FAILED ({rc}) after {wall:.0f}s; log tail:\n{tail}", flush=True)
        return {"error": f"exit {rc}", "log_tail": tail[-1500:], "process_wall_s": wall}
    result = json.loads(result_path.read_text())
    result["process_wall_s"] = wall
    result["load_average_before"] = list(load_before)
    result["load_average_after"] = list(os.getloadavg())
    result_path.write_text(json.dumps(result, indent=1))
    print(f"[{name}] done in {wall:.0f}s", flush=True)
    return result


def fx(x) -> str:
    return "n/a" if x is None else f"{x:.2f}x"


def fmt(x, spec=".1f", none="n/a"):
    return none if x is None else format(x, spec)


def peak_for(precision: str, matmul: list) -> float | None:
    """Best matmul GFLOP/s measured in the run, any shape, in this precision."""
    key = "bfloat16" if precision == "bfloat16" else "float32"
    vals = [r["best_gflops"] for m in matmul if m for name, r in m.get("shapes", {"": m.get(key)}).items()
            if r and (name.endswith(key) or not name)]
    return max(vals) if vals else None


def ok(r) -> bool:
    return bool(r) and "error" not in r


def complete(r) -> bool:
    """Ran all its steps and predicted the whole validation set (accuracy comparable)."""
    return ok(r) and r["steps_done"] == r["steps_planned"] and r["predict_examples"] == r["valid"]


def ratio(r, a, key):
    return r[key] / a[key] if ok(r) and ok(a) and r.get(key) and a.get(key) else None


def own_parallelism(r: dict) -> float | None:
    """90th percentile over steady steps of CPU time / wall time: the cores the
    way keeps busy when it has the machine to itself (None without per-step CPU)."""
    w = r["warmup_steps_excluded"]
    wall, cpu = r["step_times_s"][w:], r.get("step_cpu_s", [])[w:]
    used = sorted(c / t for c, t in zip(cpu, wall) if t > 0)
    return used[min(len(used) - 1, int(0.9 * len(used)))] if used else None


def correct_for_contention(r: dict, reference: float | None) -> None:
    """Adds throughputs corrected for other jobs taking CPU from this process.

    A step's CPU time (all threads of this process) changes little when another
    job takes one of the two cores (it drops a little: less spinning), while its
    wall time doubles. With ``u`` the cores the way keeps busy when alone
    (:func:`own_parallelism`), each step's time becomes min(wall, cpu / u).
    A way that never ran uncontended (own u < 1.5) is calibrated with
    ``reference``, the median u of the data set's ways that did (flagged);
    XLA ways are left alone (compilation is single-threaded).
    """
    w = r["warmup_steps_excluded"]
    wall, cpu = r["step_times_s"][w:], r.get("step_cpu_s", [])[w:]
    if not cpu or not wall:
        return
    u = own_parallelism(r)
    r["cores_used_uncontended"] = u
    r["corrected_with"] = "own"
    if u < 1.5:
        if reference is None or r["way"].startswith("c_xla"):
            r["train_ex_per_s_corrected"] = r["predict_ex_per_s_corrected"] = None
            r["corrected_with"] = None
            return
        u = reference
        r["corrected_with"] = "reference"
    fixed = sum(min(t, c / u) for c, t in zip(cpu, wall))
    examples = sum(b for b, _ in r["step_batch_shapes"][w:])
    r["steps_contended"] = sum(1 for c, t in zip(cpu, wall) if c / t < 0.75 * u)
    r["train_ex_per_s_corrected"] = examples / fixed
    p_used = r["predict_cpu_s"] / r["predict_s"]
    r["predict_cores_used"] = p_used
    r["predict_ex_per_s_corrected"] = r["predict_examples"] / min(r["predict_s"], r["predict_cpu_s"] / max(u, p_used))


def evaluate(report: dict) -> list[dict]:
    targets = []
    for ds, need in (("nsmc", 3.0), ("imdb", 1.8)):
        if ds not in report["datasets"]:
            continue
        ways = report["datasets"][ds].get("ways", {})
        a, b = ways.get("a"), ways.get("b")
        both = ok(a) and ok(b)
        for what, key in (("training throughput", "train_ex_per_s"), ("prediction throughput", "predict_ex_per_s")):
            r = ratio(b, a, key)
            cpu = ratio(b, a, key.replace("_per_s", "_per_cpu_s"))
            corr = ratio(b, a, key + "_corrected")
            targets.append({"dataset": ds, "target": f"{what} (b)/(a) >= {need}x", "value": r,
                            "value_per_cpu_second": cpu, "value_corrected": corr,
                            "shown": (f"{r:.2f}x wall; {fx(corr)} contention-corrected; "
                                      f"{fx(cpu)} per CPU-second" if r else "n/a"),
                            "pass": bool(r is not None and r >= need),
                            "pass_corrected": None if corr is None else bool(corr >= need)})
        diff = (b["val_accuracy"] - a["val_accuracy"]) * 100 if both else None
        targets.append({"dataset": ds, "target": "validation accuracy (b) >= (a) - 0.5 points", "value": diff,
                        "shown": (f"{b['val_accuracy'] * 100:.1f}% vs {a['val_accuracy'] * 100:.1f}% "
                                  f"({diff:+.1f} points)") if both else "n/a",
                        "pass": bool(diff is not None and diff >= -0.5 and complete(a) and complete(b))})
        targets.append({"dataset": ds, "target": "peak memory (b) <= (a)",
                        "value": [b["peak_rss_mb"], a["peak_rss_mb"]] if both else None,
                        "shown": f"{b['peak_rss_mb']:.0f} MB vs {a['peak_rss_mb']:.0f} MB" if both else "n/a",
                        "pass": bool(both and b["peak_rss_mb"] <= a["peak_rss_mb"])})
    return targets


def markdown(report: dict) -> str:
    m = report["machine"]
    mm = report["matmul"]
    lines = ["# Fine-tuning speed: usual recipe vs tfbert", ""]
    if report["quick"]:
        lines += ["**`--quick`: a few steps on a few texts to check that every code path runs; the numbers and "
                  "PASS/FAIL below mean nothing.**", ""]
    lines.append(f"`python benchmarks/speed.py{' --quick' if report['quick'] else ''}` on {m['date']}: "
                 f"{m['cpu_model']}, {m['cpu_cores']} cores (avx512_bf16: {m['avx512_bf16']}, amx_bf16: "
                 f"{m['amx_bf16']}), {m['memory_gb']} GB RAM; Python {m['python']}, TensorFlow {m['tensorflow']}, "
                 f"tf_keras {m['tf_keras']}, transformers {m['transformers']}. Load average at start "
                 f"{m['load_average_at_start'][0]:.1f}: the cores were shared with other jobs, so absolute times are "
                 f"noisy; ratios come from one run, the ways one after the other, each in its own process. "
                 f"The child processes took {report['children_wall_s'] / 60:.0f} min in all.")
    lines.append("")
    lines.append(f"Model `{MODEL}` (BERT, 6 layers, hidden 384), head `dense` (masked mean pooling -> "
                 f"Dropout(0.1) -> Dense(1)), batch {BATCH}, AdamW (tfbert.optimization.create_optimizer) lr "
                 f"{LEARNING_RATE} (tfbert's dense-head default is 3e-5: too slow for the few steps affordable "
                 f"here), 10% warmup then linear decay, weight decay 0.01, clip 1.0; every way runs the "
                 f"same optimizer steps over the same training examples (one epoch). Prediction batch {PREDICT_BATCH}.")
    lines.append("")
    lines.append("Ways:")
    lines.append("")
    for way, text in WAYS.items():
        lines.append(f"- `{way}`: {text}")
    lines.append("")
    peaks = []
    for i, run in enumerate(mm):
        if run:
            extra = "".join(f", {name} {r['best_gflops']:.0f}" for name, r in run.get("shapes", {}).items()
                            if not name.startswith("square_f") and not name.startswith("square_b"))
            peaks.append(f"{'start' if i == 0 else 'end'}: float32 {run['float32']['best_gflops']:.0f} GFLOP/s, "
                         f"bfloat16 {run['bfloat16']['best_gflops']:.0f} GFLOP/s{extra}")
    n = next((run["n"] for run in mm if run), 4096)
    lines.append(f"Matmul reference (`tf.matmul` {n}x{n}, best of 5, at the start and the end of the run; other "
                 f"shapes in GFLOP/s): " + "; ".join(peaks) + ". '% of matmul peak' divides a way's training "
                 f"GFLOP/s by the best matmul GFLOP/s of the run (any shape) in the way's compute precision: "
                 f"float32 {fmt(peak_for('float32', mm), '.0f')}, bfloat16 {fmt(peak_for('bfloat16', mm), '.0f')}.")
    lines.append("")
    lines.append("Model FLOPs are analytic, from the padded batch shapes actually processed: forward per sequence of "
                 "padded length T = layers x (24·T·H² + 4·T²·H) with H = 384, 6 layers (24TH²: Q, K, V and "
                 "output "
                 "projections 8TH² plus the feed-forward block with inner size 4H = 1536, 16TH², at 2 FLOPs per "
                 "multiply-add; 4T²H: QKᵀ and attention x V); training = 3 x forward. Embeddings, softmax, "
                 "LayerNorm, pooling and the head are left out.")
    lines.append("")
    lines.append("Train ex/s is the steady state: examples of the steps after the first few (tracing, warm-up) over "
                 "their wall time; 'all steps' counts every step from the start of `fit`. Predict ex/s includes "
                 "tokenization and runs after a warm-up call on training texts (64 for fixed shapes, 256 "
                 "otherwise, so that Keras has seen several batch shapes). 'per CPU-s' ratios divide by "
                 "this process's CPU time instead of wall time. 'corrected' throughputs undo the time other jobs took "
                 "the cores (see Targets). Accuracy in "
                 "parentheses: the way stopped early (time budget) or predicted a subset, not comparable.")
    for ds, block in report["datasets"].items():
        prep = block.get("prep") or {}
        cfg = block["config"]
        lines += ["", f"## {ds.upper()} (L = {cfg['seq_length']})", ""]
        if ok(prep):
            lines.append(f"Automatic length (`tfbert.pipeline.auto_seq_length`, 99th percentile, cap "
                         f"{prep['auto_seq_length_max_length']}): **{prep['auto_seq_length_p99']}** tokens "
                         f"(truncates {prep['auto_seq_length_truncates']} of {prep['train_pool']} pool texts)")
            lines.append("")
            p = prep["token_length_p50_p90_p99"]
            lines.append(f"Data: {prep['train']} training texts = {cfg['steps']} steps x {BATCH}, drawn from a pool "
                         f"of {prep['train_pool']} (random sample of the cleaned official train split): batch i "
                         f"from the "
                         f"tfbert length bucket at the pool's (i + 0.5)/{cfg['steps']} length quantile, so that "
                         f"bucketing makes exactly {cfg['steps']} full batches "
                         f"(mean {prep['train_token_length_mean_truncated']:.1f} tokens after truncation to L vs "
                         f"{prep['token_length_mean_truncated']:.1f} in the pool); validation {prep['valid']} texts "
                         f"(random sample of the official test split, {prep['valid_positive_share'] * 100:.0f}% "
                         f"positive). First {cfg['warmup']} steps left out of the steady throughput. Tokens per "
                         f"pool text before truncation: mean {prep['token_length_mean']:.0f}, median {p[0]:.0f}, "
                         f"90th pct {p[1]:.0f}, 99th pct {p[2]:.0f}; {prep['share_truncated_at_L'] * 100:.0f}% "
                         f"longer than L.")
        lines.append("")
        lines.append("| way | train ex/s | ×(a) | corrected ×(a) | train ex/s all steps | predict ex/s | ×(a) | "
                     "corrected ×(a) | peak RSS MB | val acc % | mean padded len | train GFLOP/s | % of matmul peak "
                     "| precision | steps |")
        lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- "
                     "| ---: |")
        ways = block["ways"]
        a = ways.get("a") if ok(ways.get("a")) else None
        for way, r in ways.items():
            if not ok(r):
                lines.append(f"| {way} | failed: {(r or {}).get('error', 'not run')} |" + " |" * 14)
                continue
            peak = peak_for(r["precision"], mm)
            acc = f"{r['val_accuracy'] * 100:.1f}" if complete(r) else f"({r['val_accuracy'] * 100:.1f})"
            steps = f"{r['steps_done']}/{r['steps_planned']}"
            lines.append(
                f"| {way} | {r['train_ex_per_s']:.1f} | {fmt(ratio(r, a, 'train_ex_per_s'), '.2f')} | "
                f"{fmt(ratio(r, a, 'train_ex_per_s_corrected'), '.2f')} | {r['train_ex_per_s_all_steps']:.1f} | "
                f"{r['predict_ex_per_s']:.1f} | {fmt(ratio(r, a, 'predict_ex_per_s'), '.2f')} | "
                f"{fmt(ratio(r, a, 'predict_ex_per_s_corrected'), '.2f')} | {r['peak_rss_mb']:.0f} | {acc} | "
                f"{r['mean_padded_length']:.0f} | {r['train_gflops_per_s']:.0f} | "
                f"{fmt(100 * r['train_gflops_per_s'] / peak if peak else None, '.0f')} | {r['precision']} | {steps} |")
        lines.append("")
        for way, r in ways.items():
            if ok(r):
                early = " (stopped by its time budget)" if r.get("stopped_early_by_time_budget") else ""
                lines.append(f"- `{way}`: {r['steps_done']} steps{early}, {r['train_examples_seen']} examples, "
                             f"{r['distinct_batch_lengths']} distinct batch lengths; fit {r['fit_s']:.0f} s (first "
                             f"step {r['step_times_s'][0]:.1f} s); tokenize + dataset {r['prep_s']:.1f} s; predict "
                             f"{r['predict_examples']} texts in {r['predict_s']:.1f} s (warm-up call "
                             f"{r['predict_warmup_s']:.1f} s), {r['predict_gflops_per_s']:.0f} GFLOP/s, mean padded "
                             f"length {r['predict_mean_padded_length']:.0f}; final train loss "
                             f"{fmt(r['final_train_loss'], '.3f')}; cores busy when alone "
                             f"{fmt(r.get('cores_used_uncontended'), '.2f')}"
                             + (" (never ran alone: corrected with the data set's reference "
                                f"{fmt(block.get('reference_parallelism'), '.2f')})"
                                if r.get("corrected_with") == "reference" else "")
                             + f", {fmt(r.get('steps_contended'), 'd')} steady steps slowed by other jobs; "
                             f"corrected train {fmt(r.get('train_ex_per_s_corrected'))} ex/s, "
                             f"predict {fmt(r.get('predict_ex_per_s_corrected'))} ex/s (predict used "
                             f"{fmt(r.get('predict_cores_used'), '.2f')} cores); process CPU {r['cpu_s']:.0f} s over "
                             f"{r['child_wall_s']:.0f} s wall; load average {r['load_average_before'][0]:.1f} -> "
                             f"{r['load_average_after'][0]:.1f}.")
    caveat = [ds for ds, block in report["datasets"].items()
              if ok(block["ways"].get("a")) and block["ways"]["a"].get("corrected_with") == "reference"]
    lines += ["", "## Targets", "", "Ratios inside this run. 'wall' divides wall-clock throughputs; "
              "'corrected' first replaces each step's wall time by min(wall, CPU time / the way's uncontended "
              "parallelism), undoing the time other jobs took the cores."
              + (f" On {', '.join(caveat)}, (a) never had the cores to itself, so it was corrected with the data "
                 "set's reference parallelism; a step's CPU time is 10-20% lower while another job shares the "
                 "cores (less spin-waiting), so this credits (a) with more speed than it has alone and the "
                 "corrected (b)/(a) ratios there are conservative." if caveat else ""), "",
              "| data set | target | measured | result (wall) | result (corrected) |",
              "| --- | --- | --- | --- | --- |"]
    for t in report["targets"]:
        corr = t.get("pass_corrected")
        corr = "–" if corr is None else ("PASS" if corr else "FAIL")
        lines.append(f"| {t['dataset']} | {t['target']} | {t['shown']} | {'PASS' if t['pass'] else 'FAIL'} | {corr} |")
    if report.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report["notes"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="tiny version that runs every code path (~8 min on 2 busy cores)")
    parser.add_argument("--datasets", default="nsmc,imdb")
    parser.add_argument("--ways", default=",".join(WAYS))
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--work", default=None, help="folder for per-way results and logs")
    parser.add_argument("--resume", action="store_true",
                        help="reuse per-way results already in --work (e.g. to rebuild the report)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child_main(args.child)
        return

    mode = "quick" if args.quick else "full"
    configs = QUICK if args.quick else FULL
    work = Path(args.work or f"/tmp/tfbert_speed_{mode}")
    work.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    datasets = [d for d in args.datasets.split(",") if d]
    ways = [w for w in args.ways.split(",") if w]
    for w in ways:
        if w not in WAYS:
            parser.error(f"unknown way {w}; choose from {', '.join(WAYS)}")
    timeout = CHILD_TIMEOUT_S[mode]
    started = time.perf_counter()

    report = {"quick": args.quick, "model": MODEL, "batch_size": BATCH, "predict_batch_size": PREDICT_BATCH,
              "learning_rate": LEARNING_RATE, "seed": SEED, "machine": machine_info(), "ways": WAYS,
              "flops_formula": "forward = layers*(24*T*H^2 + 4*T^2*H) per sequence of padded length T; "
                               "train = 3*forward", "datasets": {}, "matmul": []}
    n = 1024 if args.quick else 4096
    report["matmul"].append(spawn({"kind": "matmul", "n": n, "reps": 3 if args.quick else 5}, work,
                                  "matmul_start", timeout, args.resume))
    for ds in datasets:
        cfg = configs[ds]
        data_path = str(work / f"{ds}_data.pkl")
        block = {"config": cfg, "ways": {}}
        report["datasets"][ds] = block
        block["prep"] = spawn({"kind": "prep", "dataset": ds, "cfg": cfg, "data_path": data_path}, work,
                              f"{ds}_prep", timeout, args.resume)
        if not block["prep"] or "error" in block["prep"]:
            continue
        print(f"[{ds}] automatic length (auto_seq_length, 99th percentile): "
              f"{block['prep']['auto_seq_length_p99']}", flush=True)
        for way in [w for w in ways if w in cfg["ways"]]:
            block["ways"][way] = spawn({"kind": "way", "way": way, "dataset": ds, "cfg": cfg,
                                        "data_path": data_path}, work, f"{ds}_{way}", timeout, args.resume)
    if not args.quick:
        report["matmul"].append(spawn({"kind": "matmul", "n": n, "reps": 5}, work, "matmul_end", timeout,
                                      args.resume))
    report["matmul"] = [m if m and "error" not in m else None for m in report["matmul"]]
    for block in report["datasets"].values():
        alone = sorted(u for u in (own_parallelism(r) for r in block["ways"].values() if ok(r) and "step_cpu_s" in r)
                       if u is not None and u >= 1.5)
        block["reference_parallelism"] = alone[len(alone) // 2] if alone else None
        for r in block["ways"].values():
            if ok(r):
                r.setdefault("train_examples", r.pop("train_pool", None))
                correct_for_contention(r, block["reference_parallelism"])
    report["targets"] = evaluate(report)
    report["total_wall_s"] = time.perf_counter() - started
    children = [r for r in report["matmul"] if r] + [r for block in report["datasets"].values()
                                                     for r in [block.get("prep"), *block["ways"].values()] if r]
    report["children_wall_s"] = sum(r.get("process_wall_s", 0.0) for r in children)
    first = work / "matmul_start.json"
    if args.resume and first.exists():  # report on when the numbers were measured, not regenerated
        started_at = first.stat().st_mtime - (report["matmul"][0] or {}).get("process_wall_s", 0.0)
        report["machine"]["date"] = datetime.datetime.fromtimestamp(
            started_at, datetime.timezone.utc).isoformat(timespec="seconds")
        if report["matmul"][0] and "load_average_before" in report["matmul"][0]:
            report["machine"]["load_average_at_start"] = report["matmul"][0]["load_average_before"]
    report["notes"] = notes(report)
    stem = "speed_quick" if args.quick else "speed"
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1))
    md = markdown(report)
    (out / f"{stem}.md").write_text(md)
    print()
    print(md)
    print(f"wrote {out / (stem + '.json')} and {out / (stem + '.md')} in {report['total_wall_s'] / 60:.1f} min")


def notes(report: dict) -> list[str]:
    out = []
    for ds, block in report["datasets"].items():
        ways = block["ways"]
        b = ways.get("b")
        if not ok(b):
            continue
        parts = []
        for way, what in (("c_no_bucketing", "length bucketing (+ sorted prediction)"),
                          ("c_float32", "bfloat16"),
                          ("c_no_cache", "tokenizing once (instead of in the pipeline every epoch)")):
            r = ways.get(way)
            if ok(r):
                parts.append(f"{what}: {fx(ratio(b, r, 'train_ex_per_s'))} in training "
                             f"({fx(ratio(b, r, 'train_ex_per_s_corrected'))} corrected), "
                             f"{fx(ratio(b, r, 'predict_ex_per_s'))} in prediction "
                             f"({fx(ratio(b, r, 'predict_ex_per_s_corrected'))} corrected)")
        if parts:
            out.append(f"{ds}: what each default buys, (b) over (b) with it switched off: " + "; ".join(parts) + ".")
        for way in ("c_xla", "c_xla_fixed"):
            r = ways.get(way)
            if not ok(r):
                continue
            times = r["step_times_s"]
            if way == "c_xla":
                shapes = (f"saw {r['distinct_batch_lengths']} distinct batch lengths in {r['steps_done']} steps "
                          f"(XLA compiles once per input shape; static_shapes pads each batch to its bucket's "
                          f"upper bound, so there is one shape per bucket)")
            else:
                shapes = f"ran {r['steps_done']} steps at one shape ({r['seq_length']} tokens)"
            out.append(
                f"{ds}: `{way}` {shapes}; first step {times[0]:.0f} s; steps at an already-compiled length ran at "
                f"{fmt(r['train_ex_per_s_repeated_shapes'])} ex/s (steady (b): {b['train_ex_per_s']:.1f} ex/s; "
                f"non-XLA fixed padding `c_no_bucketing`: "
                f"{fmt((ways.get('c_no_bucketing') or {}).get('train_ex_per_s'))} ex/s); it kept "
                f"{fmt(r.get('cores_used_uncontended'), '.2f')} cores busy vs "
                f"{fmt(b.get('cores_used_uncontended'), '.2f')} for (b). Prediction: {r['predict_ex_per_s']:.1f} ex/s "
                f"on {r['predict_examples']} texts"
                + (" (sorted batches padded to multiples of 32 tokens: one compilation per multiple)." if way == "c_xla" else "."))
    return out


if __name__ == "__main__":
    main()
