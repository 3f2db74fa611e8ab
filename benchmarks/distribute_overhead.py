"""What a tf.distribute strategy costs on one CPU machine: one-worker MultiWorkerMirroredStrategy
vs no strategy, the same training side by side.

    python benchmarks/distribute_overhead.py            # MiniLM-L6, 512 IMDB reviews at 128 tokens
    python benchmarks/distribute_overhead.py --quick    # tiny encoder, checks the code path

Each way trains in a fresh process (a multi-worker strategy must be made before
any TensorFlow op): ``tfbert.distribute.placement`` with ``auto`` (no strategy
on a CPU machine) or ``multi_worker`` with a one-worker ``$TF_CONFIG``; then
the same model, data, seed and batches. The ways alternate ``--repeats`` times;
the figure is examples/s of the second epoch (the first one traces the step
functions). Writes ``benchmarks/results/distribute_overhead.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine import machine_info, write_report  # noqa: E402

_TRAIN = textwrap.dedent("""
    import json, sys, time
    from tfbert.distribute import placement
    place = placement(sys.argv[1], join_timeout=60)  # before any TensorFlow op
    import tfbert
    import tf_keras as keras
    from tfbert.training import make_dataset, train_classifier
    setting = json.loads(sys.argv[2])
    if setting.get("encoder"):
        tfbert.register_model(name=setting["model"], backend="huggingface", encoder=setting["encoder"],
                              max_seq_length=128)
    texts, labels = json.load(open(setting["data"]))
    keras.utils.set_random_seed(0)
    with place.scope():
        model = tfbert.create_classifier(setting["model"], head="dense", seq_length=setting["seq_length"],
                                         precision="float32")
    ds = make_dataset(model, texts, labels, batch_size=32, shuffle=True, seed=1, by_epoch=True)
    history = train_classifier(model, ds, epochs=2, verbose=0, examples_per_epoch=len(texts))
    print("RESULT " + json.dumps({"examples_per_s": history.history["examples_per_s"][-1],
                                  "epoch_s": history.history["time"][-1], "loss": history.history["loss"],
                                  "strategy": place.name, "replicas": place.replicas}))
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _data(work: Path, quick: bool) -> dict:
    if quick:
        from tfbert.testing import make_tiny_hf_bert, toy_texts

        texts, labels = toy_texts(128, seed=0)
        encoder = make_tiny_hf_bert(work / "tiny")
        setting = dict(model="tiny-hf", encoder=encoder, seq_length=16, texts=len(texts))
    else:
        from tfbert import data

        frame = data.load_imdb(HERE.parent.parent / "shared" / "data" / "imdb" / "aclImdb_v1_labeled.tar.gz", "train")
        frame = frame.sample(n=512, random_state=0)
        texts, labels = frame["text"].tolist(), frame["label"].astype(int).tolist()
        setting = dict(model="minilm-l6-h384-uncased", encoder=None, seq_length=128, texts=len(texts))
    path = work / "data.json"
    path.write_text(json.dumps([list(texts), [int(y) for y in labels]]))
    return {**setting, "data": str(path)}


def run_once(strategy: str, setting: dict) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_CONFIG", None)
    if strategy == "multi_worker":
        env["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"localhost:{_free_port()}"]},
                                       "task": {"type": "worker", "index": 0}})
    proc = subprocess.run([sys.executable, "-c", _TRAIN, strategy, json.dumps(setting)], env=env,
                          capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{strategy} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        setting = _data(Path(tmp), args.quick)
        results = {"auto": [], "multi_worker": []}
        for repeat in range(args.repeats):
            for strategy in results:
                result = run_once(strategy, setting)
                results[strategy].append(result)
                print(f"[{repeat + 1}/{args.repeats}] {strategy:12s} {result['examples_per_s']:8.1f} examples/s "
                      f"(epoch {result['epoch_s']:.1f} s, {result['strategy']}, {result['replicas']} replica)",
                      flush=True)
    best = {k: max(r["examples_per_s"] for r in v) for k, v in results.items()}
    ratio = best["multi_worker"] / best["auto"]
    same_loss = all(abs(a - b) < 1e-4 for a, b in zip(results["auto"][0]["loss"], results["multi_worker"][0]["loss"]))
    report = {"machine": machine_info(), "setting": {k: v for k, v in setting.items() if k != "data"},
              "results": results, "best_examples_per_s": best, "multi_worker_vs_none": round(ratio, 3),
              "same_losses_1e-4": same_loss}
    name = "distribute_overhead_quick" if args.quick else "distribute_overhead"
    cpu = report["machine"].get("cpu_model", report["machine"])
    lines = [f"# One-worker MultiWorkerMirroredStrategy vs no strategy\n", f"CPU: {cpu}\n",
             f"{setting['model']}, dense head, {setting['texts']} texts, seq {setting['seq_length']}, batch 32, "
             f"float32; best of {args.repeats} alternating runs, second epoch\n",
             "| strategy | examples/s |", "|---|---|",
             *[f"| {'none (auto)' if k == 'auto' else k} | {v:.1f} |" for k, v in best.items()],
             f"\nmulti_worker / none: {ratio:.3f}; losses equal to 1e-4: {same_loss}"]
    write_report(HERE / "results", name, report, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
