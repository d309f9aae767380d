"""Read-outs of one reference-model checkpoint under a protocol: which map the logits give.

Run::

    python benchmarks/readout_sweep.py runs/demo/model --split val --protocol synth_val.albef \
        --readout softmax:10 --readout peak:10:0.5 --readout token_box \
        --set "pipeline.upsample={mode: bilinear, align: patch}"

The grounding attention's logits ``l`` (``(H, N)`` per sample) are computed once; each
``--readout`` turns them into a map on the token grid, and the protocol (with ``--set``
overrides) scores it exactly as ``groundbench evaluate`` would. Read-outs:

- ``softmax:T``: ``softmax(l / T)``, the checkpoint method's map at ``readout_temperature`` T.
- ``sigmoid:D:S``: ``σ((l − max l + D) / S)``, a soft threshold ``D`` logits below the peak.
- ``peak:T:F``: ``softmax(l / T)`` kept on the 8-connected tokens at ``F`` of its maximum or
  more that hold the maximum (the peak's blob), zero elsewhere.
- ``words:T``: ``softmax(mean_w l_w / T)`` over each referent word queried alone (with the
  phrase's relation); ``words_full:T`` also averages in the full query's logits.
- ``zsoftmax:T``: ``softmax(z / T)`` of the z-scored logits (a temperature per map).
- ``token_box``: the first ground-truth box painted on the token grid (tokens whose centre
  lies in it), a reference: the best a map at this grid's resolution does under the
  protocol's pipeline. It reads the boxes, so it is no method.

Prints one line per read-out: the mean of each of the protocol's metrics.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from scipy import ndimage

from dataset_adapters import open_dataset
from groundbench.model.checkpoint import load_checkpoint
from groundbench.model.data import image_to_uint8
from groundbench.model.infer import phrase_logits, phrase_queries
from groundbench.protocol import load_protocol
from groundbench.synthetic import ensure_default_dataset
from groundbench.types import RawMaps


def logits_of(model, vocab, samples, images) -> torch.Tensor:
    """The read-out's attention logits ``(S, H, N)`` (the full-phrase query, as ``read_out``)."""
    model.eval()
    cpu = torch.device("cpu")
    return torch.stack(
        [
            phrase_logits(model, vocab, s.phrase, im, device=cpu)[0, 0].float()
            for s, im in zip(samples, images, strict=True)
        ]
    )


@torch.no_grad()
def word_logits_of(model, vocab, samples, images) -> list[torch.Tensor]:
    """Per sample, the logits ``(W, H, N)`` of each known referent word queried alone
    (with the phrase's relation, as the full query), or of the full query when none."""
    cfg = model.cfg
    model.eval()
    out = []
    for sample, image in zip(samples, images, strict=True):
        query, landmark, code = phrase_queries(sample.phrase, vocab, cfg.max_phrase_words)
        words = [int(w) for w in query[0] if w]
        queries = torch.zeros(max(len(words), 1), cfg.max_phrase_words, dtype=torch.long)
        if words:
            queries[:, 0] = torch.tensor(words)
        else:
            queries = query
        W = queries.shape[0]
        pixels = image_to_uint8(image, cfg.image_size)[None].float().div_(255.0)
        keys, values = model.encode(pixels)
        codes = torch.full((1, W), code, dtype=torch.long)
        logits = model.logits(keys, values, queries[None], landmark.expand(W, -1)[None], codes)
        out.append(logits[0].float())
    return out


def peak_blob(m: np.ndarray, fraction: float) -> np.ndarray:
    """The 8-connected region of ``m >= fraction * max`` that holds the first maximum."""
    labels, _ = ndimage.label(m >= fraction * m.max(), structure=np.ones((3, 3)))
    return labels == labels.flat[m.argmax()]


def token_box(sample, grid: int, size: int) -> torch.Tensor:
    """The first box on the token grid: 1 where a token's centre lies inside it."""
    scale_x, scale_y = sample.width / size, sample.height / size
    centres = (torch.arange(grid) + 0.5) * (size / grid)
    x0, y0, x1, y1 = (float(v) for v in sample.boxes[0])
    inside_x = (centres * scale_x >= x0) & (centres * scale_x <= x1)
    inside_y = (centres * scale_y >= y0) & (centres * scale_y <= y1)
    return (inside_y[:, None] & inside_x[None, :]).float().flatten()


def read(spec: str, logits: torch.Tensor, words, samples, grid: int, size: int) -> torch.Tensor:
    """Maps ``(S, H, N)`` of one read-out spec."""
    kind, *args = spec.split(":")
    p = [float(a) for a in args]
    if kind == "softmax" and len(p) == 1:
        return (logits / p[0]).softmax(-1)
    if kind == "zsoftmax" and len(p) == 1:  # softmax of the z-scored logits at T
        z = (logits - logits.mean(-1, keepdim=True)) / logits.std(-1, keepdim=True)
        return (z / p[0]).softmax(-1)
    if kind == "sigmoid" and len(p) == 2:
        peak = logits.amax(-1, keepdim=True)
        return torch.sigmoid((logits - peak + p[0]) / p[1])
    if kind == "peak" and len(p) == 2:
        maps = (logits / p[0]).softmax(-1).mean(1)  # S N
        out = [
            m * torch.from_numpy(peak_blob(m.view(grid, grid).numpy(), p[1])).flatten()
            for m in maps
        ]
        return torch.stack(out)[:, None]
    if kind == "words" and len(p) == 1:  # mean of the words' logits: an AND of the words
        return torch.stack([(w.mean(0) / p[0]).softmax(-1) for w in words])
    if kind == "words_full" and len(p) == 1:  # the words' and the full query's logits
        return torch.stack(
            [((w.mean(0) + f) / 2 / p[0]).softmax(-1) for w, f in zip(words, logits, strict=True)]
        )
    if kind == "token_box" and not p:
        # a faint floor keeps the map non-constant where the box covers no token centre
        return torch.stack([token_box(s, grid, size) + 1e-4 for s in samples])[:, None]
    raise SystemExit(
        f"unknown read-out {spec!r}: softmax:T, zsoftmax:T, sigmoid:D:S, peak:T:F, words:T, "
        "words_full:T or token_box"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--split", default="val")
    parser.add_argument("--protocol", default="synth_val.albef")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--readout", action="append", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    arity = {"softmax": 1, "zsoftmax": 1, "sigmoid": 2, "peak": 2, "words": 1, "words_full": 1}
    for spec in args.readout:  # before any work
        kind, *rest = spec.split(":")
        if arity.get(kind, 0) != len(rest) and not (kind == "token_box" and not rest):
            read(spec, torch.zeros(0, 1, 1), [], [], 1, 1)  # raises with the valid forms
    loaded = load_checkpoint(args.checkpoint)
    cfg = loaded.model.cfg
    dataset = open_dataset("native", args.data_root or ensure_default_dataset())
    samples = dataset.load_samples(args.split)
    images = [s.load_image() for s in samples]
    logits = logits_of(loaded.model, loaded.vocab, samples, images)
    words = word_logits_of(loaded.model, loaded.vocab, samples, images)
    scorer = load_protocol(args.protocol, args.set).scorer("cpu")
    g = cfg.grid
    for spec in args.readout:
        maps = read(spec, logits, words, samples, g, cfg.image_size)
        values = []
        for i in range(0, len(samples), 128):
            chunk = samples[i : i + 128]
            raw = RawMaps(
                tuple(s.id for s in chunk),
                tuple(m.view(1, -1, g, g) for m in maps[i : i + 128]),
                kind="attention",
            )
            values.append(scorer.score(raw, chunk).values)
        v = np.concatenate(values)
        means = "  ".join(f"{k} {np.nanmean(v[:, j]):.3f}" for j, k in enumerate(scorer.keys))
        print(f"{spec:<16} {means}", flush=True)


if __name__ == "__main__":
    main()
