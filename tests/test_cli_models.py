"""tfbert models / tokenize."""

from tfbert.cli import main


def test_models_table_with_pattern(capsys):
    assert main(["models", "small_bert/*"]) == 0
    out = capsys.readouterr().out
    assert "24 model(s)" in out
    assert "small_bert/bert_en_uncased_L-4_H-512_A-8" in out and "tfhub" in out


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
