"""Exported SavedModels: strings in, float32 probabilities out, same as the Keras model.

Exports are made once per session by :func:`get_export` (``tests/test_predict.py``
reuses them): a binary TF Hub model, a 3-class HuggingFace model (in-graph
WordPiece) and a binary HuggingFace model whose BPE tokenizer cannot run
in-graph (Python-side fallback).
"""

import json
import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

import tfbert
from tfbert.export import export_classifier, read_export_info
from tfbert.testing import SPECIAL_TOKENS, toy_texts
from tfbert.training import make_dataset, predict_logits, train_classifier

CASES = {
    # key: (registry name, class names)
    "hub2": ("tiny-tfhub", ["neg", "pos"]),
    "hf3": ("tiny-hf", ["neg", "pos", "neu"]),
    "bpe2": ("tiny-hf-bpe", ["bad", "good"]),
}

# Varied strings: Korean, emoji, accents, CJK, control characters, empty,
# whitespace only, one 3000-character "word", and text far beyond seq_length.
STRINGS = [
    "The movie was GREAT!",
    "terrible, boring plot... the actor was poor",
    "",
    "   ",
    "재밌어요 정말 최고의 영화 ㅋㅋㅋ",
    "emoji 😀👍🏽 good 🎬",
    "Café naïve résumé ÀÉÎ",
    "中文字符 mixed with english",
    "tabs\tand\nnewlines\r\nokay",
    "don't stop-believing 12,345.67",
    "\u200bzero\u00a0width and nbsp",
    "a" * 3000,
    " ".join(["good movie and great story"] * 200),
]

_EXPORTS = {}


def _make_bpe_tokenizer(folder):
    """A BPE tokenizer (not expressible as WordPiece) over the toy task's words."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(toy_texts(200, num_classes=3, seed=5)[0],
                            trainers.BpeTrainer(vocab_size=70, special_tokens=SPECIAL_TOKENS,
                                                show_progress=False))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", pad_token="[PAD]", mask_token="[MASK]",
                                   model_max_length=128)
    fast.save_pretrained(str(folder))
    return str(folder)


def _register_bpe(tiny_hf_dir, root):
    if not tfbert.is_model("tiny-hf-bpe"):
        # tokenizer_type is left at its default ("wordpiece") on purpose: export must
        # find out from the tokenizer itself that it cannot run in-graph.
        tfbert.register_model(name="tiny-hf-bpe", backend="huggingface", encoder=tiny_hf_dir,
                              tokenizer=_make_bpe_tokenizer(root / "bpe_tokenizer"),
                              langs=["en"], max_seq_length=128, description="tiny BERT + BPE")


def get_export(key, root, tiny_hf_dir):
    """(model, export dir, class names): trained a few steps and exported, once per session."""
    if key not in _EXPORTS:
        if key == "bpe2":
            _register_bpe(tiny_hf_dir, root)
        name, class_names = CASES[key]
        texts, labels = toy_texts(48, num_classes=len(class_names), seed=3)
        model = tfbert.create_classifier(name, head="dense", seq_length=16, class_names=class_names)
        history = train_classifier(model, make_dataset(model, texts, labels, batch_size=16, bucketing=False),
                                   epochs=2, learning_rate=5e-3, seed=0, verbose=0)
        config = {"model": name, "head": "dense", "seq_length": 16, "epochs": 2, "learning_rate": 5e-3}
        metrics = {"accuracy": history.history["accuracy"][-1], "loss": np.float32(history.history["loss"][-1])}
        out = export_classifier(model, root / f"export_{key}", metrics=metrics, config=config)
        _EXPORTS[key] = (model, out, class_names)
    return _EXPORTS[key]


@pytest.fixture(scope="session")
def export_root(tmp_path_factory):
    return tmp_path_factory.mktemp("exports")


@pytest.fixture
def exported(tiny_models, tiny_hf_dir, export_root):
    return lambda key: get_export(key, export_root, tiny_hf_dir)


def keras_probabilities(model, texts):
    """The in-memory model's class probabilities (HF: the Python tokenizer's ids)."""
    logits = predict_logits(model, texts, batch_size=8).astype(np.float64)
    if logits.shape[1] == 1:
        p = 1.0 / (1.0 + np.exp(-logits[:, 0]))
        return np.stack([1.0 - p, p], axis=1)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


RELOAD_SCRIPT = textwrap.dedent("""
    import json, sys
    BLOCKED = {"tfbert", "transformers", "tensorflow_hub", "official", "tf_keras"}

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError("blocked import: " + name)

    sys.meta_path.insert(0, Block())
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    texts = json.load(open(sys.argv[1], encoding="utf-8"))
    results = {}
    for folder in sys.argv[3:]:
        serve = tf.saved_model.load(folder).signatures["serving_default"]
        out = serve(text=tf.constant(texts))
        results[folder] = {k: v.numpy().tolist() if v.dtype != tf.string else
                           [s.decode("utf-8") for s in v.numpy()] for k, v in out.items()}
        results[folder]["dtypes"] = {k: v.dtype.name for k, v in out.items()}
    assert not BLOCKED & {m.split(".")[0] for m in sys.modules}, "a blocked module was imported"
    json.dump(results, open(sys.argv[2], "w", encoding="utf-8"))
""")


def test_reload_in_fresh_process_with_only_tensorflow_and_text(exported, tmp_path):
    folders = {key: exported(key) for key in ("hub2", "hf3")}
    texts = STRINGS + toy_texts(6, num_classes=3, seed=9)[0]
    (tmp_path / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
    (tmp_path / "reload.py").write_text(RELOAD_SCRIPT, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_USE_LEGACY_KERAS")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "reload.py"), str(tmp_path / "texts.json"),
         str(tmp_path / "out.json"), *[str(f[1]) for f in folders.values()]],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))

    for key, (model, folder, class_names) in folders.items():
        out = results[str(folder)]
        assert out["dtypes"] == {"probabilities": "float32", "logits": "float32", "label_id": "int32",
                                 "label": "string", "num_tokens": "int32"}
        probs = np.asarray(out["probabilities"])
        assert probs.shape == (len(texts), len(class_names))
        np.testing.assert_allclose(probs, keras_probabilities(model, texts), atol=1e-5, err_msg=key)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
        assert out["label_id"] == probs.argmax(axis=1).tolist()
        assert out["label"] == [class_names[i] for i in out["label_id"]]
        assert out["num_tokens"][2] == 2  # "" -> [CLS] [SEP]
        assert out["num_tokens"][12] > 16  # the long text was truncated


def test_hf_export_equals_keras_model_on_python_tokenized_inputs(exported):
    model, folder, class_names = exported("hf3")
    serve = tf.saved_model.load(str(folder)).signatures["serving_default"]
    out = serve(text=tf.constant(STRINGS))
    np.testing.assert_allclose(out["probabilities"].numpy(), keras_probabilities(model, STRINGS), atol=1e-5)
    # the in-graph token counts are the HF tokenizer's (before truncation)
    hf = model.preprocessor.hf_tokenizer
    expected = [len(hf(t, truncation=False)["input_ids"]) for t in STRINGS]
    assert out["num_tokens"].numpy().tolist() == expected


@pytest.mark.parametrize("key", ["hub2", "hf3"])
def test_serving_default_takes_a_batch_of_strings(exported, key):
    _, folder, class_names = exported(key)
    signature = tf.saved_model.load(str(folder)).signatures["serving_default"]
    args, kwargs = signature.structured_input_signature
    assert args == () and list(kwargs) == ["text"]
    assert kwargs["text"].dtype == tf.string and kwargs["text"].shape.as_list() == [None]
    outputs = signature.structured_outputs
    assert set(outputs) == {"probabilities", "label_id", "label", "logits", "num_tokens"}
    assert outputs["probabilities"].dtype == tf.float32
    assert outputs["probabilities"].shape.as_list() == [None, len(class_names)]
    assert outputs["label_id"].dtype == tf.int32 and outputs["label_id"].shape.as_list() == [None]
    assert outputs["logits"].shape.as_list() == [None, 1 if len(class_names) == 2 else len(class_names)]


def test_export_folder_layout_and_metadata(exported):
    model, folder, class_names = exported("hf3")
    names = sorted(p.name for p in folder.iterdir())
    assert {"saved_model.pb", "variables", "assets", "tfbert.json", "labels.txt"} <= set(names)
    assert "tokenizer" not in names  # in-graph: the vocabulary is a SavedModel asset
    assert any(p.suffix == ".txt" for p in (folder / "assets").iterdir())
    assert (folder / "labels.txt").read_text(encoding="utf-8").splitlines() == class_names

    meta = read_export_info(folder)
    assert meta["class_names"] == class_names and meta["num_classes"] == 3
    assert meta["seq_length"] == 16
    assert meta["model"] == json.loads(json.dumps(model.spec.to_dict()))
    assert meta["model"]["name"] == "tiny-hf"
    assert meta["tokenizer"]["kind"] == "in_graph" and meta["tokenizer"]["type"] == "wordpiece"
    assert meta["config"]["learning_rate"] == 5e-3 and meta["head"] == "dense"
    assert isinstance(meta["metrics"]["loss"], float)  # numpy scalars saved as numbers
    assert meta["signature"]["inputs"] == {"text": "string [batch]"}
    # no temporary folders are left next to the export
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")]


def test_bpe_tokenizer_falls_back_to_python_side_with_one_warning(exported, caplog):
    caplog.set_level(logging.WARNING, logger="tfbert.export")
    _, folder, _ = exported("bpe2")
    warnings = [r for r in caplog.records if r.name == "tfbert.export"]
    if warnings:  # absent when another test made the export first
        assert len(warnings) == 1
        message = warnings[0].getMessage()
        assert "cannot run inside TensorFlow" in message and "BPE" in message and "\n" not in message
    meta = read_export_info(folder)
    assert meta["tokenizer"]["kind"] == "python" and meta["tokenizer"]["path"] == "tokenizer"
    assert (folder / "tokenizer" / "tokenizer.json").is_file()
    signature = tf.saved_model.load(str(folder)).signatures["serving_default"]
    _, kwargs = signature.structured_input_signature
    assert set(kwargs) == {"input_word_ids", "input_mask", "input_type_ids"}
    assert all(s.dtype == tf.int32 for s in kwargs.values())


def test_mixed_bfloat16_model_exports_float32_outputs(tiny_models, tmp_path):
    model = tfbert.create_classifier("tiny-tfhub", head="dense", seq_length=8, num_classes=3,
                                     precision="bfloat16")
    assert model.precision == "bfloat16"
    assert any(layer.dtype_policy.name == "mixed_bfloat16" for layer in model.core.layers)
    folder = export_classifier(model, tmp_path / "mp")
    out = tf.saved_model.load(str(folder)).signatures["serving_default"](text=tf.constant(["good", ""]))
    assert out["probabilities"].dtype == tf.float32 and out["logits"].dtype == tf.float32
    np.testing.assert_allclose(out["probabilities"].numpy().sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out["probabilities"].numpy(), keras_probabilities(model, ["good", ""]), atol=1e-5)
    assert read_export_info(folder)["precision"] == "bfloat16"


def test_export_errors(exported, tmp_path):
    model, folder, _ = exported("hub2")
    with pytest.raises(tfbert.ExportError, match="already exists and is not empty.*overwrite=True"):
        export_classifier(model, folder)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(tfbert.ExportError, match="not a tfbert export, so it is not overwritten"):
        export_classifier(model, other, overwrite=True)
    with pytest.raises(tfbert.ExportError, match="build it with tfbert.create_classifier"):
        export_classifier(keras.Sequential([keras.layers.Dense(1)]), tmp_path / "x")
    with pytest.raises(tfbert.ConfigError, match="not a tfbert export: no tfbert.json"):
        read_export_info(other)


def test_export_info_cli(exported, capsys):
    from tfbert.cli import main

    _, folder, _ = exported("hf3")
    assert main(["export-info", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "classes:    neg, pos, neu" in out and "wordpiece (in-graph)" in out
    assert "inputs:     text string [batch]" in out and "accuracy" in out
