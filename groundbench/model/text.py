"""Words: a regex tokenizer with character spans, a vocabulary, word classes, the text encoder.

The vocabulary is built from the training captions and stored in the checkpoint as a list of
strings, so a checkpoint decodes exactly the words it was trained on. Word classes (content,
relation, other) steer targeted masking; they come from two small English lexicons, never
from boxes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import torch
from torch import nn

from groundbench.model.blocks import Block

PAD, UNK, MASK = "<pad>", "<unk>", "<mask>"
SPECIALS: tuple[str, ...] = (PAD, UNK, MASK)
PAD_ID, UNK_ID, MASK_ID = 0, 1, 2

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+|[^\sa-z\d]")

RELATION_WORDS = frozenset(
    "left right above below under over beneath underneath next beside besides between near "
    "behind front top bottom inside outside around across beyond closest nearest farthest "
    "leftmost rightmost upper lower middle centre center".split()
)
STOP_WORDS = frozenset(
    "a an the is are was were be of to in on at by for from with and or but as it its this "
    "that these those there here which who what where one ones some any each both all two "
    "three four five several other another image picture photo scene shows showing show has "
    "have can see seen".split()
)
GROUP_BREAKS = RELATION_WORDS | {"and", ",", ";", "while", "with"}


def tokenize(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Split ``text`` into lowercase words and punctuation with their character spans.

    Example:
        >>> tokenize("A red circle, left")
        (['a', 'red', 'circle', ',', 'left'], [(0, 1), (2, 5), (6, 12), (12, 13), (14, 18)])
    """
    words, spans = [], []
    for m in _WORD.finditer(text.lower()):
        words.append(m.group())
        spans.append(m.span())
    return words, spans


def word_class(word: str) -> str:
    """Return ``relation``, ``other`` (stop words, punctuation, numbers) or ``content``."""
    if word in RELATION_WORDS:
        return "relation"
    if word in STOP_WORDS or not word.isalpha():
        return "other"
    return "content"


def phrase_groups(words: Sequence[str]) -> list[int]:
    """Number the noun phrases of a caption: a new group starts after a relation or ``and``.

    Content words in different groups name different objects (used by the distractor loss).

    Example:
        >>> phrase_groups("a red circle left of a blue square".split())
        [0, 0, 0, 1, 1, 1, 1, 1]
    """
    out, group, broke = [], 0, False
    for w in words:
        if w in GROUP_BREAKS:
            if not broke:
                group += 1
                broke = True
        else:
            broke = False
        out.append(group)
    return out


def token_indices_in_span(spans: Sequence[tuple[int, int]], span: tuple[int, int]) -> list[int]:
    """Return the indices of the tokens overlapping the character ``span`` (end exclusive)."""
    start, end = span
    return [i for i, (s, e) in enumerate(spans) if s < end and e > start]


class Vocabulary:
    """Word ↔ id mapping; ids 0, 1, 2 are ``<pad>``, ``<unk>``, ``<mask>``.

    Example:
        >>> vocab = Vocabulary.build(["a red circle", "a blue circle"])
        >>> vocab.encode("a red square", max_words=4)
        [3, 6, 1]
    """

    def __init__(self, words: Sequence[str]) -> None:
        if tuple(words[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary must start with {SPECIALS}, got {list(words[:3])}")
        if len(set(words)) != len(words):
            raise ValueError("a vocabulary must not repeat a word")
        self.words: list[str] = list(words)
        self._ids = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, texts: Iterable[str], *, min_count: int = 1) -> Vocabulary:
        """Collect every word seen at least ``min_count`` times, sorted for determinism."""
        counts = Counter(w for t in texts for w in tokenize(t)[0])
        kept = sorted(w for w, c in counts.items() if c >= min_count)
        return cls([*SPECIALS, *kept])

    def __len__(self) -> int:
        return len(self.words)

    def id(self, word: str) -> int:
        """Return the id of ``word`` (``<unk>`` when unseen)."""
        return self._ids.get(word, UNK_ID)

    def encode(self, text: str, *, max_words: int) -> list[int]:
        """Return the ids of the first ``max_words`` words of ``text``."""
        return [self.id(w) for w in tokenize(text)[0][:max_words]]


class TextEncoder(nn.Module):
    """Word embeddings + learned positions + transformer blocks over the words."""

    def __init__(
        self, vocab_size: int, dim: int, heads: int, layers: int, max_words: int, mlp_ratio: float
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.pos = nn.Parameter(torch.zeros(1, max_words, dim))
        nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, ids: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """Encode ``ids (B, T)`` long with ``pad (B, T)`` bool (True = padding) → ``(B, T, D)``."""
        x = self.embed(ids) + self.pos[:, : ids.shape[1]]  # B T D
        for block in self.blocks:
            x = block(x, key_pad=pad)
        return self.norm(x)
