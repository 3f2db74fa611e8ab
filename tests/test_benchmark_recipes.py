"""benchmarks/recipes.py: the usual recipe's pipelines differ from tfbert's only in what they measure."""

import sys
from pathlib import Path

import numpy as np
import pytest

import tfbert
from tfbert.testing import toy_texts
from tfbert.training import make_dataset

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from recipes import fixed_padding_dataset, per_epoch_tokenizing_dataset  # noqa: E402


@pytest.mark.parametrize("backend", ["tfhub", "huggingface"])
def test_tokenize_once_matches_the_per_epoch_pipeline(tiny_models, backend):
    model = tfbert.create_classifier(tiny_models[backend], head="dense", seq_length=16)
    texts, labels = toy_texts(20, seed=4)
    cached = fixed_padding_dataset(model, texts, labels, batch_size=20, pad_to=16)
    per_epoch = per_epoch_tokenizing_dataset(model, texts, labels, batch_size=20, pad_to=16)
    (a, ya), (b, yb) = next(iter(cached)), next(iter(per_epoch))
    for key in a:
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())
    np.testing.assert_array_equal(ya.numpy(), yb.numpy())


@pytest.mark.parametrize("backend", ["tfhub", "huggingface"])
def test_per_epoch_tokenizing_keeps_the_same_length_buckets(tiny_models, backend):
    model = tfbert.create_classifier(tiny_models[backend], head="dense", seq_length=32)
    texts, labels = toy_texts(48, seed=6)
    texts = [t * (1 + i % 5) for i, t in enumerate(texts)]
    cached = list(make_dataset(model, texts, labels, batch_size=4))
    per_epoch = list(per_epoch_tokenizing_dataset(model, texts, labels, batch_size=4))
    assert len(cached) == len(per_epoch) > 12 / 4
    for (a, ya), (b, yb) in zip(cached, per_epoch):
        np.testing.assert_array_equal(a["input_word_ids"].numpy(), b["input_word_ids"].numpy())
        np.testing.assert_array_equal(ya.numpy(), yb.numpy())
    widths = {int(f["input_word_ids"].shape[1]) for f, _ in per_epoch}
    assert len(widths) > 1, "per-epoch batches should be padded to their own longest"


def test_fixed_padding_pads_every_batch_to_the_length(tiny_models):
    model = tfbert.create_classifier("tiny-hf", head="dense", seq_length=16)
    texts, labels = toy_texts(20, seed=5)
    widths = {int(f["input_word_ids"].shape[1]) for f, _ in fixed_padding_dataset(model, texts, labels, batch_size=8)}
    assert widths == {16}
