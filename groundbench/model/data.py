"""Training data, decoded once: a uint8 image tensor and (phrase, hidden word) pairs as index tensors.

:func:`build_training_data` accepts only :class:`~groundbench.types.CaptionRecord` (which has
no box field), so no grounding annotation can reach training. Every caption is chunked
(:func:`~groundbench.model.language.parse`); each known word of each noun phrase gives one
pair: the word is the target, the phrase's *other* words are the query, and a related phrase
(if any) with its relation code shifts the attention. A step then only indexes these
tensors: its Python work does not grow with the batch, and on a GPU everything stays there.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from PIL import Image

from groundbench.digest import file_sha256
from groundbench.errors import DataFormatError
from groundbench.model.config import Config
from groundbench.model.grounding import NO_RELATION, relation_code
from groundbench.model.language import Parse, Vocabulary, parse
from groundbench.progress import progress_bar
from groundbench.types import CaptionRecord


def image_digest(path: str) -> str:
    """First 16 hex characters of the sha256 of an image file's bytes: its identity."""
    return file_sha256(path)[:16]


def captions_fingerprint(records: Sequence[CaptionRecord]) -> str:
    """Return the sha256 hex of the records' ids and texts (the checkpoint's data fingerprint)."""
    h = hashlib.sha256()
    for r in records:
        h.update(r.id.encode("utf-8") + b"\x00" + r.text.encode("utf-8") + b"\x00")
    return h.hexdigest()


def image_to_uint8(image: np.ndarray, size: int) -> torch.Tensor:
    """Resize a ``(height, width, 3)`` uint8 RGB image to a ``(3, size, size)`` uint8 tensor."""
    pil = Image.fromarray(image)
    if pil.size != (size, size):
        pil = pil.resize((size, size), Image.BILINEAR)
    return torch.from_numpy(np.asarray(pil, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


def last_words(ids: Sequence[int], length: int) -> list[int]:
    """The last ``length`` word ids: a long phrase loses its first words, never its head noun.

    Example:
        >>> last_words([1, 2, 3], 2)
        [2, 3]
    """
    return list(ids)[max(len(ids) - length, 0) :]


def pad_words(ids: Sequence[int], length: int) -> list[int]:
    """Cut (keeping the last words, :func:`last_words`) or zero-pad word ids to ``length``."""
    ids = last_words(ids, length)
    return ids + [0] * (length - len(ids))


def phrase_pairs(p: Parse, vocab: Vocabulary, words: int) -> list[tuple[list, int, list, int]]:
    """Return ``(query, target, partner, relation)`` for each known word of each phrase of ``p``."""
    out = []
    for k, phrase in enumerate(p.phrases):
        ids = last_words(vocab.ids(phrase), words)
        partner, code = [], NO_RELATION
        for r in p.relations:
            if r.target == k:
                partner, code = (
                    vocab.ids(p.phrases[r.landmark]),
                    relation_code(r.word, inverse=False),
                )
                break
            if r.landmark == k:
                partner, code = vocab.ids(p.phrases[r.target]), relation_code(r.word, inverse=True)
                break
        for i, target in enumerate(ids):
            if target:
                query = ids[:i] + ids[i + 1 :]
                out.append((pad_words(query, words), target, pad_words(partner, words), code))
    return out


@dataclass(frozen=True)
class TrainingData:
    """Decoded training images and their pairs, padded to ``Q`` pairs per image.

    Attributes:
        images: ``(I, 3, S, S)`` uint8, or None when the images are read per step
            (``train.loader: stream``, or cached backbone tokens).
        query: ``(I, Q, P)`` word ids of each pair's query (0 = none).
        target: ``(I, Q)`` the hidden word's id (0 = padding pair).
        partner: ``(I, Q, P)`` word ids of the related phrase.
        relation: ``(I, Q)`` relation codes (``NO_RELATION`` = none).
        group: ``(I, Q)`` the pair's phrase within its image, ``1..``: pairs of one phrase
            occurrence (the same words, each hiding another one) share it; 0 = padding.
        vocab: the vocabulary, learned from these captions.
        fingerprint: :func:`captions_fingerprint` of the records.
        sources: what the records' ids name as their data (:func:`data_sources`).
        image_paths: the file of each image, in the order of the tensors.
        image_keys: the :func:`image_digest` of each image, in the same order.
    """

    images: torch.Tensor | None
    query: torch.Tensor
    target: torch.Tensor
    partner: torch.Tensor
    relation: torch.Tensor
    group: torch.Tensor
    vocab: Vocabulary
    fingerprint: str
    sources: tuple[str, ...] = ()
    image_paths: tuple[str, ...] = ()
    image_keys: tuple[str, ...] = ()

    def __len__(self) -> int:
        return self.target.shape[0]

    @property
    def image_digests(self) -> tuple[str, ...]:
        """The distinct :attr:`image_keys`, sorted: what the model saw, compared with the
        evaluated images on the leaderboard."""
        return tuple(sorted(set(self.image_keys)))

    def to(self, device: torch.device) -> TrainingData:
        """Move every tensor to ``device`` (done once, before training)."""
        names = ("images", "query", "target", "partner", "relation", "group")
        return replace(
            self, **{k: getattr(self, k).to(device) for k in names if getattr(self, k) is not None}
        )

    def pairs(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Gather the pairs of images ``index (B,)``: ``query``, ``target``, ``partner``,
        ``relation``, ``group`` (long)."""
        return {
            "query": self.query[index].long(),
            "target": self.target[index].long(),
            "partner": self.partner[index].long(),
            "relation": self.relation[index].long(),
            "group": self.group[index].long(),
        }

    def batch(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Gather a step's images (as float in ``[0, 1]``) and pairs by image ``index (B,)``."""
        if self.images is None:
            raise ValueError("these training data hold no decoded images (streamed)")
        return {"images": self.images[index].float().div_(255.0), **self.pairs(index)}


def build_training_data(
    records: Sequence[CaptionRecord],
    config: Config,
    *,
    progress: bool = True,
    decode: bool = True,
) -> TrainingData:
    """Learn the vocabulary, decode each image once and turn every caption into pairs.

    With ``decode=False`` no image is decoded (``images`` is None): a streaming loader or a
    token cache reads them later, by ``image_paths``.

    Raises:
        DataFormatError: an element is not a CaptionRecord, or no caption has a known word.
    """
    for r in records:
        if type(r) is not CaptionRecord:
            raise DataFormatError(
                f"training data must be CaptionRecords (image + caption, no boxes), got "
                f"{type(r).__name__} for {getattr(r, 'id', '?')!r}; load it with "
                "adapter.load_captions(split), never load_samples"
            )
    m, t = config.model, config.train
    vocab = Vocabulary.build((r.text for r in records), min_count=t.min_word_count)
    by_image: dict[str, list[CaptionRecord]] = {}
    for r in records:
        by_image.setdefault(r.image_path, []).append(r)
    rng = np.random.default_rng(t.seed)
    P = m.max_phrase_words
    images, pairs = [], []
    for captions in progress_bar(
        by_image.values(),
        desc="decode images" if decode else "parse captions",
        unit="image",
        disable=not progress,
        leave=False,
    ):
        if decode:
            images.append(image_to_uint8(captions[0].load_image(), m.image_size))
        mine = [
            (*pair, (c, *sorted([w for w in pair[0] if w] + [pair[1]]), *pair[2], pair[3]))
            for c, r in enumerate(captions)
            for pair in phrase_pairs(parse(r.text), vocab, P)
        ]  # (query, target, partner, relation, key of the phrase occurrence)
        if len(mine) > m.max_pairs_per_image:
            keep = np.sort(rng.choice(len(mine), m.max_pairs_per_image, replace=False))
            mine = [mine[i] for i in keep]
        pairs.append(mine)
    Q = max((len(p) for p in pairs), default=0)
    if Q == 0:
        raise DataFormatError(
            f"none of the {len(records)} training captions has a word seen "
            f"{t.min_word_count} times; lower train.min_word_count or add captions"
        )
    query = torch.zeros(len(pairs), Q, P, dtype=torch.int32)
    partner = torch.zeros(len(pairs), Q, P, dtype=torch.int32)
    target = torch.zeros(len(pairs), Q, dtype=torch.int32)
    relation = torch.full((len(pairs), Q), NO_RELATION, dtype=torch.int16)
    groups = torch.zeros(len(pairs), Q, dtype=torch.int16)
    for i, mine in enumerate(pairs):
        if mine:
            q, tg, pa, rel, phrase_keys = zip(*mine, strict=True)
            first = {k: g for g, k in enumerate(dict.fromkeys(phrase_keys), 1)}
            groups[i, : len(mine)] = torch.tensor(
                [first[k] for k in phrase_keys], dtype=torch.int16
            )
            n = len(mine)
            query[i, :n] = torch.tensor(q, dtype=torch.int32)
            target[i, :n] = torch.tensor(tg, dtype=torch.int32)
            partner[i, :n] = torch.tensor(pa, dtype=torch.int32)
            relation[i, :n] = torch.tensor(rel, dtype=torch.int16)
    image_keys = tuple(image_digest(p) for p in by_image)
    return TrainingData(
        torch.stack(images) if decode else None,
        query,
        target,
        partner,
        relation,
        groups,
        vocab,
        captions_fingerprint(records),
        data_sources(records),
        tuple(by_image),
        image_keys,
    )


def data_sources(records: Sequence[CaptionRecord]) -> tuple[str, ...]:
    """Name the training data by its ids: their common path prefix (``synth/train``).

    Records of several datasets with nothing in common give each first id component.

    Example:
        >>> r = lambda i: CaptionRecord(i, "x.png", 1, 1, "a")
        >>> data_sources([r("synth/train/0/c0"), r("synth/train/1/c0")])
        ('synth/train',)
        >>> data_sources([r("a/train/0"), r("b/train/0")])
        ('a', 'b')
    """
    parts = [r.id.split("/")[:-1] for r in records]
    common = os.path.commonprefix(parts)
    if common:
        return ("/".join(common),)
    return tuple(sorted({p[0] for p in parts if p}))
