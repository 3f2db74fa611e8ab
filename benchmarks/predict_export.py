"""Exported-model prediction vs the library's own prediction path, side by side in one process.

    python benchmarks/predict_export.py           # 10,000 NSMC reviews (~6 min on 2 cores)
    python benchmarks/predict_export.py --quick   # 1,000 reviews

One ``minilm-l6-h384-uncased`` dense classifier (seq_length 128, precision
auto; its weights do not matter for speed) is exported once; the same texts
are then labelled by:

    library      tfbert.training.predict_logits (token-length sorted batches of 64)
    predictor    tfbert.predict.load(folder).predict(texts) (what `tfbert predict` runs)
    signature    tf.saved_model.load(folder).signatures["serving_default"](text=all texts, one call)
    naive_64     the same signature called 64 texts at a time in input order (a plain
                 caller's loop; how the exported path behaved before sorting moved in-graph)

Texts: a seeded sample of NSMC's training file (never the test split).
Every way runs twice, alternating, after a warm-up; the faster round counts
(this 2-core machine sometimes gives a process one core, sometimes two).
Results: benchmarks/results/predict_export.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before TensorFlow loads (tfbert sets it too)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine import cpu_seconds, machine_info, peak_rss_mb  # noqa: E402

MODEL = "minilm-l6-h384-uncased"
NSMC_TRAIN = HERE.parent.parent / "shared" / "data" / "nsmc" / "ratings_train.txt"
SEED = 42


def load_texts(n: int) -> list[str]:
    import numpy as np

    from tfbert.data import load_nsmc

    frame = load_nsmc(NSMC_TRAIN)
    texts = frame["text"].astype(str)
    texts = texts[texts.str.strip() != ""].tolist()
    rng = np.random.default_rng(SEED)
    return [texts[i] for i in rng.choice(len(texts), size=n, replace=False)]


def timed(fn):
    wall, cpu = time.perf_counter(), cpu_seconds()
    out = fn()
    return out, time.perf_counter() - wall, cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 1000 if args.quick else 10000

    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the ops the SavedModel uses)

    import tfbert
    from tfbert.export import export_classifier
    from tfbert.predict import load
    from tfbert.training import predict_logits

    texts = load_texts(n)
    model = tfbert.create_classifier(MODEL, head="dense", seq_length=128)
    folder = Path(tempfile.mkdtemp(prefix="predict_export_")) / "model"
    export_classifier(model, folder)
    predictor = load(folder)
    serve = tf.saved_model.load(str(folder)).signatures["serving_default"]

    def sigmoid_pairs(logits):
        p = 1 / (1 + np.exp(-np.asarray(logits, np.float64)[:, 0]))
        return np.stack([1 - p, p], 1)

    ways = {
        "library": lambda t: sigmoid_pairs(predict_logits(model, t, batch_size=64)),
        "predictor": lambda t: predictor.predict_proba(t, progress=False),
        "signature": lambda t: serve(text=tf.constant(t))["probabilities"].numpy(),
        "naive_64": lambda t: np.concatenate([serve(text=tf.constant(t[i:i + 64]))["probabilities"].numpy()
                                              for i in range(0, len(t), 64)]),
    }
    for fn in ways.values():  # warm-up: traces and first calls
        fn(texts[:200])
    results = {name: {"rounds": []} for name in ways}
    outputs = {}
    for _ in range(2):
        for name, fn in ways.items():
            out, wall, cpu = timed(lambda: fn(texts))
            outputs[name] = out
            results[name]["rounds"].append({"wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                                            "texts_per_s": round(n / wall, 1)})
            print(f"{name:10s} {n / wall:7.1f} texts/s  ({wall:.1f} s wall, {cpu:.1f} s CPU)", flush=True)
    for name, res in results.items():
        best = max(res["rounds"], key=lambda r: r["texts_per_s"])
        res.update(best_texts_per_s=best["texts_per_s"],
                   max_abs_diff_vs_library=float(np.abs(outputs[name] - outputs["library"]).max()))
    base = results["library"]["best_texts_per_s"]
    for res in results.values():
        res["ratio_vs_library"] = round(res["best_texts_per_s"] / base, 3)
    report = {"texts": n, "model": MODEL, "seq_length": 128, "precision": model.precision,
              "machine": machine_info(), "peak_rss_mb": round(peak_rss_mb()), "ways": results,
              "target": "predictor and signature >= 0.8x library",
              "passed": all(results[k]["ratio_vs_library"] >= 0.8 for k in ("predictor", "signature"))}
    write(report, "predict_export_quick" if args.quick else "predict_export")


def write(report: dict, stem: str) -> None:
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    m = report["machine"]
    cpu = f"{m['cpu_model']}, {m['cpu_cores']} cores, AVX512-BF16 {m['avx512_bf16']}, AMX {m['amx_bf16']}"
    lines = [f"# Exported-model prediction vs the library path ({report['texts']} NSMC train reviews)", "",
             f"CPU: {cpu}; {m['date']}; model {report['model']}, seq_length {report['seq_length']}, "
             f"precision {report['precision']}; best of 2 rounds.", "",
             "| way | texts/s | x library | max abs diff of probabilities vs library |", "| --- | --- | --- | --- |"]
    for name, res in report["ways"].items():
        lines.append(f"| {name} | {res['best_texts_per_s']} | {res['ratio_vs_library']} | "
                     f"{res['max_abs_diff_vs_library']:.2g} |")
    lines += ["", f"Target: {report['target']}: {'PASS' if report['passed'] else 'FAIL'}"]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    print(f"\nwrote {out / stem}.json and .md")


if __name__ == "__main__":
    main()
