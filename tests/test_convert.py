"""HuggingFace BERT -> TF Hub conversion: numbers, layout, errors, first-use cache."""

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import tfbert
from tfbert import conversion_cache, convert
from tfbert.testing import toy_texts

ROOT = Path(__file__).resolve().parent.parent
TEXTS = ["The MOVIE was great!", "", "bad, awful... terrible", "café 영화 😀 so-so",
         " ".join(["really"] * 40)]
KEYS = ("input_word_ids", "input_mask", "input_type_ids")


@pytest.fixture(scope="module")
def converted(tiny_hf_dir, tmp_path_factory):
    """The tiny HF BERT converted once, through the first-use cache path."""
    cache = tmp_path_factory.mktemp("tfbert_cache")
    old = os.environ.get("TFBERT_CACHE")
    os.environ["TFBERT_CACHE"] = str(cache)
    tfbert.register_model(name="tiny-hf-conv", backend="huggingface", encoder=tiny_hf_dir,
                          max_seq_length=128)
    tfbert.register_model(name="tiny-hf-conv-tfhub", backend="tfhub",
                          encoder="converted:tiny-hf-conv/encoder",
                          preprocess="converted:tiny-hf-conv/preprocess", max_seq_length=128)
    try:
        spec = tfbert.get_spec("tiny-hf-conv-tfhub")
        assert spec.encoder_path == "converted:tiny-hf-conv/encoder"  # reading the registry converts nothing
        encoder_path = conversion_cache.resolve_handle(spec.encoder_path)  # converts here
        yield {"hf": tiny_hf_dir, "out": str(Path(encoder_path).parent), "cache": cache}
    finally:
        if old is None:
            os.environ.pop("TFBERT_CACHE", None)
        else:
            os.environ["TFBERT_CACHE"] = old


@pytest.fixture(scope="module")
def hf(converted):
    from transformers import AutoTokenizer, TFBertModel
    return TFBertModel.from_pretrained(converted["hf"]), AutoTokenizer.from_pretrained(converted["hf"])


def _hf_ids(tokenizer, texts, length):
    enc = tokenizer(texts, truncation=True, max_length=length, padding="max_length",
                    return_token_type_ids=True, return_tensors="np")
    return dict(zip(KEYS, (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])))


def test_layout_and_conversion_record(converted):
    out = Path(converted["out"])
    assert out == conversion_cache.converted_dir("tiny-hf-conv")
    assert out.parent == Path(converted["cache"]) / "converted"
    assert {p.name for p in out.iterdir()} == {"encoder", "preprocess", "vocab.txt",
                                               "tfbert_conversion.json"}
    info = json.loads((out / "tfbert_conversion.json").read_text())
    assert info["config"]["hidden_size"] == 32 and info["config"]["num_hidden_layers"] == 2
    assert info["weights_copied"] == 5 + 2 * 16 + 2
    assert info["check"]["max_abs_diff"]["sequence_output"] < 1e-5
    assert info["check"]["id_mismatches"] == 0
    assert info["registry_name"] == "tiny-hf-conv" and info["date"] and info["source"]
    # No temporary folders left next to it (only the lock file).
    assert sorted(p.name for p in out.parent.iterdir()) == [f".{out.name}.lock", out.name]
    assert convert.conversion_summary(info).startswith(f"converted '{info['source']}' to ")


def test_encoder_matches_hf_through_hub_keras_layer(converted, hf):
    import tensorflow_hub as hub
    model, tokenizer = hf
    encoder = hub.KerasLayer(os.path.join(converted["out"], "encoder"))
    inputs = _hf_ids(tokenizer, TEXTS, 48)
    inputs["input_type_ids"][0, 3:] = 1  # exercise the segment embeddings too
    inputs["input_type_ids"] *= inputs["input_mask"]
    ref = model(input_ids=inputs["input_word_ids"], attention_mask=inputs["input_mask"],
                token_type_ids=inputs["input_type_ids"], training=False)
    out = encoder({k: tf.constant(v, tf.int32) for k, v in inputs.items()})
    assert set(out) >= {"pooled_output", "sequence_output", "encoder_outputs", "default"}
    mask = inputs["input_mask"].astype(bool)
    np.testing.assert_allclose(out["sequence_output"].numpy()[mask],
                               ref.last_hidden_state.numpy()[mask], atol=1e-5)
    np.testing.assert_allclose(out["pooled_output"].numpy(), ref.pooler_output.numpy(), atol=1e-5)
    np.testing.assert_allclose(out["default"].numpy(), out["pooled_output"].numpy())
    assert len(out["encoder_outputs"]) == 2


def test_preprocess_ids_equal_hf_tokenizer(converted, hf):
    import tensorflow_hub as hub
    _, tokenizer = hf
    loaded = hub.load(os.path.join(converted["out"], "preprocess"))
    # Called directly: the default length given at conversion (128).
    packed = hub.KerasLayer(loaded)(tf.constant(TEXTS))
    ref = _hf_ids(tokenizer, TEXTS, 128)
    for k in KEYS:
        np.testing.assert_array_equal(packed[k].numpy(), ref[k], err_msg=k)
    # tokenize + bert_pack_inputs at another length, as TFHubPreprocessor does.
    ids = convert.preprocess_ids(loaded, TEXTS, 16)
    ref = _hf_ids(tokenizer, TEXTS, 16)
    for k in KEYS:
        np.testing.assert_array_equal(ids[k], ref[k], err_msg=k)


def test_create_classifier_on_converted_folder(converted):
    texts, labels = toy_texts(8, seed=3)
    model = tfbert.create_classifier(converted["out"], head="dense", seq_length=16)
    assert model.takes_strings and model.spec.backend == "tfhub"
    assert model(tf.constant(texts)).shape == (8, 1)
    assert len(model.encoder.trainable_weights) == 39  # fine-tunable, all of it
    pieces, _ = model.preprocessor.tokenize("The MOVIE was great!")
    assert pieces == ["[CLS]", "the", "movie", "was", "great", "!", "[SEP]"]


def test_second_use_reads_the_cache(converted, monkeypatch):
    conversion_cache._READY.clear()

    def boom(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(conversion_cache, "convert_checkpoint", boom)
    spec = tfbert.get_spec("tiny-hf-conv-tfhub")
    assert conversion_cache.resolve_handle(spec.encoder_path) == os.path.join(converted["out"], "encoder")
    assert conversion_cache.resolve_handle(spec.preprocess_path) == os.path.join(converted["out"], "preprocess")


def test_cache_goes_stale_when_the_source_changes(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    before = convert.source_fingerprint(str(tmp_path), None)
    assert convert.source_fingerprint(str(tmp_path), None) == before
    (tmp_path / "config.json").write_text('{"changed": 1}')
    assert convert.source_fingerprint(str(tmp_path), None) != before
    assert not conversion_cache._is_current(tmp_path / "missing", before)


def test_existing_output_folder_and_bad_seq_length(converted, tmp_path):
    with pytest.raises(tfbert.ConfigError, match="already exists; remove it or pass overwrite"):
        convert.convert_checkpoint(converted["hf"], converted["out"])
    with pytest.raises(tfbert.ConfigError, match="seq_length must be an integer from 2 to 128"):
        convert.convert_checkpoint(converted["hf"], tmp_path / "x", seq_length=129)
    assert not (tmp_path / "x").exists()


def test_failed_conversion_leaves_nothing(converted, tmp_path, monkeypatch):
    import tfbert.hub_format

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tfbert.hub_format, "save_hub_encoder", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        convert.convert_checkpoint(converted["hf"], tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def _distilbert_folder(folder):
    from transformers import DistilBertConfig, TFDistilBertModel
    model = TFDistilBertModel(DistilBertConfig(vocab_size=50, dim=16, n_layers=1, n_heads=2,
                                               hidden_dim=32, max_position_embeddings=32))
    model(model.dummy_inputs)
    model.save_pretrained(folder)


def _config_folder(kind):
    def make(folder):
        import transformers
        cls = getattr(transformers, kind)
        cls(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=32).save_pretrained(folder)
    return make


@pytest.mark.parametrize("make,model_type", [
    (_distilbert_folder, "distilbert"),
    (_config_folder("RobertaConfig"), "roberta"),
    (_config_folder("ElectraConfig"), "electra"),
    (_config_folder("AlbertConfig"), "albert"),
])
def test_unsupported_model_types_fail_early(tmp_path, make, model_type):
    make(tmp_path / "ckpt")
    with pytest.raises(tfbert.ConfigError) as err:
        convert.convert_checkpoint(str(tmp_path / "ckpt"), tmp_path / "out")
    message = str(err.value)
    assert message == (f"cannot convert '{tmp_path / 'ckpt'}': model type '{model_type}' is not "
                       f"supported (BERT with a WordPiece vocabulary only)")
    assert "\n" not in message and not (tmp_path / "out").exists()


def test_bert_with_a_bpe_tokenizer_is_refused(tiny_hf_dir, tmp_path):
    from transformers import BertConfig, RobertaTokenizerFast
    folder = tmp_path / "ckpt"
    BertConfig.from_pretrained(tiny_hf_dir).save_pretrained(folder)
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "a", "b", "ab"])}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b\n")
    RobertaTokenizerFast(vocab_file=str(tmp_path / "vocab.json"),
                         merges_file=str(tmp_path / "merges.txt")).save_pretrained(folder)
    with pytest.raises(tfbert.ConfigError,
                       match=r"tokenizer RobertaTokenizerFast is not supported \(BERT with a "
                             r"WordPiece vocabulary only\)"):
        convert.convert_checkpoint(str(folder), tmp_path / "out")


def test_other_settings_refused(tiny_hf_dir, tmp_path):
    from transformers import BertConfig
    config = BertConfig.from_pretrained(tiny_hf_dir)
    config.position_embedding_type = "relative_key"
    config.save_pretrained(tmp_path)
    with pytest.raises(tfbert.ConfigError, match="position embedding type 'relative_key' is not "
                                                 "supported"):
        convert.convert_checkpoint(str(tmp_path), tmp_path / "out")
    with pytest.raises(tfbert.ConfigError, match="could not read its HuggingFace config"):
        convert.convert_checkpoint(str(tmp_path / "nowhere"), tmp_path / "out")


def test_handles_and_registry_entry():
    spec = tfbert.get_spec("minilm-l6-h384-uncased-tfhub")
    assert spec.backend == "tfhub"
    assert spec.encoder == "converted:minilm-l6-h384-uncased/encoder"
    assert spec.preprocess == "converted:minilm-l6-h384-uncased/preprocess"
    with pytest.raises(tfbert.ConfigError, match="bad handle 'converted:x'"):
        conversion_cache.resolve_handle("converted:x")
    with pytest.raises(tfbert.ConfigError, match="cannot convert 'roberta-base': tokenizer type "
                                                 "'bpe' is not supported"):
        convert.convert_checkpoint("roberta-base", "unused")
    with pytest.raises(tfbert.ConfigError, match="must name a HuggingFace registry entry"):
        conversion_cache.resolve_handle("converted:small_bert/bert_en_uncased_L-2_H-128_A-2/encoder")


@pytest.mark.slow
def test_real_minilm_conversion_matches(tmp_path):
    """scripts/check_conversion.py on the installed all-MiniLM-L6-v2 (minutes)."""
    spec = importlib.util.spec_from_file_location("check_conversion",
                                                  ROOT / "scripts" / "check_conversion.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    figures = module.run_check("minilm-l6-h384-uncased", json_path=str(tmp_path / "check.json"))
    assert figures["main"]["sentences"] >= 300
    assert figures["id_mismatches"] == 0
    assert figures["max_abs_diff"] <= 1e-4
    assert figures["passed"]
