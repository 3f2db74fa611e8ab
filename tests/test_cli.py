"""The tfbert command: every sub-command listed and documented, models / tokenize / export-info."""

import subprocess
import sys

import pytest

from tfbert.cli import SUBCOMMANDS, build_parser, main

COMMANDS = ["models", "tokenize", "train", "plot", "convert", "vocab", "pretrain", "predict", "evaluate", "export", "export-info"]


def test_help_lists_every_subcommand_with_a_description(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    for command in COMMANDS:
        line = next((ln for ln in lines if ln.split()[:1] == [command]), None)
        assert line is not None, f"{command} missing from tfbert --help"
        assert len(line.split()) > 2, f"{command} has no description"
    assert len(SUBCOMMANDS) == len(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_help_is_complete(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: tfbert {command}")
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    for action in sub._actions:  # every flag of the sub-command is documented
        for flag in action.option_strings:
            assert flag in out


def test_help_and_models_do_not_load_tensorflow():
    code = ("import sys, contextlib, io\n"
            "from tfbert.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
            "    main(['models', 'small_bert/*'])\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_models_table_with_pattern(capsys):
    assert main(["models", "small_bert/*"]) == 0
    out = capsys.readouterr().out
    assert "24 model(s)" in out
    assert "small_bert/bert_en_uncased_L-4_H-512_A-8" in out and "tfhub" in out


def test_models_table_shows_tokenizer_types(capsys):
    assert main(["models", "*roberta*"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:5] == ["name", "backend", "langs", "cased", "tokenizer"]
    assert " bpe " in out


def test_models_language_filter(capsys):
    assert main(["models", "--lang", "ko"]) == 0
    out = capsys.readouterr().out
    assert "klue/bert-base" in out and "bert-base-uncased " not in out


def test_tokenize_both_backends(tiny_models, capsys):
    for name in ("tiny-tfhub", "tiny-hf"):
        assert main(["tokenize", "--model", name, "The movie was GREAT!"]) == 0
        out = capsys.readouterr().out
        assert "pieces: [CLS] the movie was great ! [SEP]" in out


def test_registry_option_adds_entries(tiny_hf_dir, tmp_path, capsys):
    path = tmp_path / "extra.yaml"
    path.write_text(f"models:\n  - name: extra-tiny\n    backend: huggingface\n    encoder: {tiny_hf_dir}\n"
                    f"    langs: [en]\n    cased: false\n    description: extra\n")
    assert main(["--registry", str(path), "models", "extra-*"]) == 0
    assert "extra-tiny" in capsys.readouterr().out
