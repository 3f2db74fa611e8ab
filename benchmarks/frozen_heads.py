"""Frozen-encoder heads: encoder run every epoch vs its outputs computed once.

    python benchmarks/frozen_heads.py           # NSMC and IMDB, cls_bn and bilstm, 3 epochs (~15 min)
    python benchmarks/frozen_heads.py --quick   # a few texts, checks the code paths

For ``cls_bn`` and ``bilstm`` (encoder frozen), two ways train the same model
on the same texts, each in its own process (for peak memory):

    through   tfbert's token-id pipeline: the frozen encoder runs on every
              batch of every epoch (``make_dataset(...)``)
    cached    ``make_dataset(..., encoder_outputs=True)``: the encoder runs once
              over the texts, then only the head trains (tfbert's default in
              ``tfbert train``)

Writes ``benchmarks/results/frozen_heads.{json,md}`` (``frozen_heads_quick.*``
with ``--quick``). Times include computing the outputs (the cached way's
dataset build) and the validation passes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine import peak_rss_mb, write_report  # noqa: E402

DATA = HERE.parent.parent / "shared" / "data"
MODEL = "minilm-l6-h384-uncased"
SEED = 42
BATCH = 32
EPOCHS = 3
HEADS = ("cls_bn", "bilstm")
WAYS = ("through", "cached")
FULL = {"nsmc": dict(seq_length=128, train=4000, valid=1000),
        "imdb": dict(seq_length=512, train=1000, valid=500)}
QUICK = {"nsmc": dict(seq_length=64, train=96, valid=32),
         "imdb": dict(seq_length=128, train=64, valid=32)}


def load(name: str, n_train: int, n_valid: int):
    from tfbert import data

    if name == "nsmc":
        train = data.load_nsmc(DATA / "nsmc" / "ratings_train.txt")
        test = data.load_nsmc(DATA / "nsmc" / "ratings_test.txt")
    else:
        archive = DATA / "imdb" / "aclImdb_v1_labeled.tar.gz"
        train, test = data.load_imdb(archive, "train"), data.load_imdb(archive, "test")
    train, _ = data.clean(train)
    test, _ = data.clean(test)
    train = train.sample(n=n_train, random_state=SEED)
    valid = test.sample(n=n_valid, random_state=SEED)
    names = sorted(train["label"].unique())
    return train, valid, names


def child(task: dict) -> dict:
    import numpy as np

    import tfbert
    from tfbert import encoder_cache
    from tfbert.training import make_dataset, train_classifier

    cfg = task["cfg"]
    train, valid, names = load(task["dataset"], cfg["train"], cfg["valid"])
    ids = {n: i for i, n in enumerate(names)}
    y_train = np.array([ids[v] for v in train["label"]], np.int32)
    y_valid = np.array([ids[v] for v in valid["label"]], np.int32)
    model = tfbert.create_classifier(MODEL, head=task["head"], class_names=names, seq_length=cfg["seq_length"])
    cached = task["way"] == "cached"
    res = {**task, "precision": model.precision, "train_texts": len(train), "valid_texts": len(valid)}
    if cached:
        res["cache_mb"] = encoder_cache.plan(model, [train["text"], valid["text"]])[1]
    t0 = time.perf_counter()
    train_ds = make_dataset(model, train["text"], y_train, batch_size=BATCH, shuffle=True, seed=SEED,
                            encoder_outputs=cached, verbose=False)
    valid_ds = make_dataset(model, valid["text"], y_valid, batch_size=64, encoder_outputs=cached, verbose=False)
    res["dataset_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    history = train_classifier(model, train_ds, valid_ds, epochs=EPOCHS, seed=SEED, verbose=0,
                               part="head" if cached else "core").history
    res["fit_s"] = time.perf_counter() - t1
    res["total_s"] = res["dataset_s"] + res["fit_s"]
    res["epoch_s"] = [round(t, 2) for t in history["time"]]
    res["val_accuracy"] = [round(100 * a, 2) for a in history["val_accuracy"]]
    res["loss"] = [round(v, 4) for v in history["loss"]]
    res["peak_rss_mb"] = peak_rss_mb()
    return res


def spawn(task: dict, work: Path) -> dict:
    stem = f"{task['dataset']}_{task['head']}_{task['way']}"
    out, log = work / f"{stem}.json", work / f"{stem}.log"
    print(f"[{stem}] running (log {log}) ...", flush=True)
    t = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.run([sys.executable, __file__, "--child", json.dumps({**task, "out": str(out)})],
                              stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if proc.returncode or not out.exists():
        print(f"[{stem}] failed (rc {proc.returncode}); see {log}", flush=True)
        return {**task, "error": f"rc {proc.returncode}, see {log}"}
    print(f"[{stem}] done in {time.perf_counter() - t:.0f}s", flush=True)
    return json.loads(out.read_text())


def markdown(report: dict) -> str:
    lines = ["# Frozen-encoder heads: encoder every epoch vs outputs computed once", "",
             f"`python benchmarks/frozen_heads.py{' --quick' if report['quick'] else ''}` on {report['date']} "
             f"({report['cpu']}, {os.cpu_count()} cores; load average at start {report['load_start']:.1f}). "
             f"Model `{MODEL}`, batch {BATCH}, {EPOCHS} epochs, the head's default learning rate, "
             f"precision auto, each way in its own process. 'total' = building the datasets "
             f"(for `cached`: running the encoder over train and validation texts) + fitting "
             f"(with a validation pass every epoch).", ""]
    for ds, cfg in report["configs"].items():
        lines += [f"## {ds.upper()} (L = {cfg['seq_length']}, {cfg['train']} train / {cfg['valid']} validation texts)",
                  "", "| head | way | total s | speed-up | datasets s | epoch s | val acc % per epoch | "
                  "peak RSS MB | cached MB |", "| --- | --- | ---: | ---: | ---: | --- | --- | ---: | ---: |"]
        for head in HEADS:
            rows = {r["way"]: r for r in report["results"] if r["dataset"] == ds and r["head"] == head}
            base = rows.get("through", {}).get("total_s")
            for way in WAYS:
                r = rows.get(way)
                if not r or "error" in r:
                    lines.append(f"| {head} | {way} | failed | | | | | | |")
                    continue
                speed = f"{base / r['total_s']:.2f}x" if base else "n/a"
                cache = f"{r['cache_mb']:.0f}" if "cache_mb" in r else "–"
                lines.append(
                    f"| {head} | {way} | {r['total_s']:.0f} | {speed} | {r['dataset_s']:.1f} | "
                    f"{' / '.join(f'{t:.1f}' for t in r['epoch_s'])} | "
                    f"{' / '.join(f'{a:.1f}' for a in r['val_accuracy'])} | {r['peak_rss_mb']:.0f} | {cache} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--datasets", default="nsmc,imdb")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        task = json.loads(args.child)
        out = Path(task.pop("out"))
        out.write_text(json.dumps(child(task), indent=1))
        return
    configs = {d: (QUICK if args.quick else FULL)[d] for d in args.datasets.split(",") if d}
    work = Path(f"/tmp/tfbert_frozen_heads{'_quick' if args.quick else ''}")
    work.mkdir(parents=True, exist_ok=True)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               "unknown CPU")
    report = {"quick": args.quick, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "cpu": cpu, "load_start": os.getloadavg()[0], "configs": configs, "results": []}
    for ds, cfg in configs.items():
        for head in HEADS:
            for way in WAYS:
                report["results"].append(spawn({"dataset": ds, "head": head, "way": way, "cfg": cfg}, work))
    report["load_end"] = os.getloadavg()[0]
    write_report(args.out, "frozen_heads_quick" if args.quick else "frozen_heads", report, markdown(report))


if __name__ == "__main__":
    main()
