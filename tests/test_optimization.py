import numpy as np
import pytest

import tfbert
from tfbert.optimization import create_optimizer


def test_linear_warmup_then_linear_decay():
    opt = create_optimizer(1e-3, train_steps=100, warmup_ratio=0.1)
    schedule = opt.learning_rate
    lrs = np.array([float(schedule(step)) for step in range(0, 101, 5)])
    assert lrs[0] == pytest.approx(0.0)
    assert float(schedule(5)) == pytest.approx(5e-4, rel=1e-3)   # halfway up the warmup
    assert float(schedule(10)) == pytest.approx(1e-3 * 0.9, rel=1e-2)  # decay has run 10 steps
    assert lrs.argmax() == 2  # the peak is at the end of warmup (step 10)
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-9)
    assert np.all(np.diff(lrs[2:]) < 0)


def test_weight_decay_and_clipping_are_parameters():
    opt = create_optimizer(2e-5, train_steps=10, weight_decay=0.05, clip_norm=0.5)
    assert type(opt).__name__ == "AdamWeightDecay"
    assert opt.weight_decay_rate == 0.05
    # clipping moved from AdamWeightDecay's own (per replica, before the sum) to a Keras gradient transformer
    assert opt.gradient_clip_norm == 0.0 and len(opt.gradient_transformers) == 1
    assert create_optimizer(2e-5, 10, clip_norm=None).gradient_transformers == []


def test_clipping_takes_the_norm_of_the_summed_embedding_rows():
    import tensorflow as tf

    from tfbert.optimization import clip_by_true_global_norm

    dense = tf.Variable(tf.zeros([2])), tf.Variable(tf.zeros([3, 2]))
    # two occurrences of token 1: the gradient row is their sum, [2, 0], norm 2 (their rows' norm would be 1.41)
    rows = tf.IndexedSlices(tf.constant([[1.0, 0.0], [1.0, 0.0]]), tf.constant([1, 1]), tf.constant([3, 2]))
    out = clip_by_true_global_norm(1.0)([(tf.constant([0.0, 0.0]), dense[0]), (rows, dense[1])])
    clipped = tf.convert_to_tensor(out[1][0]).numpy()
    np.testing.assert_allclose(clipped, [[0, 0], [1, 0], [0, 0]], atol=1e-6)


def test_weight_decay_shrinks_weights_without_gradient():
    import tensorflow as tf
    var = tf.Variable([1.0, -2.0], name="kernel")
    opt = create_optimizer(0.1, train_steps=10, warmup_ratio=0.0, weight_decay=0.5)
    opt.apply_gradients([(tf.zeros(2), var)])
    np.testing.assert_allclose(var.numpy(), [1.0 - 0.1 * 0.9 * 0.5 * 1.0 * 1 / 0.9 * 0.9, -2.0 + 0.1 * 0.5 * 2.0],
                               rtol=0.2)
    assert abs(var.numpy()[0]) < 1.0 and abs(var.numpy()[1]) < 2.0


def test_bad_optimizer_settings():
    with pytest.raises(tfbert.ConfigError, match="learning_rate must be > 0"):
        create_optimizer(0.0, 10)
    with pytest.raises(tfbert.ConfigError, match="at least one training step"):
        create_optimizer(1e-3, 0)
    with pytest.raises(tfbert.ConfigError, match="warmup_ratio"):
        create_optimizer(1e-3, 10, warmup_ratio=1.5)
