"""Frozen encoders: outputs computed once, head trained on them."""

import numpy as np
import pytest

import tfbert
from tfbert import encoder_cache
from tfbert.pipeline import ids_dataset
from tfbert.testing import toy_texts
from tfbert.training import make_dataset, predict_logits, train_classifier


def _varied_texts(n, seed):
    texts, labels = toy_texts(n, seed=seed)
    return [t * (1 + i % 4) for i, t in enumerate(texts)], labels


# tfhub + bilstm (26-35 s) runs with --run-slow: hf + bilstm covers the head, tfhub + dense the backend
@pytest.mark.parametrize("backend,head", [("huggingface", "cls_bn"), ("huggingface", "bilstm"),
                                          pytest.param("tfhub", "bilstm", marks=pytest.mark.slow),
                                          ("tfhub", "dense")])
def test_head_on_cached_outputs_gives_the_models_logits(tiny_models, backend, head):
    model = tfbert.create_classifier(tiny_models[backend], head=head, seq_length=32, train_encoder=False)
    texts, _ = _varied_texts(40, seed=1)
    features_model, head_model = model.head_split()
    pre = model.preprocessor
    ids = ids_dataset(pre.token_ids(texts), batch_size=16, bucketing=False, pad_id=pre.pad_id,
                      input_names=pre.input_names)
    per_token = model.head_spec.per_token
    assert per_token == (head == "bilstm")
    features, labels, batch_size = encoder_cache.compute_features(features_model, ids, per_token, verbose=False)
    assert labels is None and batch_size == 16
    assert (int(features.nrows()) if per_token else features.shape[0]) == 40
    if per_token:  # unpadded: one vector per token
        np.testing.assert_array_equal(features.row_lengths().numpy(), pre.token_ids(texts).row_lengths().numpy())
    # one bucket (40 texts < 4 batches of 64): input order is kept
    logits = head_model.predict(encoder_cache.features_dataset(features, batch_size=64), verbose=0)
    np.testing.assert_allclose(logits, predict_logits(model, texts), atol=1e-5)


# bilstm (86 s on 2 busy cores) runs with --run-slow; cls_bn covers the same cache path in CI
@pytest.mark.parametrize("head", ["cls_bn", pytest.param("bilstm", marks=pytest.mark.slow)])
def test_training_on_cached_outputs_matches_training_through_the_encoder(tiny_models, head):
    """Same batches, no dropout: the two paths must take the same steps."""
    texts, labels = _varied_texts(64, seed=2)
    kwargs = dict(head=head, seq_length=32, train_encoder=False, dropout=0.0)
    if head == "bilstm":
        kwargs["lstm_dropout"] = 0.0
    through = tfbert.create_classifier("tiny-hf", **kwargs)
    cached = tfbert.create_classifier("tiny-hf", **kwargs)
    cached.core.set_weights(through.core.get_weights())
    encoder_before = [w.copy() for w in cached.encoder.get_weights()]

    ids_ds = make_dataset(through, texts, labels, batch_size=16, bucketing=False)
    feat_ds = make_dataset(cached, texts, labels, batch_size=16, encoder_outputs=True, verbose=False)
    assert int(feat_ds.cardinality()) == int(ids_ds.cardinality()) == 4
    h1 = train_classifier(through, ids_ds, epochs=3, learning_rate=1e-2, seed=0, verbose=0).history
    h2 = train_classifier(cached, feat_ds, epochs=3, learning_rate=1e-2, seed=0, verbose=0, part="head").history
    np.testing.assert_allclose(h2["loss"], h1["loss"], rtol=1e-3)
    assert h2["loss"][-1] < h2["loss"][0]
    # float32 sums in another order (batch 64 vs 16, other padding) drift slightly over 12 steps at lr 1e-2
    np.testing.assert_allclose(predict_logits(cached, texts), predict_logits(through, texts), rtol=1e-3, atol=1e-3)
    for before, after in zip(encoder_before, cached.encoder.get_weights()):
        np.testing.assert_array_equal(before, after)


@pytest.mark.slow  # CI time: 65 s; cached training equals training through the encoder (test above)
def test_cached_outputs_learn_the_toy_task_with_shuffling(tiny_models):
    texts, labels = toy_texts(96, seed=3)
    model = tfbert.create_classifier("tiny-tfhub", head="bilstm", seq_length=16)
    train_ds = make_dataset(model, texts, labels, batch_size=16, shuffle=True, encoder_outputs=True, verbose=False)
    valid_ds = make_dataset(model, texts[:32], labels[:32], batch_size=16, encoder_outputs=True, verbose=False)
    history = train_classifier(model, train_ds, valid_ds, epochs=8, learning_rate=1e-2, seed=0, verbose=0,
                               part="head").history
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    assert "val_accuracy" in history
    assert ((predict_logits(model, texts)[:, 0] > 0) == labels).mean() >= 0.8


def test_cached_outputs_need_a_frozen_encoder(tiny_models):
    model = tfbert.create_classifier("tiny-hf", head="dense", train_encoder=True)
    with pytest.raises(tfbert.ConfigError, match="needs a frozen encoder"):
        make_dataset(model, ["a b", "c d"], [0, 1], encoder_outputs=True)


def test_cache_plan_respects_the_memory_cap(tiny_models, monkeypatch):
    model = tfbert.create_classifier("tiny-hf", head="bilstm", seq_length=32)
    texts, _ = toy_texts(50, seed=4)
    fits, megabytes = encoder_cache.plan(model, [texts, None])
    tokens = int(model.preprocessor.token_ids(texts).row_lengths().numpy().sum())
    assert fits and megabytes == pytest.approx(tokens * 32 * 4 / 2**20)
    monkeypatch.setenv("TFBERT_ENCODER_CACHE_MB", "0")
    assert encoder_cache.plan(model, [texts])[0] is False
