"""tfbert.training: compile and fit the part of a TextClassifier that the batches feed."""

import numpy as np
import pytest
import tensorflow as tf

import tfbert
from tfbert.testing import toy_texts
from tfbert.training import compile_classifier, make_dataset, predict_logits, train_classifier


@pytest.mark.parametrize("head,expected", [("dense", 3e-5), ("cls_bn", 1e-3)])
def test_compile_uses_the_heads_learning_rate_unless_given(tiny_models, head, expected):
    model = tfbert.create_classifier("tiny-hf", head=head, seq_length=8)
    target = compile_classifier(model, train_steps=10, warmup_ratio=0.0, part="core")
    assert target is model.core
    assert float(target.optimizer.learning_rate(0)) == pytest.approx(expected)
    target = compile_classifier(model, train_steps=10, learning_rate=0.5, warmup_ratio=0.0)
    assert target is model and float(target.optimizer.learning_rate(0)) == pytest.approx(0.5)


def test_fitting_the_text_model_directly_learns(tiny_models):
    """The Keras way for TF Hub entries: raw strings in, the whole model fitted (part="model")."""
    import tf_keras as keras

    keras.utils.set_random_seed(0)  # the head's initial weights must not depend on what ran before in this process
    texts, labels = toy_texts(64, seed=5)
    model = tfbert.create_classifier("tiny-tfhub", head="dense", seq_length=16)
    ds = tf.data.Dataset.from_tensor_slices((texts, labels.astype(np.float32)[:, None])).shuffle(64, seed=0).batch(16)
    history = train_classifier(model, ds, epochs=8, learning_rate=1e-2, seed=0, verbose=0, part="model").history
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert ((predict_logits(model, texts)[:, 0] > 0) == labels).mean() >= 0.85


def test_unknown_part_and_mismatched_labels_are_one_line_errors(tiny_models):
    model = tfbert.create_classifier("tiny-hf", head="dense", seq_length=8)
    ds = make_dataset(model, ["a b", "c d"], [0, 1])
    with pytest.raises(tfbert.ConfigError, match="unknown model part 'encoder'; choose one of: model, core, head"):
        train_classifier(model, ds, epochs=1, part="encoder")
    with pytest.raises(tfbert.ConfigError, match="epochs must be >= 1"):
        train_classifier(model, ds, epochs=0)
    with pytest.raises(tfbert.DataError, match="label id 3 at position 0 is outside 0..1"):
        make_dataset(model, ["a"], [3])


def test_multiclass_labels_stay_int_and_binary_become_one_float_column(tiny_models):
    binary = tfbert.create_classifier("tiny-hf", head="dense", seq_length=8)
    three = tfbert.create_classifier("tiny-hf", head="dense", seq_length=8, class_names=["a", "b", "c"])
    _, y2 = next(iter(make_dataset(binary, ["x", "y"], [0, 1], bucketing=False)))
    _, y3 = next(iter(make_dataset(three, ["x", "y", "z"], [0, 2, 1], bucketing=False)))
    assert y2.dtype == tf.float32 and y2.shape == (2, 1)
    assert y3.dtype == tf.int32 and y3.numpy().tolist() == [0, 2, 1]


def test_warmup_steps_override_the_ratio(tiny_models):
    model = tfbert.create_classifier("tiny-hf", head="dense", seq_length=8)
    target = compile_classifier(model, train_steps=100, learning_rate=1e-3, warmup_ratio=0.5, warmup_steps=4)
    schedule = target.optimizer.learning_rate
    assert float(schedule(2)) == pytest.approx(5e-4, rel=1e-3)  # halfway up a 4-step warmup
    assert float(schedule(4)) > float(schedule(10)) > float(schedule(50))  # then decay, not 50 steps up


def test_accumulating_four_batches_of_8_updates_like_one_batch_of_32(tiny_models):
    """Same start, same 32 examples: 4 x 8 accumulated and 1 x 32 must end with the same weights.

    The encoder is frozen (a trained one runs its own dropout) and the head has no dropout, so the
    only difference left is how the gradients are summed.
    """
    import tf_keras as keras

    texts, labels = toy_texts(32, seed=12)
    options = dict(head="dense", seq_length=16, dropout=0.0, train_encoder=False, precision="float32")
    keras.utils.set_random_seed(1)
    big = tfbert.create_classifier("tiny-hf", **options)
    small = tfbert.create_classifier("tiny-hf", **options)
    small.core.set_weights(big.core.get_weights())
    start = [w.copy() for w in small.core.get_layer("logits").get_weights()]
    schedule = dict(epochs=3, learning_rate=1e-2, warmup_ratio=0.0, seed=0, verbose=0)
    train_classifier(big, make_dataset(big, texts, labels, batch_size=32, bucketing=False), **schedule)
    history = train_classifier(small, make_dataset(small, texts, labels, batch_size=8, bucketing=False),
                               accumulation_steps=4, **schedule)
    for a, b in zip(big.core.get_weights(), small.core.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert int(history.model.optimizer.iterations.numpy()) == 3  # one update per 4 batches
    moved = [np.abs(a - b).max() for a, b in zip(small.core.get_layer("logits").get_weights(), start)]
    assert max(moved) > 1e-3  # the head did train: equal weights are not just the starting ones
