"""Every checkpoint format a user meets: TF weights, PyTorch safetensors, PyTorch .bin,
SentencePiece tokenizers (XLM-R, KoBERT), and the KoBERT registry entry.

The checkpoints are made here (tiny: hidden 32, 1-2 layers; SentencePiece models
trained on a Korean + English toy corpus), with no torch and no network.
"""

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

import tfbert
import tfbert.predict
from tfbert.cli import main as cli_main
from tfbert.encoders import load_encoder
from tfbert.export import export_classifier, read_export_info
from tfbert.testing import (make_tiny_hf_sentencepiece, make_tiny_pytorch_safetensors_bert, toy_bilingual_texts)
from tfbert.training import make_dataset, predict_logits, train_classifier

pytest.importorskip("sentencepiece")

IDS = {"input_word_ids": tf.constant([[2, 10, 11, 12, 40, 3, 0]]),
       "input_mask": tf.constant([[1, 1, 1, 1, 1, 1, 0]]),
       "input_type_ids": tf.zeros([1, 7], tf.int32)}


@pytest.fixture(scope="module")
def sp_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("sentencepiece")
    return {style: make_tiny_hf_sentencepiece(root / style, style) for style in ("xlmr", "kobert")}


def test_pytorch_safetensors_folder_loads_without_torch_like_the_tf_weights(tiny_hf_dir, tmp_path):
    folder = make_tiny_pytorch_safetensors_bert(tmp_path / "pt", tiny_hf_dir)
    assert not (tmp_path / "pt" / "tf_model.h5").exists()
    header = (tmp_path / "pt" / "model.safetensors").read_bytes()[:4000]
    assert b"embeddings.word_embeddings.weight" in header and b'"format":"pt"' in header
    from_tf, from_pt = load_encoder(f"hf:{tiny_hf_dir}"), load_encoder(f"hf:{folder}")
    for key, value in from_tf(IDS).items():
        np.testing.assert_allclose(from_pt(IDS)[key].numpy(), value.numpy(), atol=1e-5)


def test_safetensors_without_format_metadata_is_one_line_with_the_fix(tiny_hf_dir, tmp_path):
    from safetensors.numpy import load_file, save_file

    folder = make_tiny_pytorch_safetensors_bert(tmp_path / "pt", tiny_hf_dir)
    file = tmp_path / "pt" / "model.safetensors"
    save_file(load_file(str(file)), str(file))  # no metadata, as a hand-made file may be
    with pytest.raises(tfbert.ConfigError) as err:
        load_encoder(folder)
    message = str(err.value)
    assert "no 'format' in its metadata" in message and "metadata={'format': 'pt'}" in message
    assert "\n" not in message


def test_pytorch_bin_only_folder_says_install_torch_or_convert_once(tiny_hf_dir, tmp_path):
    folder = tmp_path / "bin_only"
    folder.mkdir()
    shutil.copy(f"{tiny_hf_dir}/config.json", folder)
    shutil.copy(f"{tiny_hf_dir}/vocab.txt", folder)
    (folder / "pytorch_model.bin").write_bytes(b"PK\x03\x04 not read: torch pickles need torch")
    with pytest.raises(tfbert.ConfigError) as err:
        tfbert.create_classifier(str(folder), head="dense", seq_length=8)
    message = str(err.value)
    assert "\n" not in message
    assert "only PyTorch weights (pytorch_model.bin)" in message and "pip install torch" in message
    assert f"TFAutoModel.from_pretrained('{folder}', from_pt=True).save_pretrained('{folder}')" in message


def test_hub_checkpoint_with_only_pytorch_weights_gets_the_same_line(monkeypatch):
    import transformers

    def only_pt(*args, **kwargs):
        raise OSError("some-org/model does not appear to have a file named tf_model.h5 but there is a file "
                      "for PyTorch weights. Use `from_pt=True` to load this model from those weights.")

    monkeypatch.setattr(transformers.TFAutoModel, "from_pretrained", only_pt)
    with pytest.raises(tfbert.ConfigError) as err:
        load_encoder("hf:some-org/model")
    message = str(err.value)
    assert "only PyTorch weights" in message and "pip install torch" in message
    assert "save_pretrained('./model-tf')" in message and "then use ./model-tf as the model" in message


def _probabilities(model, texts):
    logits = predict_logits(model, texts)
    p = 1 / (1 + np.exp(-logits[:, 0]))
    return np.stack([1 - p, p], axis=1)


def test_sentencepiece_xlmr_tokenizes_fine_tunes_and_exports(sp_dirs, tmp_path):
    from transformers import XLMRobertaTokenizer

    tfbert.register_model(name="tiny-xlmr-sp", backend="huggingface", encoder=sp_dirs["xlmr"],
                          langs=["multi"], cased=True, tokenizer_type="sentencepiece",
                          uses_token_type_ids=False, max_seq_length=128)
    texts, labels = toy_bilingual_texts(96, seed=3)
    model = tfbert.create_classifier("tiny-xlmr-sp", head="dense", class_names=["neg", "pos"], seq_length=24)
    slow = XLMRobertaTokenizer.from_pretrained(sp_dirs["xlmr"])
    assert model.preprocessor.token_ids(texts).to_list() == [slow(t)["input_ids"] for t in texts]
    pieces, _ = model.preprocessor.tokenize("재밌다 영화")
    assert pieces[0] == "<s>" and "▁재밌다" in pieces and pieces[-1] == "</s>"

    data = make_dataset(model, texts, labels, batch_size=16, shuffle=True, verbose=False)
    history = train_classifier(model, data, epochs=8, learning_rate=1e-2, seed=0, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses

    folder = export_classifier(model, tmp_path / "export")
    assert read_export_info(folder)["tokenizer"]["kind"] == "python"
    predicted = tfbert.predict.load(folder).predict_proba(texts[:20])
    np.testing.assert_allclose(predicted, _probabilities(model, texts[:20]), atol=1e-5)


def test_kobert_style_checkpoint_trap_is_caught_and_the_named_class_pairs_it(sp_dirs, tmp_path):
    folder = sp_dirs["kobert"]
    # AutoTokenizer follows the config's XLNetTokenizer: [CLS] last, ids the model never saw.
    with pytest.raises(tfbert.ConfigError) as err:
        tfbert.create_classifier(f"hf:{folder}", head="dense", seq_length=16)
    assert "not a pair" in str(err.value) or "does not start texts with" in str(err.value)
    assert "tokenizer_class" in str(err.value) and "\n" not in str(err.value)

    tfbert.register_model(name="tiny-kobert", backend="huggingface", encoder=folder, langs=["ko"], cased=True,
                          tokenizer_type="sentencepiece", tokenizer_class="KoBERTTokenizer", max_seq_length=128)
    model = tfbert.create_classifier("tiny-kobert", head="dense", class_names=["neg", "pos"], seq_length=16)
    pre = model.preprocessor
    pieces, ids = pre.tokenize("영화 정말 최고")
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]" and ids[0] == 2 and ids[-1] == 3
    assert pre.pad_id == 1
    batch = pre(["영화 최고", "the movie was great and the music was wonderful"])
    assert (batch["input_type_ids"].numpy() == 0).all()
    assert batch["input_word_ids"].numpy()[0, -1] == 1 and batch["input_mask"].numpy()[0, -1] == 0  # right padding

    texts = toy_bilingual_texts(12, seed=4)[0]
    exported = export_classifier(model, tmp_path / "export")
    saved = json.loads((exported / "tokenizer" / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert saved["tokenizer_class"] == "KoBERTTokenizer"
    predictor = tfbert.predict.load(exported)
    assert type(predictor._hf_tokenizer).__name__ == "KoBERTTokenizer"
    np.testing.assert_allclose(predictor.predict_proba(texts), _probabilities(model, texts), atol=1e-5)


def test_kobert_entry_is_paired_and_listed_with_its_tokenizer(capsys):
    spec = tfbert.get_spec("skt/kobert-base-v1")
    assert (spec.backend, spec.tokenizer_type, spec.tokenizer_class) == ("huggingface", "sentencepiece",
                                                                         "KoBERTTokenizer")
    assert spec.langs == ("ko",) and spec.cased is True and spec.max_seq_length == 512
    assert cli_main(["models", "skt/*"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("skt/kobert-base-v1"))
    assert "sentencepiece" in row
    assert cli_main(["models", "--lang", "ko"]) == 0
    assert "skt/kobert-base-v1" in capsys.readouterr().out


def test_kobert_entry_offline_is_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(tfbert.ConfigError) as err:
        tfbert.create_preprocessor("skt/kobert-base-v1", seq_length=16)
    message = str(err.value)
    assert "skt/kobert-base-v1" in message and "HF_HUB_OFFLINE is set" in message
    assert "save_pretrained" in message and "\n" not in message


def test_unknown_tokenizer_class_names_the_choices(tiny_hf_dir):
    spec = tfbert.registry.ModelSpec(name="odd", backend="huggingface", encoder=tiny_hf_dir,
                                     tokenizer_class="NoSuchTokenizer")
    with pytest.raises(tfbert.ConfigError, match="unknown tokenizer_class 'NoSuchTokenizer'.*KoBERTTokenizer"):
        tfbert.create_preprocessor(spec, seq_length=8)
