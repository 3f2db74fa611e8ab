"""The offline registry entry loads real pretrained weights (installed package)."""

import numpy as np

import tfbert


def test_minilm_entry_loads_real_weights_with_the_right_shapes():
    pre = tfbert.create_preprocessor("minilm-l6-h384-uncased", seq_length=32)
    encoder = tfbert.load_encoder("minilm-l6-h384-uncased", trainable=False)
    sentences = ["A man is eating food.", "A man is eating a piece of bread.",
                 "The new movie is awful.", "Stock markets fell sharply today."]
    inputs = pre(sentences)
    out = encoder(inputs)
    assert out["sequence_output"].shape == (4, 32, 384)
    assert out["pooled_output"].shape == (4, 384)
    assert len(encoder.weights) > 90  # 6 transformer layers, embeddings, pooler

    # Real sentence-embedding weights: mean-pooled vectors put paraphrases
    # close together, which random weights would not.
    mask = inputs["input_mask"].numpy()[:, :, None]
    mean = (out["sequence_output"].numpy() * mask).sum(1) / mask.sum(1)
    mean /= np.linalg.norm(mean, axis=1, keepdims=True)
    similarity = mean @ mean.T
    assert similarity[0, 1] > 0.6
    assert similarity[0, 1] > similarity[0, 2] + 0.3 and similarity[0, 1] > similarity[0, 3] + 0.3


def test_minilm_tokenizer_is_the_uncased_wordpiece():
    pieces, ids = tfbert.create_preprocessor("minilm-l6-h384-uncased").tokenize("Unbelievably GOOD!")
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]"
    assert ids[0] == 101 and ids[-1] == 102
    assert "good" in pieces and all(p == p.lower() for p in pieces[1:-1])
