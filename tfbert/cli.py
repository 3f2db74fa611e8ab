"""The ``tfbert`` command: every sub-command's flags, and turning tfbert's errors into one line.

All parsers are built up front (argparse is cheap), so ``tfbert --help`` lists
every sub-command and ``tfbert X --help`` is complete. The work lives in the
library; each handler imports its module when it runs, so that ``tfbert
--help`` and ``tfbert models`` do not load TensorFlow.
"""

from __future__ import annotations

import argparse
import sys

# -------------------------------------------------------------------- handlers


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
                     "tokenizer": s.tokenizer_type,
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
    from tfbert.runs import DONE
    from tfbert.sweep import run_sweep

    configs = expand_grid(settings_from_args(args))
    frame = run_sweep(configs, verbose=args.verbose, plugins=args.plugin)  # --workers processes load them too
    return 0 if (frame["status"] == DONE).all() else 1


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


def _corpus(args) -> list[str]:
    """The corpus files of tfbert vocab / pretrain: positional, --corpus, or both."""
    from tfbert.errors import ConfigError

    files = list(args.corpus) + list(args.corpus_option)
    if not files:
        raise ConfigError(f"no corpus given; name its files: tfbert {args.command} FILE [FILE ...] (or --corpus FILE)")
    return files


def _vocab(args) -> int:
    from tfbert.vocab import learn_vocab

    report = learn_vocab(_corpus(args), args.output, size=args.size, lowercase=args.lowercase,
                         strip_accents=args.strip_accents, special_tokens=args.special_tokens,
                         max_texts=args.max_texts, min_frequency=args.min_frequency,
                         limit_alphabet=args.limit_alphabet, text_column=args.text_column,
                         langs=args.langs.split(",") if args.langs else None, overwrite=args.overwrite)
    print(report.summary())
    return 0


def _pretrain(args) -> int:
    from tfbert.pretraining import PretrainSettings, run

    fields = {k: v for k, v in vars(args).items() if k in PretrainSettings.__dataclass_fields__}
    run(PretrainSettings(**{**fields, "corpus": _corpus(args)}))
    return 0


def _load_predictor(name: str):
    """An exported model folder, or a HuggingFace classification checkpoint (``hf:...``) used as it is."""
    from tfbert.hf_classifier import is_ready_name

    if is_ready_name(name):
        from tfbert.hf_classifier import ReadyPredictor, load_hf_classifier
        return ReadyPredictor(load_hf_classifier(name))
    from tfbert.predict import load
    return load(name)


def _predict(args) -> int:
    from tfbert.errors import ConfigError, DataError
    from tfbert.predict import check_output_path, format_predictions, predict_file, write_predictions

    if not args.texts and not args.input:
        raise ConfigError('nothing to predict; pass texts (tfbert predict MODEL_DIR "some text") or --input FILE')
    if args.output:
        check_output_path(args.output)  # before any work: a bad path fails now, not after predicting
    _check_pair_flags(args.model_dir, bool(args.text_pair) or args.text_pair_column is not None)
    if args.input and args.output and not args.texts:  # streamed: files of any size
        predictor = _load_predictor(args.model_dir)
        count = predict_file(predictor, args.input, args.output, text_column=args.text_column,
                             batch_size=args.batch_size, text_pair_column=args.text_pair_column)
        print(f"{count} predictions written to {args.output}")
        return 0
    texts, pairs = _predict_inputs(args)
    if not texts:
        raise DataError(f"{args.input} holds no texts; add one text per line (or per row)")
    predictor = _load_predictor(args.model_dir)
    predictions = predictor.predict(texts, batch_size=args.batch_size, text_pairs=pairs)
    if args.output:
        task = getattr(predictor, "task", None)
        path = write_predictions(args.output, texts, predictions, predictor.class_names,
                                 task.name if task else "classification", text_pairs=pairs)
        print(f"{len(predictions)} predictions written to {path}")
    else:
        shown = texts if pairs is None else [f"{a} | {b}" for a, b in zip(texts, pairs)]
        print(format_predictions(shown, predictions))
    return 0


def _check_pair_flags(model_dir: str, given: bool) -> None:
    """Pairs given to a single-text export, or none to a pair export: say so before loading the model."""
    from tfbert.hf_classifier import is_ready_name

    if is_ready_name(model_dir):  # a checkpoint as it is reads either
        return
    from tfbert.export import read_export_info
    from tfbert.predict import check_pair_use

    check_pair_use(bool(read_export_info(model_dir).get("text_pair")), given, model_dir)


def _predict_inputs(args) -> tuple[list, list | None]:
    """(texts, second texts or None) from the command line and --input."""
    from tfbert.errors import ConfigError
    from tfbert.predict import read_text_pairs, read_texts

    texts = list(args.texts or [])
    given = list(args.text_pair or [])
    if given and len(given) != len(texts):
        raise ConfigError(f"{len(texts)} text(s) but {len(given)} --text-pair; give one --text-pair per text")
    paired = bool(given) or args.text_pair_column is not None
    if texts and args.input and paired and not given:
        raise ConfigError("texts on the command line need a --text-pair each when --input has pairs")
    pairs = given if paired else None
    if args.input and args.text_pair_column is not None:
        more, more_pairs = read_text_pairs(args.input, args.text_column, args.text_pair_column)
        texts, pairs = texts + more, pairs + more_pairs
    elif args.input:
        if given:
            raise ConfigError("--input holds single texts here: name its second-text column with --text-pair-column")
        texts += read_texts(args.input, text_column=args.text_column)
    return texts, pairs


def _evaluate(args) -> int:
    from tfbert.evaluate import evaluate
    from tfbert.metrics import format_report

    predictor, output_dir = None, args.output_dir
    if args.model_dir.startswith("hf:"):
        from tfbert.hf_classifier import ready_output_dir

        output_dir = output_dir or ready_output_dir(args.model_dir, args.data)
        predictor = _load_predictor(args.model_dir)
    report = evaluate(args.model_dir, args.data, text_column=args.text_column,
                      label_column=args.label_column, output_dir=output_dir,
                      batch_size=args.batch_size, predictor=predictor, text_pair_column=args.text_pair_column)
    if report.get("task") in ("regression", "multi_label"):
        from tfbert.task_metrics import format_task_report

        print(format_task_report(report))
    else:
        print(format_report(report))
    print(f"\nreport written to {report['output_dir']}")
    return 0


def _export(args) -> int:
    from tfbert.export import export_classifier
    from tfbert.hf_classifier import load_hf_classifier

    model = load_hf_classifier(args.checkpoint, seq_length=args.seq_length, text_pair=args.text_pair or None)
    folder = export_classifier(model, args.out_dir, overwrite=args.overwrite,
                               config={"source": args.checkpoint, "trained_by": "checkpoint, as it is"})
    print(f"exported {args.checkpoint} ({', '.join(model.class_names)}; seq_length {model.seq_length}) to {folder}")
    return 0


def _export_info(args) -> int:
    from tfbert.export import describe_export, read_export_info

    print(describe_export(read_export_info(args.model_dir)))
    return 0


# --------------------------------------------------------------------- parsers


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_models(sub) -> None:
    p = sub.add_parser("models", help="list registry entries", description="List registry entries.")
    p.add_argument("pattern", nargs="?", default="*", help="glob, e.g. '*bert_en*' or 'klue/*'")
    p.add_argument("--backend", choices=["tfhub", "huggingface"])
    p.add_argument("--lang", help="language code, e.g. en or ko (multilingual models match too)")
    p.set_defaults(func=_models)


def _add_tokenize(sub) -> None:
    p = sub.add_parser("tokenize", help="show word pieces and ids of texts",
                       description="Show the word pieces and ids a model's tokenizer gives texts.")
    p.add_argument("--model", required=True)
    p.add_argument("--seq-length", type=int, default=128)
    p.add_argument("text", nargs="+")
    p.set_defaults(func=_tokenize)


def _add_train(sub) -> None:
    from tfbert.config import add_config_arguments

    p = sub.add_parser("train", help="train one run or a sweep (same as scripts/train.py)",
                       description="Train one run, or a sweep when settings take several values.")
    add_config_arguments(p)
    p.add_argument("--verbose", default="auto", help="Keras progress: auto, 0, 1 or 2")
    p.set_defaults(func=_train)


def _add_plot(sub) -> None:
    p = sub.add_parser("plot", help="redraw curves of a run or sweep folder",
                       description="Redraw the curves of a run folder or a sweep folder.")
    p.add_argument("folder")
    p.set_defaults(func=_plot)


def _add_convert(sub) -> None:
    p = sub.add_parser("convert", help="convert a HuggingFace BERT checkpoint to TF Hub format",
                       description="Convert a HuggingFace BERT checkpoint to a TF Hub encoder + preprocess pair.")
    p.add_argument("checkpoint", help="HF checkpoint folder or id, or a huggingface registry name")
    p.add_argument("out_dir", help="writes OUT_DIR/encoder and OUT_DIR/preprocess")
    p.add_argument("--seq-length", type=int, default=128, help="default length of the preprocess model")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_convert)


def _add_corpus(p, what: str) -> None:
    # Both commands read corpora; each takes them either way, so a command line written
    # for one works for the other.
    p.add_argument("corpus", nargs="*", metavar="CORPUS", help=what)
    p.add_argument("--corpus", dest="corpus_option", nargs="+", default=[], metavar="CORPUS",
                   help="the same as an option (both forms add up)")


def _add_vocab(sub) -> None:
    p = sub.add_parser(
        "vocab", help="learn a WordPiece vocabulary from a corpus (for encoders from scratch)",
        description="Learn a WordPiece vocabulary from unlabelled text and write vocab.txt, the HuggingFace "
                    "tokenizer files, tfbert_vocab.json (settings, [UNK] rate, tokens per text) and "
                    "registry.yaml (encoders from scratch on it: scratch:L-4_H-256@OUTPUT).")
    _add_corpus(p, "text files (one text a line, .gz allowed) or data sets (nsmc:PATH, CSV/TSV/JSONL); "
                   "only train splits are read")
    p.add_argument("--output", "-o", required=True, metavar="DIR", help="folder to write")
    p.add_argument("--size", type=_positive_int, default=32000, help="vocabulary size, special tokens included "
                                                                    "(default: 32000)")
    p.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=True,
                   help="lower-case the text (default: yes)")
    p.add_argument("--strip-accents", action=argparse.BooleanOptionalAction, default=None,
                   help="drop accents (default: as --lowercase, like HuggingFace, but kept on a Korean "
                        "corpus: stripping splits Hangul syllables into jamo)")
    p.add_argument("--special-tokens", nargs="+", default=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
                   metavar="TOKEN", help="the first ids, in order (default: [PAD] [UNK] [CLS] [SEP] [MASK])")
    p.add_argument("--max-texts", type=_positive_int, default=None, help="read at most this many texts")
    p.add_argument("--min-frequency", type=_positive_int, default=2,
                   help="merge only pairs seen at least this often (default: 2)")
    p.add_argument("--limit-alphabet", type=_positive_int, default=None, metavar="N",
                   help="keep only the N most frequent characters (default: all; a word with a dropped "
                        "character becomes [UNK])")
    p.add_argument("--text-column", default="text", metavar="NAME", help="text column of tables (default: text)")
    p.add_argument("--langs", default=None, metavar="CODES",
                   help="language codes for registry.yaml, e.g. ko,en (default: guessed from the scripts)")
    p.add_argument("--overwrite", action="store_true", help="replace a vocabulary already in DIR")
    p.set_defaults(func=_vocab)


def _add_pretrain(sub) -> None:
    p = sub.add_parser("pretrain", help="masked-LM pretraining of a new encoder, or continued pretraining",
                       description="Masked-LM pretraining of a new encoder (--vocab + --size) or continued "
                                   "(domain) pretraining of an existing one (--model); writes a TF Hub encoder + "
                                   "preprocess and a registry entry for tfbert train.")
    _add_corpus(p, "text files, one text a line (.gz allowed), or data sets' train split (nsmc:PATH)")
    p.add_argument("--vocab", help="tokenizer folder (vocab.txt + tokenizer_config.json), e.g. from tfbert vocab")
    p.add_argument("--size", help="encoder size for a new encoder, e.g. L-4_H-256 (or L-2_H-128_A-2)")
    p.add_argument("--model", help="continue pretraining: a HuggingFace BERT registry name, hf:FOLDER, or the "
                                   "output folder of an earlier tfbert pretrain")
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument("--name", required=True, help="registry name of the pretrained encoder")
    p.add_argument("--seq-length", type=_positive_int, default=128)
    p.add_argument("--batch-size", type=_positive_int, default=64)
    length = p.add_mutually_exclusive_group(required=True)
    length.add_argument("--steps", type=_positive_int)
    length.add_argument("--epochs", type=float)
    p.add_argument("--learning-rate", type=float, default=5e-4)
    warmup = p.add_mutually_exclusive_group()
    warmup.add_argument("--warmup-ratio", type=float, default=0.1)
    warmup.add_argument("--warmup-steps", type=int)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--mask-rate", type=float, default=0.15, help="share of tokens picked for prediction")
    p.add_argument("--mask-token-rate", type=float, default=0.8, help="share of picks replaced by [MASK]")
    p.add_argument("--random-token-rate", type=float, default=0.1, help="share of picks replaced by a random token")
    p.add_argument("--whole-word-masking", action="store_true", help="pick whole words (all their ## pieces)")
    p.add_argument("--max-texts", type=_positive_int, help="read at most this many texts of the corpus")
    p.add_argument("--text-column", default="text", metavar="NAME", help="text column of tables (default: text)")
    p.add_argument("--dropout", type=float, help="encoder dropout (default 0.1 new; the model's own when continuing)")
    p.add_argument("--save-every-steps", type=_positive_int, default=1000)
    p.add_argument("--keep-checkpoints", type=_positive_int, default=3)
    p.add_argument("--resume", action="store_true", help="continue the run in --output from its last checkpoint")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=["auto", "float32", "bfloat16"], default=None)
    p.add_argument("--log-every-steps", type=_positive_int, default=100)
    p.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2])
    p.set_defaults(func=_pretrain)


def _add_batch_size(p) -> None:
    p.add_argument("--batch-size", type=_positive_int, default=None,
                   help="texts per model call (default: 1024 for models that take text, 64 for token-id models)")


def _add_predict(sub) -> None:
    p = sub.add_parser(
        "predict", help="label texts with an exported model",
        description="Label texts with a model folder written by export_classifier. Texts come from "
                    "the command line or --input; results are printed as a table or written with --output.")
    p.add_argument("model_dir", help="exported model folder, or hf:<classification checkpoint> as it is")
    p.add_argument("texts", nargs="*", help="texts to label (quote each one)")
    p.add_argument("--input", "-i", metavar="FILE",
                   help="file of texts: .txt (one a line) or .csv/.tsv/.jsonl (see --text-column)")
    p.add_argument("--text-column", default="text", metavar="NAME",
                   help="column holding the text in a CSV/TSV/JSONL input (default: text)")
    p.add_argument("--text-pair", action="append", metavar="TEXT",
                   help="second text of a sentence pair, for a pair model: one per text, in order (repeatable)")
    p.add_argument("--text-pair-column", default=None, metavar="NAME",
                   help="column holding the second text of sentence pairs in a CSV/TSV/JSONL input")
    p.add_argument("--output", "-o", metavar="FILE",
                   help="write predictions to FILE.csv or FILE.jsonl instead of printing them")
    _add_batch_size(p)
    p.set_defaults(func=_predict)


def _add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate", help="score an exported model on labelled data",
        description="Predict a labelled file with an exported model, print accuracy, precision, "
                    "recall, F1 and the confusion matrix, and save them in MODEL_DIR/eval_<data name>/.")
    p.add_argument("model_dir", help="exported model folder, or hf:<classification checkpoint> as it is")
    p.add_argument("--data", "-d", required=True, metavar="FILE",
                   help="labelled data: .csv/.tsv/.jsonl, NSMC .txt, a folder, 'demo' or 'nsmc:PATH'")
    p.add_argument("--text-column", default="text", metavar="NAME", help="text column (default: text)")
    p.add_argument("--text-pair-column", default=None, metavar="NAME",
                   help="second-text column of sentence pairs, for a pair model")
    p.add_argument("--label-column", default="label", metavar="NAME",
                   help="label column: class names or ids (default: label)")
    p.add_argument("--output-dir", metavar="DIR",
                   help="where to write the report (default: MODEL_DIR/eval_<data name>)")
    _add_batch_size(p)
    p.set_defaults(func=_evaluate)


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="export a fine-tuned HuggingFace classification checkpoint as it is",
                       description="Export a HuggingFace ...ForSequenceClassification checkpoint, with its "
                                   "id2label names, as a tfbert model folder (what tfbert predict and "
                                   "evaluate read), without training.")
    p.add_argument("checkpoint", help="hf:<checkpoint id or folder>")
    p.add_argument("out_dir", help="folder to write")
    p.add_argument("--seq-length", type=_positive_int, default=None,
                   help="tokens read per text (default: the model's limit, at most 512)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier tfbert export in OUT_DIR")
    p.add_argument("--text-pair", action="store_true",
                   help="the checkpoint reads sentence pairs (e.g. MNLI): the export takes text and text_pair")
    p.set_defaults(func=_export)


def _add_export_info(sub) -> None:
    p = sub.add_parser("export-info", help="show what an exported model folder holds (classes, inputs, metrics)",
                       description="Print the description (tfbert.json) of a folder written by export_classifier.")
    p.add_argument("model_dir", help="folder written by export_classifier / tfbert train --export")
    p.set_defaults(func=_export_info)


SUBCOMMANDS = (_add_models, _add_tokenize, _add_train, _add_plot, _add_convert, _add_vocab, _add_pretrain,
               _add_predict,
               _add_evaluate, _add_export, _add_export_info)


def build_parser() -> argparse.ArgumentParser:
    """The ``tfbert`` parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="tfbert", description="Pick a BERT-family encoder by name, put a head on it, fine-tune, "
                                   "compare runs and ship the model.")
    parser.add_argument("--registry", action="append", default=[],
                        help="extra registry YAML file (repeatable; also $TFBERT_REGISTRY)")
    parser.add_argument("--plugin", action="append", default=[], metavar="FILE_OR_MODULE",
                        help="Python file or module to import first, e.g. one that calls tfbert.register_head "
                             "(repeatable; also $TFBERT_PLUGINS)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def load_plugins(names) -> None:
    """Import each Python file or module named (and those in ``$TFBERT_PLUGINS``), e.g. to register heads."""
    import importlib
    import importlib.util
    import os

    from tfbert.errors import ConfigError

    env = [n for n in os.environ.get("TFBERT_PLUGINS", "").split(os.pathsep) if n]
    for name in [*env, *names]:
        try:
            if name.endswith(".py") or os.sep in name:
                if not os.path.isfile(name):
                    raise ConfigError(f"plugin file not found: {name}; check the path")
                spec = importlib.util.spec_from_file_location(f"tfbert_plugin_{abs(hash(name))}", name)
                spec.loader.exec_module(importlib.util.module_from_spec(spec))
            else:
                importlib.import_module(name)
        except ConfigError:
            raise
        except Exception as err:  # noqa: BLE001 - a user's file: say which one and what it raised
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise ConfigError(f"plugin {name} failed to import: {type(err).__name__}: {first}") from None


def _check_arguments(argv) -> None:
    """Bytes that are not UTF-8 reach Python as lone surrogates; say so here, not in a traceback later."""
    from tfbert.errors import ConfigError

    for position, arg in enumerate(argv, 1):
        try:
            str(arg).encode("utf-8")
        except UnicodeEncodeError as err:
            code = ord(str(arg)[err.start])
            byte = f" (byte 0x{code - 0xDC00:02x})" if 0xDC80 <= code <= 0xDCFF else ""
            shown = str(arg).encode("utf-8", "backslashreplace").decode("utf-8")
            raise ConfigError(f'command-line argument {position} "{shown}" is not valid UTF-8{byte}; '
                              f"pass UTF-8 text (convert it with iconv -t utf-8, or set a UTF-8 locale)") from None


def main(argv=None) -> int:
    from tfbert.errors import TfbertError
    from tfbert.registry import load_registry_file

    try:
        _check_arguments(sys.argv[1:] if argv is None else argv)
    except TfbertError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    if isinstance(getattr(args, "verbose", None), str) and args.verbose.isdigit():
        args.verbose = int(args.verbose)
    try:
        for path in args.registry:
            load_registry_file(path)
        load_plugins(args.plugin)
        return int(args.func(args) or 0)
    except TfbertError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
