"""In-graph tokenizers that reproduce HuggingFace's ids.

``WordPieceTokenizer`` runs BERT's WordPiece tokenization with TensorFlow and
tensorflow-text ops only (usable in Keras models, ``tf.data`` and SavedModels
that load without tfbert) and gives the ids of HuggingFace's
``BertTokenizerFast`` for the same vocab and options::

    tok = WordPieceTokenizer.from_hf("path/to/hf_model")   # or (vocab, lower_case=...)
    ids = tok(tf.constant(["Hello world!", "ㅋㅋㅋ 재밌다"]))  # RaggedTensor [2, (tokens)]
    inputs = pack_inputs(ids, 128, tok.get_special_tokens_dict())
    # == HF tokenizer(texts, truncation=True, max_length=128, padding="max_length")

``official.nlp.modeling.layers.BertPackInputs(seq_length,
special_tokens_dict=tok.get_special_tokens_dict())`` gives the same result for
single sentences.  For sentence pairs it truncates round-robin, which differs
from HF's default "longest_first" (e.g. 10+10 tokens into 7: round-robin keeps
4+3, HF 3+4); ``pack_inputs`` / ``PackInputs`` truncate like HF.

In ``tf.data``, map the tokenizer over batches (``ds.batch(n).map(tok)``): a
call costs ~0.3 ms of fixed overhead, so per-string mapping is ~20x slower.

Known differences from the *slow* Python ``BertTokenizer`` (the fast one is
the reference; both agree on ordinary text):

* slow applies NFC before everything (decomposed ``e + U+0301`` differs when
  accents are not stripped, Hangul conjoining jamo get composed, CJK
  compatibility ideographs U+F900.. become unified ones);
* slow lower-cases with Python's ``str.lower`` per character and then strips
  accents; fast strips accents first, with older Unicode tables for
  punctuation and non-spacing marks (e.g. U+2E52.. are punctuation to Python,
  not to Rust);
* slow drops unassigned code points (category Cn) as control characters;
  fast keeps them (they become [UNK]);
* slow treats U+2B820..U+2B91F as CJK ideographs, fast does not.

Differences from the fast tokenizer itself: none known at the id level.  Two
character-level ones cannot change ids for vocabs without these characters
(a warning is logged otherwise): TensorFlow's NFD (ICU, Unicode 16)
decomposes 21 historic-script letters (Todhri, Tulu-Tigalari, Gurung Khema,
Kirat Rai, Dives Akuru) that the Rust NFD keeps; with ``clean_text=False`` a
literal U+FDD0 in lower-cased input comes back as NUL.
"""

from tfbert.tokenizers.wordpiece import PackInputs, WordPieceTokenizer, combine_segments, load_vocab, pack_inputs

__all__ = ["WordPieceTokenizer", "PackInputs", "pack_inputs", "combine_segments", "load_vocab"]
