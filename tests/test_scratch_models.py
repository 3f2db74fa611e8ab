"""Encoders from scratch as registry entries: scratch:SIZE@VOCAB_DIR, built once into the cache, trained, exported."""

import shutil

import pytest

import tfbert
from tfbert import scratch_cache
from tfbert.testing import toy_bilingual_texts, toy_texts

SIZE = "L-1_H-32_A-2"
KOREAN = ["영화 정말 재밌다", "배우 연기 최악 ㅠㅠ", "스토리가 너무 지루하다...", "평점 10점 최고!", "Café 영화 GREAT"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private $TFBERT_CACHE for this module (the builds are counted here)."""
    folder = tmp_path_factory.mktemp("cache")
    patch = pytest.MonkeyPatch()
    patch.setenv("TFBERT_CACHE", str(folder))
    yield folder
    patch.undo()


@pytest.fixture(scope="module")
def vocab_dir(tmp_path_factory, cache):
    root = tmp_path_factory.mktemp("scratchvocab")
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(toy_bilingual_texts(300, seed=1)[0] + toy_texts(100, seed=2)[0]) + "\n",
                      encoding="utf-8")
    tfbert.learn_vocab(str(corpus), root / "ko-vocab", size=300, strip_accents=False, verbose=False)
    return root / "ko-vocab"


# bilstm (26 s) runs with --run-slow: a scratch entry is a TF Hub entry, and bilstm on TF Hub entries is tested
@pytest.mark.parametrize("head", ["dense", "cls_bn", pytest.param("bilstm", marks=pytest.mark.slow)])
def test_a_scratch_encoder_trains_with_each_head(vocab_dir, head):
    import tf_keras as keras

    from tfbert.training import make_dataset, train_classifier

    texts, labels = toy_bilingual_texts(64, seed=5)
    keras.utils.set_random_seed(0)
    model = tfbert.create_classifier(f"scratch:{SIZE}@{vocab_dir}", head=head, seq_length=16)
    assert model.spec.backend == "tfhub" and model.spec.layers == 1 and model.spec.langs == ("ko", "en")
    train_ds = make_dataset(model, texts, labels, batch_size=16, shuffle=True, verbose=False)
    history = train_classifier(model, train_ds, epochs=3, learning_rate=5e-3, seed=0, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]


def test_the_export_carries_the_exact_tokenizer(vocab_dir, tmp_path_factory):
    import tensorflow as tf
    from transformers import AutoTokenizer

    from tfbert.export import export_classifier

    model = tfbert.create_classifier(f"scratch:{SIZE}@{vocab_dir}", head="dense", seq_length=64)
    folder = export_classifier(model, tmp_path_factory.mktemp("export") / "model")
    serve = tf.saved_model.load(str(folder)).signatures["serving_default"]
    hf = AutoTokenizer.from_pretrained(str(vocab_dir))
    assert serve(text=tf.constant(KOREAN))["num_tokens"].numpy().tolist() == [len(hf(t)["input_ids"]) for t in KOREAN]
    # the preprocess model the export was made from: HF's ids, token for token
    handle = scratch_cache.ensure_built(f"scratch:{SIZE}@{vocab_dir}")
    tokenize = tf.saved_model.load(str(handle / "preprocess")).tokenize
    ids = tokenize(tf.constant(KOREAN))
    ids = ids.merge_dims(-2, -1) if ids.shape.rank == 3 else ids
    assert ids.to_list() == [hf(t, add_special_tokens=False)["input_ids"] for t in KOREAN]


def test_the_cache_is_reused_and_rebuilt_when_the_vocabulary_changes(vocab_dir, tmp_path_factory, monkeypatch):
    handle = f"scratch:{SIZE}@{vocab_dir}"
    first = scratch_cache.ensure_built(handle)
    assert first.parent.name == "scratch" and first.name.startswith(f"{SIZE}-") and first.name.endswith("-s0")
    monkeypatch.setattr(scratch_cache, "_build", lambda *a: pytest.fail("rebuilt an unchanged vocabulary"))
    assert scratch_cache.ensure_built(handle) == first
    moved = tmp_path_factory.mktemp("moved") / "v"
    shutil.copytree(vocab_dir, moved)
    assert scratch_cache.ensure_built(f"scratch:{SIZE}@{moved}") == first  # same content, another place
    built = []
    monkeypatch.setattr(scratch_cache, "_build", lambda folder, *a: built.append(folder))
    tfbert.learn_vocab(str(moved / "corpus.txt") if (moved / "corpus.txt").exists() else
                       str(vocab_dir.parent / "corpus.txt"), moved, size=250, strip_accents=False,
                       overwrite=True, verbose=False)
    scratch_cache.ensure_built(f"scratch:{SIZE}@{moved}")
    assert built and built[0] != first
    assert scratch_cache.ensure_built(f"scratch:{SIZE},seed=1@{vocab_dir}").name.endswith("-s1")


def test_registry_yaml_lists_scratch_sizes_relative_to_its_folder(vocab_dir, tmp_path_factory, capsys):
    from tfbert.cli import main

    moved = tmp_path_factory.mktemp("elsewhere") / "ko-vocab"
    shutil.copytree(vocab_dir, moved)
    names = tfbert.load_registry_file(moved / "registry.yaml")
    assert "ko-vocab-scratch-l2-h128" in names and "ko-vocab-scratch-l12-h768" in names
    spec = tfbert.get_spec("ko-vocab-scratch-l4-h256")
    assert spec.encoder == spec.preprocess == f"scratch:L-4_H-256@{moved}"
    assert (spec.backend, spec.layers, spec.hidden, spec.heads, spec.cased) == ("tfhub", 4, 256, 4, False)
    assert spec.langs == ("ko", "en") and spec.max_seq_length == 512
    assert main(["--registry", str(vocab_dir / "registry.yaml"), "models", "ko-vocab-scratch-*"]) == 0
    out = capsys.readouterr().out
    assert "ko-vocab-scratch-l2-h128" in out and "6 model(s)" in out


def test_bad_scratch_handles_are_one_line(vocab_dir, tmp_path_factory):
    empty = tmp_path_factory.mktemp("novocab")
    bare = tmp_path_factory.mktemp("bare")
    shutil.copy(vocab_dir / "vocab.txt", bare / "vocab.txt")
    cases = [(f"scratch:L-x@{vocab_dir}", "bad encoder size"), ("scratch:L-2_H-128", "bad handle"),
             (f"scratch:L-2_H-128,seeds=2@{vocab_dir}", "the only option is seed"),
             (f"scratch:L-2_H-130_A-4@{vocab_dir}", "multiple of heads"),
             (f"scratch:L-2_H-128@{empty}", "has no vocab.txt; make one with 'tfbert vocab"),
             (f"scratch:L-2_H-128@{bare}", "has no tokenizer_config.json"),
             (f"scratch:L-2_H-128@{empty}/missing", "does not exist")]
    for handle, match in cases:
        with pytest.raises(tfbert.ConfigError, match=match) as info:
            tfbert.get_spec(handle)
        assert "\n" not in str(info.value)


def test_a_vocabulary_of_another_size_than_the_encoder_is_refused(vocab_dir, tmp_path_factory):
    other = tmp_path_factory.mktemp("other") / "v"
    tfbert.learn_vocab(str(vocab_dir.parent / "corpus.txt"), other, size=200, strip_accents=False, verbose=False)
    tfbert.register_model(name="mismatched-scratch", backend="tfhub", encoder=f"scratch:{SIZE}@{vocab_dir}",
                          preprocess=f"scratch:{SIZE}@{other}")
    with pytest.raises(tfbert.ConfigError, match="encoder has a vocabulary of \\d+ tokens but the preprocess"):
        tfbert.create_classifier("mismatched-scratch", seq_length=16)


def test_tfbert_train_takes_a_scratch_handle(vocab_dir, tmp_path_factory, capsys):
    import pandas as pd

    from tfbert.cli import main

    work = tmp_path_factory.mktemp("train")
    texts, labels = toy_bilingual_texts(48, seed=7)
    pd.DataFrame({"text": texts, "label": labels}).to_csv(work / "train.csv", index=False)
    code = main(["train", "--model", f"scratch:{SIZE}@{vocab_dir}", "--train", str(work / "train.csv"),
                 "--seq-length", "16", "--epochs", "1", "--no-export", "--output-dir", str(work / "runs"),
                 "--verbose", "0"])
    assert code == 0, capsys.readouterr().err
    summary = pd.read_csv(work / "runs" / "summary.csv")
    assert summary["model"][0] == f"scratch:{SIZE}@{vocab_dir}"
