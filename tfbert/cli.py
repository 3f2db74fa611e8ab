"""The ``tfbert`` command: models, tokenize, train, plot, predict, evaluate, convert.

Each sub-command's work lives in the library; this module only parses flags
and turns tfbert's errors into one-line messages (exit code 2).
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _models(args) -> int:
    import pandas as pd

    from tfbert.registry import get_spec, list_models

    names = list_models(args.pattern or "*", backend=args.backend, lang=args.lang)
    if not names:
        print(f"no model matches '{args.pattern}'")
        return 1
    rows = []
    for name in names:
        s = get_spec(name)
        rows.append({"name": name, "backend": s.backend, "langs": ",".join(s.langs),
                     "cased": {True: "cased", False: "uncased", None: "?"}[s.cased],
                     "L": s.layers or "", "H": s.hidden or "", "A": s.heads or "",
                     "max_len": s.max_seq_length, "description": s.description})
    with pd.option_context("display.max_colwidth", 70, "display.width", 250):
        print(pd.DataFrame(rows).to_string(index=False))
    print(f"\n{len(rows)} model(s)")
    return 0


def _tokenize(args) -> int:
    from tfbert.models import create_preprocessor

    pre = create_preprocessor(args.model, seq_length=args.seq_length)
    for text in args.text:
        pieces, ids = pre.tokenize(text)
        print(f"text:   {text}")
        print(f"pieces: {' '.join(pieces)}")
        print(f"ids:    {' '.join(map(str, ids))}")
        print(f"({len(ids)} tokens with special tokens; backend {pre.spec.backend})\n")
    return 0


def _train(args) -> int:
    from tfbert.config import expand_grid, settings_from_args
    from tfbert.sweep import run_sweep

    configs = expand_grid(settings_from_args(args))
    frame = run_sweep(configs, verbose=args.verbose)
    return 0 if (frame["status"] == "done").all() else 1


def _plot(args) -> int:
    from tfbert.plotting import plot_folder

    for path in plot_folder(args.folder):
        print(f"wrote {path}")
    return 0


def _convert(args) -> int:
    from tfbert.convert import conversion_summary, convert_checkpoint

    info = convert_checkpoint(args.checkpoint, args.out_dir, seq_length=args.seq_length,
                              overwrite=args.overwrite)
    print(conversion_summary(info))
    return 0


# These commands' modules import TensorFlow; they are only imported when used,
# so that `tfbert models` and `tfbert --help` stay fast.
_HEAVY = {"predict": "label texts with an exported model",
          "evaluate": "score an exported model on labelled data",
          "export-info": "show what an exported model folder holds"}


def _command(argv) -> str | None:
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token == "--registry":
            skip = True
        elif not token.startswith("-"):
            return token
    return None


def build_parser(argv=None) -> argparse.ArgumentParser:
    from tfbert.config import add_config_arguments

    parser = argparse.ArgumentParser(prog="tfbert", description=__doc__.splitlines()[0])
    parser.add_argument("--registry", action="append", default=[],
                        help="extra registry YAML file (repeatable; also $TFBERT_REGISTRY)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list registry entries")
    p.add_argument("pattern", nargs="?", default="*", help="glob, e.g. '*bert_en*' or 'klue/*'")
    p.add_argument("--backend", choices=["tfhub", "huggingface"])
    p.add_argument("--lang", help="language code, e.g. en or ko (multilingual models match too)")
    p.set_defaults(func=_models)

    p = sub.add_parser("tokenize", help="show word pieces and ids of texts")
    p.add_argument("--model", required=True)
    p.add_argument("--seq-length", type=int, default=128)
    p.add_argument("text", nargs="+")
    p.set_defaults(func=_tokenize)

    p = sub.add_parser("train", help="train one run or a sweep (same as scripts/train.py)")
    add_config_arguments(p)
    p.add_argument("--verbose", default="auto", help="Keras progress: auto, 0, 1 or 2")
    p.set_defaults(func=_train)

    p = sub.add_parser("plot", help="redraw curves of a run or sweep folder")
    p.add_argument("folder")
    p.set_defaults(func=_plot)

    p = sub.add_parser("convert", help="convert a HuggingFace BERT checkpoint to TF Hub format")
    p.add_argument("checkpoint", help="HF checkpoint folder or id, or a huggingface registry name")
    p.add_argument("out_dir", help="writes OUT_DIR/encoder and OUT_DIR/preprocess")
    p.add_argument("--seq-length", type=int, default=128, help="default length of the preprocess model")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_convert)

    if _command(sys.argv[1:] if argv is None else argv) in _HEAVY:
        from tfbert.evaluate import add_evaluate_parser
        from tfbert.export import add_export_info_parser
        from tfbert.predict import add_predict_parser

        add_predict_parser(sub)
        add_evaluate_parser(sub)
        add_export_info_parser(sub)
    else:
        for name, help_text in _HEAVY.items():
            sub.add_parser(name, help=help_text)
    return parser


def main(argv=None) -> int:
    from tfbert.errors import TfbertError
    from tfbert.registry import load_registry_file

    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if isinstance(getattr(args, "verbose", None), str) and args.verbose.isdigit():
        args.verbose = int(args.verbose)
    try:
        for path in args.registry:
            load_registry_file(path)
        return int(args.func(args) or 0)
    except TfbertError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
