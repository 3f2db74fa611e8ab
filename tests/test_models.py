"""Every backend x head builds, learns the toy task, and predicts the right shape."""

import numpy as np
import pytest
import tensorflow as tf

import tfbert
from tfbert.testing import toy_texts
from tfbert.training import make_dataset, predict_logits, train_classifier

BACKENDS = ["tfhub", "huggingface"]


def _encoder_weights(model):
    return [w.numpy().copy() for w in model.encoder.weights]


# (head, train_encoder): each head with its default, plus cls_bn fine-tuned,
# because a frozen *random* encoder's [CLS] vector carries too little of the
# text for cls_bn to learn the toy task well (a pretrained one does).
# bilstm (36 + 20 s) runs with --run-slow: test_heads and test_encoder_cache build and train it in CI
CASES = [("dense", None), ("cls_bn", None), ("cls_bn", True), pytest.param("bilstm", None, marks=pytest.mark.slow)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("head,train_encoder", CASES)
def test_build_train_predict(tiny_models, backend, head, train_encoder):
    texts, labels = toy_texts(64, num_classes=2, seed=1)
    model = tfbert.create_classifier(tiny_models[backend], head=head, seq_length=16,
                                     class_names=["neg", "pos"], train_encoder=train_encoder)
    info = model
    assert info.class_names == ["neg", "pos"] and info.num_outputs == 1
    assert info.takes_strings == (backend == "tfhub")
    frozen = not info.train_encoder
    assert frozen is (head != "dense" and train_encoder is None)
    assert info.encoder.trainable is (not frozen)
    encoder_before = _encoder_weights(model)

    ds = make_dataset(model, texts, labels, batch_size=16, shuffle=True, seed=0)
    history = train_classifier(model, ds, epochs=10, learning_rate=1e-2, seed=0, verbose=0).history
    assert set(history) >= {"loss", "accuracy", "learning_rate", "time"}
    assert len(history["loss"]) == 10
    # training-mode loss: it is what the optimizer sees
    if head == "cls_bn" and frozen:
        assert min(history["loss"][-3:]) < history["loss"][0]
    else:
        assert history["loss"][-1] < 0.5 * history["loss"][0], history["loss"]
        assert history["accuracy"][-1] >= 0.85

    assert predict_logits(model, texts[:5], batch_size=4).shape == (5, 1)
    if info.takes_strings:  # the string-input model gives the same answers
        direct = model.predict(tf.constant(texts[:5]), verbose=0)
        # float32 noise only: the two paths pad to other lengths, so sums run in another order
        # (1.1e-5 seen once on a logit of 0.006); another tokenization would differ by far more
        np.testing.assert_allclose(direct, predict_logits(model, texts[:5]), atol=5e-5)

    encoder_after = _encoder_weights(model)
    changed = [not np.array_equal(a, b) for a, b in zip(encoder_before, encoder_after)]
    if frozen:
        assert not any(changed), "a frozen encoder's weights changed during training"
    else:
        assert any(changed), "a trainable encoder did not train"


# the TF Hub case (29 s) runs with --run-slow; the two backends share the loss and head code
@pytest.mark.parametrize("backend", [pytest.param("tfhub", marks=pytest.mark.slow), "huggingface"])
def test_multiclass_learns_with_sparse_crossentropy(tiny_models, backend):
    texts, labels = toy_texts(90, num_classes=3, seed=2)
    model = tfbert.create_classifier(tiny_models[backend], head="bilstm", seq_length=16, num_classes=3)
    assert model.num_outputs == 3
    ds = make_dataset(model, texts, labels, batch_size=16, shuffle=True)
    history = train_classifier(model, ds, epochs=10, learning_rate=1e-2, seed=0, verbose=0)
    assert type(model.core.loss).__name__ == "SparseCategoricalCrossentropy"
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert predict_logits(model, texts[:7]).shape == (7, 3)


def test_train_encoder_flag_overrides_head_default(tiny_models):
    model = tfbert.create_classifier("tiny-hf", head="dense", train_encoder=False, seq_length=8)
    assert not model.encoder.trainable
    model = tfbert.create_classifier("tiny-hf", head="cls_bn", train_encoder=True, seq_length=8,
                                     hidden_units=16, dropout=0.5)
    assert model.encoder.trainable
    assert model.core.get_layer("head_dense").units == 16
    assert model.core.get_layer("head_dropout").rate == 0.5


def test_unknown_head_and_bad_head_option(tiny_models):
    with pytest.raises(tfbert.ConfigError, match="unknown head 'mlp'; choose one of: dense, cls_bn, bilstm, transformer"):
        tfbert.create_classifier("tiny-hf", head="mlp")
    with pytest.raises(tfbert.ConfigError, match="head 'dense'.*lstm_units"):
        tfbert.create_classifier("tiny-hf", head="dense", lstm_units=3)


def test_unknown_model_name():
    with pytest.raises(tfbert.UnknownModelError, match="did you mean .*minilm-l6-h384-uncased"):
        tfbert.create_classifier("minilm-l6-h384")


def test_sequence_length_above_model_limit(tiny_models):
    with pytest.raises(tfbert.ConfigError, match="seq_length 1024 is longer than 'tiny-hf' allows \\(128\\)"):
        tfbert.create_classifier("tiny-hf", seq_length=1024)


def test_bad_labels_and_empty_data(tiny_models):
    model = tfbert.create_classifier("tiny-hf", head="dense", seq_length=8)
    with pytest.raises(tfbert.DataError, match="label id 2 at position 1 is outside 0..1 for a 2-class model"):
        make_dataset(model, ["a", "b"], [0, 2])
    with pytest.raises(tfbert.DataError, match="label 'neg' at position 0 .* is not one of the 2 classes 0, 1"):
        make_dataset(model, ["a", "b"], ["neg", "pos"])  # names are welcome, when they are the model's
    with pytest.raises(tfbert.DataError, match="no examples"):
        make_dataset(model, [], [])
    with pytest.raises(tfbert.DataError, match="2 texts but 3 labels"):
        make_dataset(model, ["a", "b"], [0, 1, 1])


def test_encoders_return_sequence_and_sentence_vectors(tiny_models):
    for name in tiny_models.values():
        pre = tfbert.create_preprocessor(name, seq_length=12)
        inputs = pre(["the movie was good", "bad"])
        assert inputs["input_word_ids"].shape == (2, 12)
        out = tfbert.load_encoder(name)(inputs)
        assert out["sequence_output"].shape == (2, 12, 32)
        assert out["pooled_output"].shape == (2, 32)


def test_both_backends_tokenize_the_same_vocabulary_identically(tiny_models):
    hub = tfbert.create_preprocessor("tiny-tfhub", seq_length=16).tokenize("The MOVIE was great!")
    hf = tfbert.create_preprocessor("tiny-hf", seq_length=16).tokenize("The MOVIE was great!")
    assert hub == hf
    assert hub[0] == ["[CLS]", "the", "movie", "was", "great", "!", "[SEP]"]


def test_text_classifier_parts_are_public_and_explicit(tiny_models):
    model = tfbert.create_classifier("tiny-tfhub", head="cls_bn", seq_length=16, class_names=["neg", "pos"])
    assert isinstance(model, tfbert.TextClassifier)
    assert model.preprocessor.in_graph and model.takes_strings
    assert model.encoder is model.core.get_layer("encoder") and not model.encoder.trainable
    assert (model.head_name, model.num_classes, model.num_outputs, model.seq_length) == ("cls_bn", 2, 1, 16)
    encoder_part, head_part = model.head_split()
    assert model.part("model") is model and model.part("core") is model.core and model.part("head") is head_part
    ids = model.preprocessor(["a good movie"])
    np.testing.assert_allclose(model(tf.constant(["a good movie"])), model.core(ids), atol=1e-6)


# the TF Hub case (19 s) runs with --run-slow; saving goes through the same TextClassifier code
@pytest.mark.parametrize("backend", [pytest.param("tfhub", marks=pytest.mark.slow), "huggingface"])
def test_text_classifier_saves_and_reloads_like_any_keras_model(tiny_models, backend, tmp_path):
    texts, _ = toy_texts(6, seed=2)
    model = tfbert.create_classifier(tiny_models[backend], head="dense", seq_length=16)
    inputs = tf.constant(texts) if model.takes_strings else model.preprocessor(texts)
    before = model.predict(inputs, verbose=0)
    model.save_weights(str(tmp_path / "weights.h5"))
    twin = tfbert.create_classifier(tiny_models[backend], head="dense", seq_length=16)
    twin.load_weights(str(tmp_path / "weights.h5"))
    np.testing.assert_allclose(twin.predict(inputs, verbose=0), before, atol=1e-6)
    if backend == "tfhub":  # a SavedModel of the whole string-in model
        model.save(str(tmp_path / "saved"))
        loaded = tf.saved_model.load(str(tmp_path / "saved"))
        np.testing.assert_allclose(loaded(inputs, training=False), before, atol=1e-5)
