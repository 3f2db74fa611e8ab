"""Pretraining speed (issue 11): MLM tokens/s of ``tfbert pretrain`` vs KerasHub's ``BertMaskedLM``.

    python benchmarks/mlm_speed.py                      # L-4_H-256, length 128, batch 32, 3 rounds
    python benchmarks/mlm_speed.py --quick              # tiny: L-2_H-128, length 64, batch 16, 1 round
    python benchmarks/mlm_speed.py --frameworks keras_hub --rounds 1   # one side only

Both sides train the same encoder size (random weights, intermediate 4H, 512 positions) on
the same WordPiece vocab and the same texts, with the same batch size, sequence length,
masking (15% selected; of those 80% [MASK], 10% random, 10% kept; at most
ceil(0.15 * length) predictions a sequence), precision and AdamW set-up, for ``--warmup-steps``
untimed steps and then ``--steps`` timed ones. Each run is its own child process:

    keras_hub  benchmarks/keras_hub_mlm.py in its own virtualenv (.bench-venvs/keras-hub, made by
               benchmarks/keras_hub_env.py on first use): Keras 3, TensorFlow backend, the
               guides' tf.data(raw strings).batch().map(BertMaskedLMPreprocessor) -> fit.
    tfbert     benchmarks/tfbert_mlm.py: ``tfbert.pretrain`` in this environment (length-bucketed batches).

The frameworks alternate (keras_hub, tfbert, keras_hub, tfbert, ... for ``--rounds``) so that
machine noise (other jobs on a shared CPU) hits both; the report gives the best and the median
of each and the ratio tfbert / keras_hub of real (non-padding) tokens per second. Target
(issue 11): >= 1.5x.

Vocab: ``--vocab DIR`` (holding vocab.txt), or by default an 8,000-piece cased WordPiece vocab
(no lowercasing, no accent stripping) trained with the ``tokenizers`` library on the first
``--vocab-lines`` texts of the corpus, cached under ``.cache/mlm_speed_vocab/``.

Results: ``benchmarks/results/mlm_speed.{json,md}`` (``mlm_speed_quick.*`` with --quick).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from keras_hub_env import ensure_keras_hub_venv  # noqa: E402
from machine import machine_info, write_report  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "nsmc" / "unlabeled_reviews.txt.gz"
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TARGET_RATIO = 1.5
FRAMEWORKS = ("keras_hub", "tfbert")

# Every child prints one JSON line (its last line on stdout) with at least these keys.
RESULT_KEYS = ("framework", "versions", "steps", "seconds", "real_tokens", "padded_tokens",
               "tokens_per_s", "padded_tokens_per_s", "examples_per_s", "final_loss", "peak_rss_mb")


class NotAvailable(NotImplementedError):
    """A framework's side cannot run here (yet)."""


# --------------------------------------------------------------------------- machine, vocab


def cpu_flags() -> dict:
    """The CPU flags that decide the matmul kernels (AVX2/AVX-512/bf16/AMX), from /proc/cpuinfo."""
    flags = set()
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")
    return {flag: flag in flags for flag in wanted}


def read_lines(path: Path, limit: int):
    opener = gzip.open if str(path).lower().endswith(".gz") else open
    count = 0
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            line = line.strip().lstrip("\ufeff")
            if line:
                yield line
                count += 1
                if count >= limit:
                    return


def prepare_vocab(corpus: Path, lines: int, vocab_size: int, cache_dir: Path) -> Path:
    """Train (once, then cached) a cased WordPiece vocab on the corpus' first ``lines`` texts."""
    from tokenizers import BertWordPieceTokenizer

    key = hashlib.sha1(f"{corpus.resolve()}|{corpus.stat().st_size}|{lines}|{vocab_size}|cased".encode())
    out = cache_dir / key.hexdigest()[:12]
    if (out / "vocab.txt").is_file():
        print(f"[vocab] cached: {out / 'vocab.txt'}", flush=True)
        return out
    t0 = time.perf_counter()
    tok = BertWordPieceTokenizer(clean_text=True, handle_chinese_chars=True, strip_accents=False,
                                 lowercase=False)
    tok.train_from_iterator(read_lines(corpus, lines), vocab_size=vocab_size, min_frequency=2,
                            special_tokens=SPECIAL_TOKENS, show_progress=False)
    out.mkdir(parents=True, exist_ok=True)
    tok.save_model(str(out))
    (out / "vocab_info.json").write_text(json.dumps(
        {"corpus": str(corpus), "lines": lines, "vocab_size": tok.get_vocab_size(), "lowercase": False,
         "strip_accents": False, "special_tokens": SPECIAL_TOKENS}, indent=1))
    print(f"[vocab] trained {tok.get_vocab_size()} pieces on {lines} lines in "
          f"{time.perf_counter() - t0:.1f} s: {out / 'vocab.txt'}", flush=True)
    return out


# --------------------------------------------------------------------------- children


def parse_result(stdout: str, framework: str) -> dict:
    """The child's result: the last line of its stdout that is a JSON object with RESULT_KEYS."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                result = json.loads(line)
            except ValueError:
                continue
            missing = [k for k in RESULT_KEYS if k not in result]
            if missing:
                raise RuntimeError(f"{framework}: result line lacks {missing}: {line[:300]}")
            return result
    raise RuntimeError(f"{framework}: no JSON result line on stdout; last output:\n{stdout[-2000:]}")


def run_child(framework: str, cmd: list[str], env: dict, timeout: float) -> dict:
    print(f"[{framework}] " + " ".join(str(c) for c in cmd), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run([str(c) for c in cmd], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{framework} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    result = parse_result(proc.stdout, framework)
    result["child_wall_seconds"] = round(time.perf_counter() - t0, 1)
    print(f"[{framework}] {result['tokens_per_s']:.0f} real tokens/s, {result['padded_tokens_per_s']:.0f} "
          f"padded tokens/s, {result['examples_per_s']:.1f} examples/s, loss {result['final_loss']}, "
          f"{result['seconds']:.1f} s timed, peak RSS {result['peak_rss_mb']:.0f} MB", flush=True)
    return result


def common_args(args, vocab_dir: Path) -> list:
    return ["--vocab", vocab_dir, "--corpus", args.corpus, "--texts", args.texts,
            "--layers", args.layers, "--hidden", args.hidden, "--heads", args.heads,
            "--seq-length", args.seq_length, "--batch-size", args.batch_size,
            "--steps", args.steps, "--warmup-steps", args.warmup_steps,
            "--mask-rate", args.mask_rate, "--max-predictions", args.max_predictions,
            "--learning-rate", args.learning_rate, "--precision", args.precision]


def run_keras_hub(args, vocab_dir: Path) -> dict:
    python = ensure_keras_hub_venv(quiet=True)
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_USE_LEGACY_KERAS", None)
    env.pop("PYTHONPATH", None)
    return run_child("keras_hub", [python, HERE / "keras_hub_mlm.py", *common_args(args, vocab_dir)],
                     env, args.timeout)


def run_tfbert(args, vocab_dir: Path) -> dict:
    """tfbert's side: ``tfbert.pretrain`` in a child process (benchmarks/tfbert_mlm.py), same settings."""
    cmd = [sys.executable, HERE / "tfbert_mlm.py", *common_args(args, vocab_dir)]
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    return run_child("tfbert", cmd, env, args.timeout)


RUNNERS = {"keras_hub": run_keras_hub, "tfbert": run_tfbert}


# --------------------------------------------------------------------------- report


def summarize(runs: list[dict]) -> dict | None:
    if not runs:
        return None
    tps = [r["tokens_per_s"] for r in runs]
    return {
        "runs": len(runs),
        "tokens_per_s_best": max(tps),
        "tokens_per_s_median": round(statistics.median(tps), 1),
        "padded_tokens_per_s_median": round(statistics.median(r["padded_tokens_per_s"] for r in runs), 1),
        "examples_per_s_median": round(statistics.median(r["examples_per_s"] for r in runs), 2),
        "real_tokens_per_example": round(runs[0]["real_tokens"] / (runs[0]["steps"] * runs[0].get(
            "batch_size", 1)), 1) if runs[0].get("batch_size") else None,
        "pipeline_only_examples_per_s_median": (round(statistics.median(
            r["pipeline_only_examples_per_s"] for r in runs), 1)
            if all(r.get("pipeline_only_examples_per_s") for r in runs) else None),
        "final_loss_median": round(statistics.median(r["final_loss"] for r in runs), 4),
        "peak_rss_mb_max": max(r["peak_rss_mb"] for r in runs),
        "versions": runs[0]["versions"],
    }


def markdown(report: dict) -> str:
    s = report["settings"]
    m = report["machine"]
    lines = [
        f"# MLM pretraining speed: tfbert vs KerasHub ({report['stem']})",
        "",
        f"Encoder {s['size']} (intermediate {4 * s['hidden']}), vocab {s['vocab_size']} pieces, "
        f"length {s['seq_length']}, batch {s['batch_size']}, masking {s['mask_rate']} "
        f"(80/10/10, at most {s['max_predictions']} a sequence), {s['precision']}, "
        f"{s['warmup_steps']} untimed + {s['steps']} timed steps, {s['rounds']} round(s) alternating, "
        f"{s['texts']} texts of `{Path(s['corpus']).name}`.",
        "",
        f"CPU: {m['cpu_model']}, {m['cpu_cores']} cores; flags "
        + ", ".join(k for k, v in report["cpu_flags"].items() if v) + f"; load at start {m['load_average_at_start']}.",
        "",
        "| framework | runs | real tokens/s best | median | padded tokens/s median | examples/s median "
        "| real tokens/example | final loss | peak RSS MB | input pipeline alone, examples/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for fw in FRAMEWORKS:
        sm = report["summary"].get(fw)
        if sm:
            lines.append(f"| {fw} | {sm['runs']} | {sm['tokens_per_s_best']:.0f} | {sm['tokens_per_s_median']:.0f} "
                         f"| {sm['padded_tokens_per_s_median']:.0f} | {sm['examples_per_s_median']:.1f} "
                         f"| {sm['real_tokens_per_example']} | {sm['final_loss_median']} | {sm['peak_rss_mb_max']:.0f} "
                         f"| {sm['pipeline_only_examples_per_s_median'] or ''} |")
        else:
            lines.append(f"| {fw} | 0 | {report['errors'].get(fw, 'not run')} | | | | | | | |")
    lines.append("")
    r = report["ratio"]
    if r["median"] is not None:
        verdict = "meets" if r["median"] >= TARGET_RATIO else "misses"
        lines.append(f"**tfbert / keras_hub real tokens/s: median {r['median']:.2f}x, best {r['best']:.2f}x** "
                     f"({verdict} the {TARGET_RATIO}x target).")
    else:
        lines.append("tfbert / keras_hub ratio: not available (" + "; ".join(
            f"{k}: {v}" for k, v in report["errors"].items()) + ").")
    lines += [f"\n**Warning:** {w}" for w in report["warnings"]]
    lines += ["", "Versions: " + "; ".join(f"{fw}: {sm['versions']}" for fw, sm in report["summary"].items() if sm),
              "", "Real tokens = non-padding positions of the model input ([CLS] + wordpieces + [SEP]); "
              "KerasHub's BertMaskedLMPreprocessor pads every batch to the full length, so its padded "
              "tokens/s is what its model computes on.", ""]
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vocab", type=Path, default=None, help="folder with vocab.txt; default: train one")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--vocab-lines", type=int, default=100_000)
    ap.add_argument("--vocab-size", type=int, default=8000)
    ap.add_argument("--texts", type=int, default=None, help="texts fed to training (default 20000; quick 2000)")
    ap.add_argument("--size", default=None, help="L-<layers>_H-<hidden>[_A-<heads>] (default L-4_H-256; quick L-2_H-128)")
    ap.add_argument("--seq-length", type=int, default=None, help="default 128; quick 64")
    ap.add_argument("--batch-size", type=int, default=None, help="default 32; quick 16")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 50; quick 20)")
    ap.add_argument("--warmup-steps", type=int, default=None, help="untimed steps (default 5; quick 3)")
    ap.add_argument("--mask-rate", type=float, default=0.15)
    ap.add_argument("--learning-rate", type=float, default=1e-4)
    ap.add_argument("--precision", choices=["float32", "bfloat16"], default="float32")
    ap.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 3; quick 1)")
    ap.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per child run")
    ap.add_argument("--quick", action="store_true", help="tiny settings; results to mlm_speed_quick.*")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)

    quick = args.quick
    defaults = dict(texts=(2000, 20000), size=("L-2_H-128", "L-4_H-256"), seq_length=(64, 128),
                    batch_size=(16, 32), steps=(20, 50), warmup_steps=(3, 5), rounds=(1, 3))
    for name, (q, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, q if quick else full)
    sys.path.insert(0, str(ROOT))
    from tfbert.scratch import parse_size  # the same size names tfbert pretrain takes

    size = parse_size(args.size)
    args.layers, args.hidden, args.heads = size.layers, size.hidden, size.heads
    import math
    args.max_predictions = math.ceil(args.mask_rate * args.seq_length)
    frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    unknown = [f for f in frameworks if f not in RUNNERS]
    if unknown:
        ap.error(f"unknown frameworks {unknown}; choose from {list(RUNNERS)}")

    info = machine_info()
    flags = cpu_flags()
    print(f"CPU: {info['cpu_model']}, {info['cpu_cores']} cores, flags "
          + ",".join(k for k, v in flags.items() if v), flush=True)
    vocab_dir = args.vocab or prepare_vocab(args.corpus, args.vocab_lines, args.vocab_size,
                                            ROOT / ".cache" / "mlm_speed_vocab")
    vocab_size = sum(1 for _ in open(Path(vocab_dir) / "vocab.txt", encoding="utf-8"))
    if "keras_hub" in frameworks:
        ensure_keras_hub_venv()  # before any timing, so the install is not inside a round

    runs = {fw: [] for fw in frameworks}
    errors, warnings = {}, []
    for round_no in range(1, args.rounds + 1):
        for fw in frameworks:
            if fw in errors:
                continue
            print(f"--- round {round_no}/{args.rounds}: {fw}", flush=True)
            try:
                result = RUNNERS[fw](args, Path(vocab_dir))
            except NotAvailable as err:
                print(f"[{fw}] skipped: {err}", flush=True)
                errors[fw] = str(err)
                continue
            except (RuntimeError, subprocess.TimeoutExpired) as err:
                print(f"[{fw}] FAILED: {err}", flush=True)
                errors[fw] = str(err).splitlines()[0][:300]
                continue
            result["round"] = round_no
            # Both sides must have run the settings asked for (keys a side does not report are skipped).
            for key in ("steps", "batch_size", "seq_length", "max_predictions", "precision", "texts"):
                if key in result and result[key] != getattr(args, key):
                    warnings.append(f"{fw} round {round_no}: {key} {result[key]!r}, asked {getattr(args, key)!r}")
                    print(f"[{fw}] WARNING: {warnings[-1]}", flush=True)
            runs[fw].append(result)

    summary = {fw: summarize(rs) for fw, rs in runs.items()}
    kh, tb = summary.get("keras_hub"), summary.get("tfbert")
    ratio = {"median": None, "best": None, "target": TARGET_RATIO}
    if kh and tb:
        ratio["median"] = round(tb["tokens_per_s_median"] / kh["tokens_per_s_median"], 3)
        ratio["best"] = round(tb["tokens_per_s_best"] / kh["tokens_per_s_best"], 3)
        ratio["meets_target"] = ratio["median"] >= TARGET_RATIO
    stem = "mlm_speed_quick" if quick else "mlm_speed"
    report = {
        "stem": stem,
        "settings": {"size": size.name, "layers": size.layers, "hidden": size.hidden, "heads": size.heads,
                     "vocab": str(vocab_dir), "vocab_size": vocab_size, "corpus": str(args.corpus),
                     "texts": args.texts, "seq_length": args.seq_length, "batch_size": args.batch_size,
                     "mask_rate": args.mask_rate, "mask_token_rate": 0.8, "random_token_rate": 0.1,
                     "max_predictions": args.max_predictions, "learning_rate": args.learning_rate,
                     "precision": args.precision, "steps": args.steps, "warmup_steps": args.warmup_steps,
                     "rounds": args.rounds, "order": frameworks},
        "machine": info,
        "cpu_flags": flags,
        "summary": summary,
        "ratio": ratio,
        "errors": errors,
        "warnings": warnings,
        "runs": runs,
    }
    write_report(args.out, stem, report, markdown(report))
    return report


if __name__ == "__main__":
    main()
