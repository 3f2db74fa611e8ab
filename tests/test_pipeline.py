"""Length-aware batching, tokenize-once, sorted prediction, automatic length, bf16."""

import numpy as np
import pytest
import tensorflow as tf

import tfbert
from tfbert.pipeline import auto_seq_length, batches_per_epoch, fitted_boundaries, ids_dataset
from tfbert.testing import toy_texts
from tfbert.training import make_dataset, predict_logits, train_classifier


def _random_ids(n, seed=0, max_len=60):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, max_len, size=n)
    rows = [list(range(1000 * i + 1, 1000 * i + 1 + k)) for i, k in enumerate(lengths)]  # unique ids
    return tf.ragged.constant(rows, dtype=tf.int32), lengths


def test_bucketed_batches_hold_every_example_once_padded_to_own_longest():
    ids, lengths = _random_ids(203)
    labels = np.arange(203, dtype=np.int32)
    ds = ids_dataset(ids, labels, batch_size=16, shuffle=True, seed=3)
    seen = []
    batches = 0
    for features, y in ds:
        batches += 1
        word_ids, mask = features["input_word_ids"].numpy(), features["input_mask"].numpy()
        row_lengths = mask.sum(axis=1)
        assert word_ids.shape[1] == row_lengths.max(), "batch padded beyond its longest member"
        np.testing.assert_array_equal(row_lengths, lengths[y.numpy()])
        # every row is the example's own ids, then padding
        for row, label, k in zip(word_ids, y.numpy(), row_lengths):
            assert row[0] == 1000 * label + 1 and np.all(row[k:] == 0)
        seen.extend(y.numpy().tolist())
    assert sorted(seen) == list(range(203))
    bounds = fitted_boundaries(lengths, 16)
    assert batches == int(ds.cardinality()) == batches_per_epoch(lengths, 16, bounds)
    # every bucket holds at least 4 full batches, so few batches are partial
    counts = np.bincount(np.searchsorted(bounds, lengths, side="right"))
    assert counts.min() >= 64 and batches <= int(np.ceil(203 / 16)) + len(bounds)
    # batches group similar lengths: far less padding than one global length
    padded_cells = sum(int(f["input_word_ids"].shape[0] * f["input_word_ids"].shape[1]) for f, _ in ds)
    assert padded_cells < 0.8 * 203 * lengths.max()


def test_fixed_padding_option_pads_every_batch_to_the_same_length():
    ids, _ = _random_ids(40)
    ds = ids_dataset(ids, np.zeros(40, np.int32), batch_size=8, pad_to=64, bucketing=False)
    assert {tuple(f["input_word_ids"].shape) for f, _ in ds} == {(8, 64)}


@pytest.mark.parametrize("backend", ["tfhub", "huggingface"])
def test_predictions_come_back_in_input_order(tiny_models, backend):
    model = tfbert.create_classifier(tiny_models[backend], head="dense", seq_length=32)
    texts, _ = toy_texts(37, seed=5)
    texts = [t * (1 + i % 4) for i, t in enumerate(texts)]  # varied lengths
    sorted_logits = predict_logits(model, texts, batch_size=8)
    one_by_one = np.concatenate([predict_logits(model, [t]) for t in texts[:10]])
    np.testing.assert_allclose(sorted_logits[:10], one_by_one, atol=1e-5)
    plain = model.core.predict(make_dataset(model, texts, bucketing=False, batch_size=37), verbose=0)
    np.testing.assert_allclose(sorted_logits, plain, atol=1e-5)


def test_static_shapes_bound_the_number_of_batch_lengths():
    ids, lengths = _random_ids(300, seed=2, max_len=120)
    labels = np.arange(300, dtype=np.int32)
    dynamic = ids_dataset(ids, labels, batch_size=16)
    static = ids_dataset(ids, labels, batch_size=16, static_shapes=True)
    bounds = fitted_boundaries(lengths, 16)
    widths, seen = set(), []
    for features, y in static:
        mask = features["input_mask"].numpy()
        widths.add(mask.shape[1])
        assert mask.shape[1] >= mask.sum(axis=1).max()
        np.testing.assert_array_equal(mask.sum(axis=1), lengths[y.numpy()])
        seen.extend(y.numpy().tolist())
    assert sorted(seen) == list(range(300))
    assert widths <= {b - 1 for b in bounds} | {int(lengths.max())}
    assert len({int(f["input_mask"].shape[1]) for f, _ in dynamic}) > len(widths)
    assert int(static.cardinality()) == int(dynamic.cardinality())


def test_static_shape_prediction_matches_dynamic(tiny_models):
    model = tfbert.create_classifier("tiny-hf", head="dense", seq_length=64)
    texts, _ = toy_texts(40, seed=8)
    texts = [t * (1 + i % 6) for i, t in enumerate(texts)]
    dynamic = predict_logits(model, texts, batch_size=8)
    static = predict_logits(model, texts, batch_size=8, static_shapes=True)
    np.testing.assert_allclose(static, dynamic, atol=1e-5)
    ids = model.preprocessor.token_ids(texts)
    from tfbert.pipeline import STATIC_MULTIPLE, sorted_batches
    ds, _ = sorted_batches(ids, 8, 0, model.preprocessor.input_names, static_shapes=True)
    assert all(int(f["input_word_ids"].shape[1]) % STATIC_MULTIPLE == 0 for f in ds)


def test_auto_length_covers_the_requested_percentile():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 300, size=1000)
    for pct in (50, 90, 99):
        length, truncated = auto_seq_length(lengths, max_length=512, percentile=pct)
        assert (lengths <= length).mean() >= pct / 100
        assert length % 8 == 0 and length - 8 < np.percentile(lengths, pct)
        assert truncated == int((lengths > length).sum())
    assert auto_seq_length(lengths, max_length=128)[0] == 128  # capped at the model's limit
    with pytest.raises(tfbert.ConfigError, match="percentile"):
        auto_seq_length(lengths, 128, percentile=0)


def test_mixed_bfloat16_model_learns_and_gives_float32_outputs(tiny_models):
    import tf_keras as keras
    texts, labels = toy_texts(64, seed=1)
    model = tfbert.create_classifier("tiny-hf", head="dense", seq_length=16, precision="bfloat16")
    assert model.precision == "bfloat16"
    assert model.encoder.compute_dtype == "bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"  # not leaked
    ds = make_dataset(model, texts, labels, batch_size=16, shuffle=True)
    history = train_classifier(model, ds, epochs=10, learning_rate=1e-2, seed=0, verbose=0).history
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    logits = predict_logits(model, texts)
    assert logits.dtype == np.float32
    assert ((logits[:, 0] > 0) == labels).mean() >= 0.9


def test_unknown_precision_is_a_clear_error(tiny_models):
    with pytest.raises(tfbert.ConfigError, match="precision must be one of auto, bfloat16, float32"):
        tfbert.create_classifier("tiny-hf", precision="fp8")
