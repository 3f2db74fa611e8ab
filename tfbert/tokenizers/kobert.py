"""KoBERT's tokenizer: its SentencePiece model, laid out the way BERT reads it.

SKT's ``skt/kobert-base-v1`` ships a ``spiece.model`` whose piece ids are the
model's embedding rows, but its ``tokenizer_config.json`` names
``XLNetTokenizer``, so ``AutoTokenizer`` builds an XLNet layout: ``X [SEP]
[CLS]``, padding on the left and segment id 2 on [CLS]. A BERT model then
reads [SEP] as the sentence vector and meets a segment id it has no
embedding for. SKT's fix is a separate package (``kobert_tokenizer``); this
class does the same with nothing to install: ``[CLS] X [SEP]``
(``[CLS] A [SEP] B [SEP]`` for pairs), right padding, segment ids 0 and 1.
"""

from __future__ import annotations

from transformers import XLNetTokenizer


class KoBERTTokenizer(XLNetTokenizer):
    """``XLNetTokenizer``'s SentencePiece handling with BERT's special-token layout.

    Args:
        vocab_file: str. The SentencePiece model (``spiece.model``).
        Other arguments as ``XLNetTokenizer``; the special tokens default to
        BERT's (``[CLS]``, ``[SEP]``, ``[PAD]``, ``[UNK]``, ``[MASK]``) and no
        extra tokens are added, so every id is a row of the model's embeddings.
    """

    padding_side = "right"

    def __init__(self, vocab_file, do_lower_case=False, remove_space=True, keep_accents=False,
                 bos_token="[CLS]", eos_token="[SEP]", unk_token="[UNK]", sep_token="[SEP]",
                 pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]",
                 additional_special_tokens=None, **kwargs):
        # XLNet's defaults add <eop> and <eod> as new ids past the model's vocabulary.
        super().__init__(vocab_file, do_lower_case=do_lower_case, remove_space=remove_space,
                         keep_accents=keep_accents, bos_token=bos_token, eos_token=eos_token,
                         unk_token=unk_token, sep_token=sep_token, pad_token=pad_token,
                         cls_token=cls_token, mask_token=mask_token,
                         additional_special_tokens=additional_special_tokens or [], **kwargs)
        self._pad_token_type_id = 0

    def build_inputs_with_special_tokens(self, token_ids_0, token_ids_1=None):
        cls, sep = [self.cls_token_id], [self.sep_token_id]
        if token_ids_1 is None:
            return cls + token_ids_0 + sep
        return cls + token_ids_0 + sep + token_ids_1 + sep

    def get_special_tokens_mask(self, token_ids_0, token_ids_1=None, already_has_special_tokens=False):
        if already_has_special_tokens:
            return super(XLNetTokenizer, self).get_special_tokens_mask(
                token_ids_0, token_ids_1, already_has_special_tokens=True)
        if token_ids_1 is None:
            return [1] + [0] * len(token_ids_0) + [1]
        return [1] + [0] * len(token_ids_0) + [1] + [0] * len(token_ids_1) + [1]

    def create_token_type_ids_from_sequences(self, token_ids_0, token_ids_1=None):
        first = [0] * (len(token_ids_0) + 2)
        return first if token_ids_1 is None else first + [1] * (len(token_ids_1) + 1)
