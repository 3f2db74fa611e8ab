"""Long IMDB reviews: truncate vs head_tail vs windows (``--long-text``), MiniLM-L6, dense head.

    nohup python benchmarks/long_text.py > long_text.log 2>&1 &   # full IMDB at 512 tokens: about a day on 2 cores
    python benchmarks/long_text.py --quick                        # 320/160 reviews at 64 tokens: ~9 min on 2 cores
    python benchmarks/long_text.py --throughput 1000              # prediction speed only, 512 tokens, untrained

Full mode, estimated (not yet run): 6 runs (3 strategies x 2 learning rates) of
2 epochs over 22,414 reviews (windows: 1.24 windows per review at 512), at the
3-7 training reviews/s MiniLM-L6 makes at 512 on 2 cores (benchmarks/speed.py:
7.0 in bfloat16 on an AVX512-BF16 EPYC), is 12-30 hours, plus about 2 hours
of scoring; ``--learning-rates 5e-5`` halves it (no choice of rate left then:
the epoch is still chosen on validation). Rerun the same command after a
kill: it continues where it stopped.

About 15% of IMDB reviews are longer than 512 MiniLM tokens. For each strategy
(truncate at the window; head_tail, Sun et al.'s 128 + 382 at 512, scaled to
the window; windows every half window, logits mean-pooled, trained on every
window with the review's label):

1. select, on the official *train* split only: ``tfbert`` runs (a sweep) over
   the learning rates of ``--learning-rates``, each ``epochs`` epochs on 90% of
   train with the epoch of lowest validation loss restored (``restore_best``);
   the learning rate whose exported model labels the held-out 10% best
   (document-level accuracy, windows pooled) is chosen. The test split is not
   read in this phase.
2. test: each chosen model's export labels the official *test* split once
   (the SavedModel cuts and pools in-graph, as users run it): accuracy, time,
   texts/s -- windows and truncate side by side.

The full mode is resumable: runs checkpoint every ``save_every_steps`` batches
(``tfbert train --resume``); finished runs and finished test passes are skipped
when the script is started again with the same ``--work`` folder.
Writes ``benchmarks/results/long_text.{json,md}`` (``long_text_quick.*`` with --quick).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))  # the tfbert of this tree, also where another is installed
from machine import machine_info, write_report  # noqa: E402

ARCHIVE = HERE.parent.parent / "shared" / "data" / "imdb" / "aclImdb_v1_labeled.tar.gz"
MODEL = "minilm-l6-h384-uncased"
SEED = 42
STRATEGIES = ("truncate", "head_tail", "windows")
FULL = dict(seq_length=512, train=None, test=None, epochs=2, batch_size=32, learning_rates=(3e-5, 5e-5),
            save_every_steps=100)
QUICK = dict(seq_length=64, train=320, test=160, epochs=1, batch_size=16, learning_rates=(1e-4,),
             save_every_steps=None)


def write_train_csv(work: Path, n_train: int | None) -> Path:
    """The cleaned official train split (or a random sample of it) as ``text,label`` with label names."""
    from tfbert import data

    path = work / f"imdb_train_{n_train or 'all'}.csv"
    if not path.exists():
        frame, _ = data.clean(data.load_imdb(ARCHIVE, "train"))
        if n_train:
            frame = frame.sample(n=n_train, random_state=SEED)
        names = frame.attrs.get(data.CLASS_NAMES_ATTR) or ["neg", "pos"]
        frame.assign(label=[names[i] for i in frame["label"]])[["text", "label"]].to_csv(path, index=False)
    return path


def test_frame(n_test: int | None):
    from tfbert import data

    frame, _ = data.clean(data.load_imdb(ARCHIVE, "test"))
    names = frame.attrs.get(data.CLASS_NAMES_ATTR) or ["neg", "pos"]
    frame = frame.sample(n=n_test, random_state=SEED) if n_test else frame
    return frame["text"].tolist(), [names[i] for i in frame["label"]]


def configs(cfg: dict, train_csv: Path, work: Path):
    from tfbert.config import RunConfig

    return [RunConfig(model=MODEL, head="dense", train=str(train_csv), seq_length=cfg["seq_length"],
                      long_text=strategy, epochs=cfg["epochs"], batch_size=cfg["batch_size"], learning_rate=lr,
                      seed=SEED, valid_fraction=0.1, restore_best=True, save_every_steps=cfg["save_every_steps"],
                      tensorboard=False, output_dir=str(work / "runs"))
            for strategy in cfg["strategies"] for lr in cfg["learning_rates"]]


def label_with_export(model_dir: str, texts: list[str]) -> tuple[list[str], float]:
    """(labels, seconds) of the exported model over ``texts`` (loading not timed; one warm-up call)."""
    from tfbert.predict import load

    predictor = load(model_dir)
    predictor.predict_outputs(texts[:8], progress=False)
    start = time.perf_counter()
    outputs, _ = predictor.predict_outputs(texts, progress=False)
    return [str(v.decode() if isinstance(v, bytes) else v) for v in outputs["label"]], time.perf_counter() - start


def cached(path: Path, compute):
    """``compute()``'s JSON result, kept in ``path`` so that a restarted benchmark skips it."""
    if path.exists():
        return json.loads(path.read_text())
    value = compute()
    path.write_text(json.dumps(value))
    return value


def select(frame, work: Path) -> dict:
    """Per strategy, the run whose export labels the validation split best (train split only)."""
    from tfbert.experiment import load_splits
    from tfbert.runs import RunFolder

    chosen = {}
    for _, row in frame.iterrows():
        folder = RunFolder(Path(work / "runs" / row["run"]))
        config = folder.read_config()
        valid = load_splits(_run_config(config)).valid

        def score():
            labels, seconds = label_with_export(row["model_dir"], valid["text"].tolist())
            right = sum(a == b for a, b in zip(labels, valid["label"].astype(str)))
            return {"val_accuracy": right / len(labels), "valid_texts": len(labels), "val_predict_s": seconds}

        result = {**cached(folder.path / "doc_validation.json", score), "run": row["run"],
                  "model_dir": row["model_dir"], "learning_rate": config["learning_rate"],
                  "train_time_s": row.get("train_time_s"), "restored_epoch": _int(row.get("restored_epoch")),
                  "strategy": config["long_text"]}
        best = chosen.get(result["strategy"])
        if best is None or result["val_accuracy"] > best["val_accuracy"]:
            chosen[result["strategy"]] = result
    return chosen


def _run_config(settings: dict):
    from tfbert.config import FIELDS, RunConfig

    return RunConfig(**{k: v for k, v in settings.items() if k in FIELDS})


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def test(chosen: dict, cfg: dict, work: Path) -> list[dict]:
    """Each chosen export over the test split: accuracy, seconds, texts/s, windows per text."""
    texts, labels = test_frame(cfg["test"])
    rows = []
    for strategy in cfg["strategies"]:
        pick = chosen[strategy]

        def score():
            predicted, seconds = label_with_export(pick["model_dir"], texts)
            return {"test_accuracy": sum(a == b for a, b in zip(predicted, labels)) / len(texts),
                    "test_texts": len(texts), "predict_s": seconds, "texts_per_s": len(texts) / seconds}

        rows.append({**pick, **cached(Path(pick["model_dir"]).parent / f"test_{cfg['test'] or 'all'}.json", score)})
    return rows


def markdown(report: dict) -> str:
    cfg, m = report["settings"], report["machine"]
    lines = [f"# Long texts on IMDB: truncate vs head_tail vs windows{' (quick)' if report['quick'] else ''}", "",
             f"`python benchmarks/long_text.py{' --quick' if report['quick'] else ''}` on {m['date']}: "
             f"{m['cpu_model']}, {m['cpu_cores']} cores, load average at start {m['load_average_at_start'][0]:.1f} "
             f"(shared cores: times are noisy). Model `{MODEL}`, head dense, window {cfg['seq_length']} tokens, "
             f"batch {cfg['batch_size']}, {cfg['epochs']} epoch(s) with the lowest-val_loss epoch restored, "
             f"learning rate chosen from {', '.join(f'{x:g}' for x in cfg['learning_rates'])} on a 10% "
             f"validation split of train (document accuracy of the export); precision "
             f"{report['precision']}. Train: {report['train_texts']} reviews of the official train split "
             f"(less the validation 10%); test: {report['test_texts']} reviews of the official test split.", "",
             f"Texts over the window: {report['over_window']}.", "",
             "| strategy | lr | epoch | val acc % | test acc % | train s | predict s (test) | texts/s | "
             "x truncate |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    base = next((r["texts_per_s"] for r in report["results"] if r["strategy"] == "truncate"), float("nan"))
    for r in report["results"]:
        lines.append(f"| {r['strategy']} | {r['learning_rate']:g} | {r['restored_epoch'] or ''} | "
                     f"{100 * r['val_accuracy']:.2f} | {100 * r['test_accuracy']:.2f} | {r['train_time_s'] or 0:.0f} | "
                     f"{r['predict_s']:.1f} | {r['texts_per_s']:.1f} | {r['texts_per_s'] / base:.2f} |")
    lines += ["", "Prediction: the exported SavedModel (`tfbert.predict.load`), raw strings in, the strategy in-graph "
              "(windows: every window run in length-sorted batches, logits mean-pooled per review); loading and "
              "one warm-up call not timed."]
    return "\n".join(lines) + "\n"


def over_window(train_csv: Path, seq_length: int) -> str:
    """How many training reviews each strategy affects (``tfbert.long_text.summary``)."""
    import pandas as pd

    import tfbert
    from tfbert.long_text import LongText, describe_summary, summary

    texts = pd.read_csv(train_csv)["text"].astype(str).tolist()
    pre = tfbert.create_preprocessor(MODEL, seq_length)
    lengths = pre.token_ids(texts, max_length=2**30).row_lengths().numpy()
    return describe_summary(summary(lengths, LongText("windows").resolve(seq_length)))


def throughput(n_test: int, out: str) -> None:
    """Prediction speed alone, at 512 tokens: an untrained MiniLM exported per strategy (speed does not
    depend on the weights) labels ``n_test`` random test reviews. Writes ``long_text_throughput.*``."""
    import tempfile

    import tfbert
    from tfbert.export import export_classifier

    machine = machine_info()  # its load average: before the timed work
    texts, _ = test_frame(n_test)
    rows = []
    with tempfile.TemporaryDirectory(prefix="long_text_speed_") as tmp:
        for strategy in STRATEGIES:
            model = tfbert.create_classifier(MODEL, seq_length=512, class_names=["neg", "pos"], long_text=strategy)
            _, seconds = label_with_export(str(export_classifier(model, Path(tmp) / strategy)), texts)
            rows.append({"strategy": strategy, "texts": len(texts), "predict_s": seconds,
                         "texts_per_s": len(texts) / seconds, "precision": model.precision})
    report = {"machine": machine, "results": rows}
    m = report["machine"]
    lines = ["# Long texts: prediction throughput at 512 tokens", "",
             f"`python benchmarks/long_text.py --throughput {n_test}` on {m['date']}: {m['cpu_model']}, "
             f"{m['cpu_cores']} cores, load average at start {m['load_average_at_start'][0]:.1f}; `{MODEL}` "
             f"exported per strategy (head untrained: speed only), {rows[0]['precision']}, {len(texts)} random "
             f"reviews of the IMDB test split through `tfbert.predict.load(...).predict_outputs` (strings in, "
             f"strategy in-graph; loading and a warm-up call not timed).", "",
             "| strategy | texts/s | x truncate | s |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {r['strategy']} | {r['texts_per_s']:.2f} | {r['texts_per_s'] / rows[0]['texts_per_s']:.2f} | "
              f"{r['predict_s']:.0f} |" for r in rows]
    write_report(out, "long_text_throughput", report, "\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--work", help="folder for the runs and cached results (default: .cache/long_text"
                                       "[_quick]); keep it to resume")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--learning-rates", type=float, nargs="+", help="the grid each strategy's learning rate "
                                                                          "is chosen from (default: the mode's)")
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    parser.add_argument("--throughput", type=int, metavar="N", help="only time prediction at 512 tokens on N "
                                                                      "test reviews (untrained exports)")
    args = parser.parse_args()
    if args.throughput:
        return throughput(args.throughput, args.out)
    cfg = {**(QUICK if args.quick else FULL), "strategies": list(args.strategies)}
    if args.learning_rates:
        cfg["learning_rates"] = tuple(args.learning_rates)
    work = Path(args.work or HERE.parent / ".cache" / ("long_text_quick" if args.quick else "long_text"))
    work.mkdir(parents=True, exist_ok=True)

    from tfbert.sweep import run_sweep

    start, machine = time.perf_counter(), machine_info()
    train_csv = write_train_csv(work, cfg["train"])
    frame = run_sweep(configs(cfg, train_csv, work), work / "runs", resume=True, verbose=2)
    if "error" in frame and frame["error"].notna().any():
        raise SystemExit(f"some runs failed: see {work / 'runs'}")
    results = test(select(frame, work), cfg, work)
    settings = json.loads((Path(results[0]["model_dir"]) / "tfbert.json").read_text())
    report = {"quick": args.quick, "machine": machine, "settings": cfg, "results": results,
              "precision": settings.get("precision"), "train_texts": int(frame["train_examples"].iloc[0]),
              "test_texts": results[0]["test_texts"], "over_window": over_window(train_csv, cfg["seq_length"]),
              "wall_s": round(time.perf_counter() - start, 1)}
    write_report(args.out, "long_text_quick" if args.quick else "long_text", report, markdown(report))


if __name__ == "__main__":
    main()
