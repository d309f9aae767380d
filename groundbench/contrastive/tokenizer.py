"""A word-level tokenizer learned from training captions, saved the way ``transformers`` loads it.

Lower-cased, split on whitespace and punctuation (``tokenizers``' ``Whitespace``), every word
seen in the captions gets an id; unseen words map to ``[UNK]``. Each text becomes
``[BOS] words… [EOS]``. Ids 0–3 are ``[PAD] [UNK] [BOS] [EOS]``; ``[EOS]`` is id 3 so
``CLIPModel`` pools the text at the first ``[EOS]`` (its legacy arg-max rule applies only to id 2).
"""

from __future__ import annotations

from collections.abc import Iterable

SPECIALS = ("[PAD]", "[UNK]", "[BOS]", "[EOS]")
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(4)


def _backend(vocab: dict[str, int]):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[BOS] $A [EOS]", special_tokens=[("[BOS]", BOS_ID), ("[EOS]", EOS_ID)]
    )
    return tok


def build_tokenizer(texts: Iterable[str], *, max_tokens: int):
    """Return a ``PreTrainedTokenizerFast`` whose vocabulary is every word of ``texts``.

    Args:
        texts: the training captions (words are numbered in sorted order, so the ids do not
            depend on caption order).
        max_tokens: ``model_max_length`` ([BOS] and [EOS] included).

    Example:
        >>> tok = build_tokenizer(["a red circle", "the circle"], max_tokens=8)
        >>> tok("A circle, red")["input_ids"]
        [2, 4, 5, 1, 6, 3]
    """
    from transformers import PreTrainedTokenizerFast

    pre = _backend({s: i for i, s in enumerate(SPECIALS)}).pre_tokenizer
    words = sorted(
        {w.lower() for t in texts for w, _ in pre.pre_tokenize_str(t.lower())} - set(SPECIALS)
    )
    vocab = {s: i for i, s in enumerate(SPECIALS)} | {w: i + 4 for i, w in enumerate(words)}
    return PreTrainedTokenizerFast(
        tokenizer_object=_backend(vocab),
        pad_token="[PAD]",
        unk_token="[UNK]",
        bos_token="[BOS]",
        eos_token="[EOS]",
        model_max_length=max_tokens,
    )
