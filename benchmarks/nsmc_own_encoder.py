"""Korean without downloads, end to end on NSMC (issue 11): vocabulary -> pretraining -> fine-tuning.

    nohup python benchmarks/nsmc_own_encoder.py > nsmc_own_encoder.log 2>&1 &    # resumable: rerun it

Ways, each scored once on NSMC's official test split (50,000 reviews) after choosing the
epoch on a validation split of train (10%, stratified):

    scratch      a random encoder of --size on the learned vocabulary, fine-tuned (no pretraining)
    pretrained   the same encoder after masked-LM pretraining on the unlabelled reviews
    minilm       MiniLM-L6 (English, uncased: Hangul becomes jamo), today's best offline entry

Stages write under --work (default runs/nsmc_own_encoder) and are skipped or resumed when
rerun with the same settings (a finished stage made with others is refused: use another
--work): the vocabulary (tfbert vocab), pretraining (tfbert pretrain, checkpoints every
--save-every-steps, --resume), fine-tuning runs (tfbert train's own checkpoints, every
--finetune-save-every-steps batches; not part of a run's settings, so it may change on a resume). Each
stage's wall time is recorded (a stage resumed in a later session adds the training time
its checkpoint carried: steps redone after a kill count once, the earlier start-up not at all);
the pipeline time of the target is vocab + pretrain + fine-tune of "pretrained".
Results: benchmarks/results/<--stem>.{json,md} (default nsmc_own_encoder).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from machine import machine_info, write_report  # noqa: E402

NSMC = ROOT.parent / "shared" / "data" / "nsmc"
WAYS = ("pretrained", "scratch", "minilm")


def stage_settings(args, name: str) -> dict:
    """The settings a stage's result depends on (its own and those of the stages it builds on)."""
    vocab = {"vocab_size": args.vocab_size}
    encoder = {**vocab, "size": args.size, "seq_length": args.seq_length}
    pretrain = {**encoder, "name": args.name, "max_texts": args.max_texts,
                **{k: getattr(args, k) for k in ("pretrain_steps", "pretrain_batch_size", "pretrain_learning_rate",
                                                  "pretrain_warmup_ratio")}}
    if name in ("vocab", "pretrain"):
        return vocab if name == "vocab" else pretrain
    way = name.removeprefix("finetune_")
    rate = "minilm_learning_rate" if way == "minilm" else "learning_rate"
    fine_tune = {"epochs": args.epochs, "batch_size": args.batch_size, "seq_length": args.seq_length,
                 "max_train_examples": args.max_train_examples, rate: getattr(args, rate)}
    return {"minilm": fine_tune, "scratch": {**encoder, **fine_tune}, "pretrained": {**pretrain, **fine_tune}}[way]


def check_settings(stages: dict, name: str, settings: dict, work: Path) -> None:
    """A finished stage is reused only with the settings it was made with (stages from before they were
    recorded carry none and are reused as they are)."""
    made = stages.get(name, {}).get("settings")
    if made is None or made == settings:
        return
    differ = ", ".join(f"--{k.replace('_', '-')} {made.get(k)!r} -> {settings.get(k)!r}"
                       for k in sorted(set(made) | set(settings)) if made.get(k) != settings.get(k))
    raise SystemExit(f"error: {work} holds a finished '{name}' stage made with other settings ({differ}); "
                     f"give another --work to run with these, or rerun with the old ones")


def _timed(stages: dict, name: str, fn, settings: dict):
    """Runs ``fn`` unless its stage finished earlier (recorded in stages); keeps the wall time."""
    if stages.get(name, {}).get("done"):
        print(f"[{name}] done earlier ({stages[name]['seconds']:.0f} s)", flush=True)
        return stages[name].get("result")
    start = time.time()
    result = fn()
    # A stage resumed in a later session adds the training time its checkpoint carried over
    # (work lost after the last checkpoint is redone, so it is not counted twice).
    seconds = time.time() - start + (result or {}).get("earlier_sessions_s", 0.0)
    stages[name] = {"done": True, "seconds": round(seconds, 1), "settings": settings, "result": result}
    return result


def learn(args, work: Path):
    import tfbert

    report = tfbert.learn_vocab([str(NSMC / "unlabeled_reviews.txt.gz")], work / "vocab", size=args.vocab_size,
                                lowercase=True, strip_accents=False, overwrite=True)
    print(report.summary(), flush=True)
    return {"vocab_size": report.vocab_size, "texts": report.texts_read, "stats": report.stats}


def pretrain(args, work: Path):
    import tfbert

    out = work / "pretrain"
    resume = (out / "checkpoints").is_dir() and any((out / "checkpoints").glob("ckpt-*"))
    summary = tfbert.pretrain([str(NSMC / "unlabeled_reviews.txt.gz")], out, args.name, vocab=str(work / "vocab"),
                              size=args.size, seq_length=args.seq_length, batch_size=args.pretrain_batch_size,
                              steps=args.pretrain_steps, learning_rate=args.pretrain_learning_rate,
                              warmup_ratio=args.pretrain_warmup_ratio, save_every_steps=args.save_every_steps,
                              log_every_steps=100, resume=resume, max_texts=args.max_texts)
    keep = ("steps", "corpus_texts", "corpus_tokens", "tokens_seen", "train_seconds", "first_loss", "final_loss",
            "final_mlm_accuracy", "peak_rss_mb")
    # train_seconds counts every session's checkpointed training; what this one trained is its own
    earlier = max(0.0, summary["train_seconds"] - summary["this_session_seconds"])
    return {**{k: summary[k] for k in keep}, "earlier_sessions_s": round(earlier, 1)}


def fine_tune(args, work: Path, way: str):
    import tfbert
    from tfbert.config import RunConfig
    from tfbert.experiment import run_experiment

    model = {"pretrained": args.name, "scratch": f"scratch:{args.size}@{work / 'vocab'}",
             "minilm": "minilm-l6-h384-uncased"}[way]
    if way == "pretrained":
        tfbert.load_registry_file(work / "pretrain" / "registry.yaml")
    lr = args.minilm_learning_rate if way == "minilm" else args.learning_rate
    config = RunConfig(model=model, head="dense", data=f"nsmc:{NSMC}", epochs=args.epochs,
                       batch_size=args.batch_size, seq_length=args.seq_length, learning_rate=lr,
                       max_train_examples=args.max_train_examples, restore_best=True,
                       save_every_steps=args.finetune_save_every_steps)
    row = run_experiment(config, work / "finetune" / way, verbose=2)
    keep = ("test_accuracy", "best_val_accuracy", "best_epoch", "train_time_s", "examples_per_s", "seq_length",
            "learning_rate")
    return {**{k: row.get(k) for k in keep}, "earlier_sessions_s": row.get("train_time_earlier_s", 0.0)}


def markdown(report: dict) -> str:
    m, s, stages = report["machine"], report["settings"], report["stages"]
    lines = [f"# NSMC with tfbert's own Korean encoder ({report['status']})", "",
             f"CPU: {m['cpu_model']}, {m['cpu_cores']} cores. Encoder {s['size']}, vocabulary {s['vocab_size']}, "
             f"pretraining {s['pretrain_steps']} steps of {s['pretrain_batch_size']} at length <= {s['seq_length']}; "
             f"fine-tuning: dense head, {s['epochs']} epochs, batch {s['batch_size']}, epoch chosen on validation.",
             "", "| stage | wall time | result |", "|---|---:|---|"]
    for name, stage in stages.items():
        result = stage.get("result") or {}
        shown = ", ".join(f"{k} {v}" for k, v in result.items() if k != "stats")
        lines.append(f"| {name} | {stage['seconds'] / 60:.1f} min | {shown} |")
    pipeline = sum(stages.get(k, {}).get("seconds", 0) for k in ("vocab", "pretrain", "finetune_pretrained"))
    lines += ["", f"Pipeline (vocab + pretrain + fine-tune of 'pretrained'): {pipeline / 3600:.2f} h.", ""]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "nsmc_own_encoder")
    ap.add_argument("--name", default="nsmc-ko-small")
    ap.add_argument("--size", default="L-4_H-256")
    ap.add_argument("--vocab-size", type=int, default=24000)
    ap.add_argument("--seq-length", type=int, default=128)
    ap.add_argument("--max-texts", type=int, default=None, help="unlabelled texts for pretraining (default all)")
    ap.add_argument("--pretrain-steps", type=int, default=9000)
    ap.add_argument("--pretrain-batch-size", type=int, default=128)
    ap.add_argument("--pretrain-learning-rate", type=float, default=5e-4)
    ap.add_argument("--pretrain-warmup-ratio", type=float, default=0.06)
    ap.add_argument("--save-every-steps", type=int, default=500, help="pretraining checkpoints")
    # MiniLM fine-tunes at ~20 examples/s here: 250 batches is ~13 minutes of work a kill can lose
    ap.add_argument("--finetune-save-every-steps", type=int, default=250, help="fine-tuning checkpoints")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--learning-rate", type=float, default=1e-4)
    ap.add_argument("--minilm-learning-rate", type=float, default=5e-5)
    ap.add_argument("--max-train-examples", type=int, default=None)
    ap.add_argument("--ways", default="pretrained,scratch,minilm", help=f"comma-separated, of {', '.join(WAYS)}")
    ap.add_argument("--stem", default="nsmc_own_encoder")
    return ap


def main(argv=None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    ways = [w.strip() for w in args.ways.split(",") if w.strip()]
    if not ways or set(ways) - set(WAYS):
        parser.error(f"--ways {args.ways!r}: give a comma-separated list of {', '.join(WAYS)}")

    args.work.mkdir(parents=True, exist_ok=True)
    state_file = args.work / "stages.json"
    stages = json.loads(state_file.read_text()) if state_file.is_file() else {}
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    report = {"machine": machine_info(), "settings": settings, "stages": stages, "status": "running"}

    def save(status):
        report["status"] = status
        state_file.write_text(json.dumps(stages, indent=1))
        write_report(HERE / "results", args.stem, report, markdown(report))

    steps = [("vocab", lambda: learn(args, args.work))]
    if "pretrained" in ways:
        steps.append(("pretrain", lambda: pretrain(args, args.work)))
    steps += [(f"finetune_{w}", lambda w=w: fine_tune(args, args.work, w)) for w in ways]
    for name, _ in steps:  # before any work: a mismatch found hours in would waste them
        check_settings(stages, name, stage_settings(args, name), args.work)
    for name, fn in steps:
        _timed(stages, name, fn, stage_settings(args, name))
        save("running")
    save("finished")
    print(f"results: {HERE / 'results' / args.stem}.md", flush=True)


if __name__ == "__main__":
    main()
