"""Tiny encoders and a toy task, for tests and offline demos.

The encoders are saved in the same formats as real remote models (a TF Hub
encoder + preprocess SavedModel pair, and a HuggingFace ``save_pretrained``
folder) so that tests load them through the real registry and loaders.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
POSITIVE = ["good", "great", "excellent", "wonderful", "superb"]
NEGATIVE = ["bad", "awful", "terrible", "boring", "poor"]
NEUTRAL = ["okay", "average", "fine", "plain", "so-so"]
FILLER = ["the", "movie", "film", "was", "really", "plot", "actor", "story", "and", "a",
          "this", "it", "very", "quite", "scene", "music", "ending", "i", "thought", "overall"]


def toy_vocab() -> list[str]:
    """A small lower-case WordPiece vocabulary covering the toy task and ASCII."""
    words = sorted(set(POSITIVE + NEGATIVE + NEUTRAL + FILLER) - {"so-so"}) + ["so", "-"]
    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789.,!?'\"")
    chars = [c for c in chars if c not in words]
    return SPECIAL_TOKENS + words + chars + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]


def write_vocab(path: str | os.PathLike, vocab: list[str] | None = None) -> str:
    Path(path).write_text("\n".join(vocab or toy_vocab()) + "\n", encoding="utf-8")
    return str(path)


def toy_texts(n: int = 64, num_classes: int = 2, seed: int = 0):
    """A learnable task: the label is the sentiment word hidden among filler words.

    Returns (texts, labels) with labels 0..num_classes-1 (negative, positive,
    neutral); classes are balanced.
    """
    rng = np.random.default_rng(seed)
    keywords = [NEGATIVE, POSITIVE, NEUTRAL][:num_classes]
    texts, labels = [], []
    for i in range(n):
        label = i % num_classes
        words = list(rng.choice(FILLER, size=rng.integers(3, 9)))
        words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(keywords[label])))
        texts.append(" ".join(words))
        labels.append(label)
    order = rng.permutation(n)
    return [texts[i] for i in order], np.asarray(labels, dtype=np.int32)[order]


def toy_values(n: int = 64, seed: int = 0):
    """A learnable regression task on a 0-5 scale (as STS): 0 for a negative word, 2.5 neutral, 5 positive.

    Returns (texts, float32 values)."""
    texts, labels = toy_texts(n, num_classes=3, seed=seed)
    return texts, labels.astype(np.float32) * 2.5


TAGS = ("negative", "positive", "neutral")


def toy_tags(n: int = 64, seed: int = 0):
    """A learnable multi-label task: a text's tags are the kinds of keyword it holds (any of ``TAGS``, or none).

    Returns (texts, list of tag lists); every subset of the tags occurs equally often."""
    rng = np.random.default_rng(seed)
    texts, tags = [], []
    for i in range(n):
        chosen = [tag for bit, tag in enumerate(TAGS) if (i % 8) >> bit & 1]
        words = list(rng.choice(FILLER, size=rng.integers(3, 8)))
        for tag in chosen:
            group = [NEGATIVE, POSITIVE, NEUTRAL][TAGS.index(tag)]
            words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(group)))
        texts.append(" ".join(words))
        tags.append(chosen)
    order = rng.permutation(n)
    return [texts[i] for i in order], [tags[i] for i in order]


def make_tiny_hf_bert(folder: str | os.PathLike, hidden_size: int = 32, num_layers: int = 2,
                      num_heads: int = 2, max_positions: int = 128, seed: int = 0, dropout: float = 0.1,
                      mlm_head: bool = False) -> str:
    """A random tiny BERT saved with ``save_pretrained`` (weights + tokenizer).

    ``dropout=0`` makes training deterministic across processes (TF's random
    ops restart in each), for tests that compare runs bit for bit. ``mlm_head``
    saves a ``TFBertForMaskedLM`` whose output bias and transform kernel are drawn
    large (HF starts them at zero and 0.02), so a copy that drops the bias or
    builds the head with another GELU predicts visibly otherwise.
    """
    import tensorflow as tf
    from transformers import BertConfig, BertTokenizerFast, TFBertForMaskedLM, TFBertModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab_file = write_vocab(folder / "vocab.txt")
    tf.random.set_seed(seed)
    config = BertConfig(vocab_size=len(toy_vocab()), hidden_size=hidden_size,
                        num_hidden_layers=num_layers, num_attention_heads=num_heads,
                        intermediate_size=hidden_size * 2, max_position_embeddings=max_positions,
                        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    model = (TFBertForMaskedLM if mlm_head else TFBertModel)(config)
    model(model.dummy_inputs)
    for weight in model.weights:
        if mlm_head and weight.name.endswith(("predictions/bias:0", "transform/dense/kernel:0")):
            weight.assign(tf.random.normal(weight.shape, stddev=0.5, seed=seed))
    model.save_pretrained(folder)
    BertTokenizerFast(vocab_file=vocab_file, do_lower_case=True,
                      model_max_length=max_positions).save_pretrained(folder)
    return str(folder)


def make_tiny_tfhub_bert(folder: str | os.PathLike, hidden_size: int = 32, num_layers: int = 2,
                         num_heads: int = 2, max_positions: int = 128, seed: int = 0) -> str:
    """A random tiny BERT as a TF Hub pair: ``folder/encoder`` and ``folder/preprocess``."""
    import tensorflow as tf
    from official.nlp.modeling import networks

    from tfbert.hub_format import save_hub_encoder, save_hub_preprocess

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab_file = write_vocab(folder / "vocab.txt")
    tf.random.set_seed(seed)
    network = networks.BertEncoderV2(
        vocab_size=len(toy_vocab()), hidden_size=hidden_size, num_layers=num_layers,
        num_attention_heads=num_heads, max_sequence_length=max_positions, type_vocab_size=2,
        inner_dim=hidden_size * 2)
    save_hub_encoder(network, str(folder / "encoder"), vocab_file=vocab_file, do_lower_case=True)
    save_hub_preprocess(str(folder / "preprocess"), vocab_file=vocab_file, do_lower_case=True)
    return str(folder)


# ------------------------------------------------------------- other checkpoint formats

KOREAN_POSITIVE = ["재밌다", "최고", "좋아요", "감동"]
KOREAN_NEGATIVE = ["별로", "아깝다", "지루하다", "최악"]
KOREAN_FILLER = ["영화", "정말", "배우", "연기", "너무", "시간", "스토리", "이", "진짜", "평점"]


def toy_bilingual_texts(n: int = 64, seed: int = 0):
    """The toy task in Korean and English: half the texts Korean, the label still one hidden word."""
    rng = np.random.default_rng(seed)
    texts, labels = toy_texts(n, 2, seed)
    for i in range(0, n, 2):
        words = list(rng.choice(KOREAN_FILLER, size=rng.integers(3, 8)))
        keyword = rng.choice([KOREAN_NEGATIVE, KOREAN_POSITIVE][int(labels[i])])
        words.insert(int(rng.integers(0, len(words) + 1)), str(keyword))
        texts[i] = " ".join(words)
    return texts, labels


def train_sentencepiece(path: str | os.PathLike, texts, vocab_size: int = 160, **trainer_args) -> str:
    """A small unigram SentencePiece model trained on ``texts`` (ids as ``trainer_args`` say)."""
    import io

    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(list(texts)), model_writer=model,
                                   vocab_size=vocab_size, hard_vocab_limit=False, character_coverage=1.0,
                                   minloglevel=2, **trainer_args)
    Path(path).write_bytes(model.getvalue())
    return str(path)


def make_tiny_hf_sentencepiece(folder: str | os.PathLike, style: str = "xlmr", hidden_size: int = 32,
                               num_layers: int = 1, seed: int = 0) -> str:
    """A random tiny model with a SentencePiece tokenizer trained here, as ``save_pretrained`` folders.

    ``style="xlmr"``: XLM-R (``XLMRobertaTokenizer``, fairseq id offset, no segments).
    ``style="kobert"``: KoBERT's layout: a BERT model whose ``spiece.model`` ids are its
    embedding rows ([UNK] 0, [PAD] 1, [CLS] 2, [SEP] 3, [MASK] 4) and whose
    ``tokenizer_config.json`` names ``XLNetTokenizer``, as ``skt/kobert-base-v1`` does.
    """
    import json

    import tensorflow as tf
    import transformers as hf

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    texts = toy_bilingual_texts(400, seed=seed)[0] + ["0123456789 .,!?'\"-"] * 5
    sizes = dict(hidden_size=hidden_size, num_hidden_layers=num_layers, num_attention_heads=2,
                 intermediate_size=hidden_size * 2)
    if style == "xlmr":
        model_file = train_sentencepiece(folder / "sp.model", texts)
        tokenizer = hf.XLMRobertaTokenizer(model_file, model_max_length=128)
        config = hf.XLMRobertaConfig(vocab_size=len(tokenizer), max_position_embeddings=130,
                                     type_vocab_size=1, pad_token_id=1, **sizes)
        model_class = hf.TFXLMRobertaModel
    elif style == "kobert":
        model_file = train_sentencepiece(folder / "sp.model", texts, unk_id=0, pad_id=1, bos_id=-1, eos_id=-1,
                                         unk_piece="[UNK]", pad_piece="[PAD]",
                                         user_defined_symbols=["[CLS]", "[SEP]", "[MASK]"])
        from tfbert.tokenizers.kobert import KoBERTTokenizer
        tokenizer = KoBERTTokenizer(model_file, model_max_length=128)
        config = hf.BertConfig(vocab_size=len(tokenizer), max_position_embeddings=128, pad_token_id=1, **sizes)
        model_class = hf.TFBertModel
    else:
        raise ValueError(f"style must be xlmr or kobert, got {style!r}")
    tokenizer.save_pretrained(folder)
    Path(model_file).unlink()
    if style == "kobert":
        settings = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        settings["tokenizer_class"] = "XLNetTokenizer"
        (folder / "tokenizer_config.json").write_text(json.dumps(settings), encoding="utf-8")
    tf.random.set_seed(seed)
    model = model_class(config)
    model(model.dummy_inputs)
    model.save_pretrained(folder)
    return str(folder)


def save_pytorch_safetensors(tf_model, path: str | os.PathLike, prefix: str = "") -> str:
    """A HF TF model's weights as PyTorch's ``save_pretrained`` would write them, without torch.

    Tensor names are PyTorch's (``embeddings.word_embeddings.weight``; dense
    kernels transposed), and the metadata says ``format: pt``. ``prefix``
    strips a leading name (``"bert."`` for a base model, as PyTorch saves it).
    """
    from safetensors.numpy import save_file
    from transformers.modeling_tf_pytorch_utils import TransposeType, convert_tf_weight_name_to_pt_weight_name

    state = {}
    for weight in tf_model.weights:
        name, transpose = convert_tf_weight_name_to_pt_weight_name(weight.name, tf_weight_shape=weight.shape)
        value = weight.numpy()
        state[name.removeprefix(prefix)] = np.ascontiguousarray(
            value.T if transpose is TransposeType.SIMPLE else value)
    save_file(state, str(path), metadata={"format": "pt"})
    return str(path)


def make_tiny_pytorch_safetensors_bert(folder: str | os.PathLike, tf_folder: str | os.PathLike) -> str:
    """``tf_folder`` (from :func:`make_tiny_hf_bert`) re-saved as a PyTorch-only ``model.safetensors`` folder."""
    import shutil

    from transformers import TFBertModel

    folder, tf_folder = Path(folder), Path(tf_folder)
    folder.mkdir(parents=True, exist_ok=True)
    for item in tf_folder.iterdir():
        if item.is_file() and item.name != "tf_model.h5":
            shutil.copy(item, folder / item.name)
    save_pytorch_safetensors(TFBertModel.from_pretrained(str(tf_folder)), folder / "model.safetensors",
                             prefix="bert.")
    return str(folder)


def toy_pairs(n: int = 64, seed: int = 0, keywords: int = 5, max_filler: int = 5, filler_words: int = 20,
              rule: str = "agree"):
    """A sentence-pair task: each text hides one sentiment word among filler words.

    ``rule="agree"``: the label is 1 ("same") when both words have the same
    polarity, else 0: either text alone says nothing about it (an XOR, which
    tiny random encoders learn only sometimes). ``rule="second"``: the label
    is the polarity of the second text's word, the first text's word is of
    random polarity: the first text alone says nothing, and a model that
    cannot tell the two texts apart sees two conflicting words. ``keywords``
    sentiment words per polarity and up to ``max_filler`` filler words (drawn
    from ``filler_words`` of them) make it harder. Returns (texts,
    text_pairs, labels), classes balanced.
    """
    rng = np.random.default_rng(seed)
    polarities = [NEGATIVE[:keywords], POSITIVE[:keywords]]

    def review(polarity: int) -> str:
        words = list(rng.choice(FILLER[:filler_words], size=rng.integers(0, max_filler + 1)))
        words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(polarities[polarity])))
        return " ".join(words)

    texts, pairs, labels = [], [], []
    for i in range(n):
        label, first = i % 2, int(rng.integers(0, 2))
        second = label if rule == "second" else (first if label else 1 - first)
        texts.append(review(first))
        pairs.append(review(second))
        labels.append(label)
    order = rng.permutation(n)
    return [texts[i] for i in order], [pairs[i] for i in order], np.asarray(labels, dtype=np.int32)[order]
