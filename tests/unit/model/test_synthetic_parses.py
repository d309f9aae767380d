"""The synthetic captions and phrases parse exactly as the frozen expectations say.

``data/synthetic_parses.tsv`` holds, for every distinct text of the first 60 scenes of each
split of the seed-0 synthetic dataset, the parse the chunker gave before it learned real
phrases (coordinated modifiers, possessives, absolute locations, ``one``): noun phrases,
relations, referent. The trained reference model's numbers rest on these parses, so any
chunker change must keep them.
"""

from __future__ import annotations

from pathlib import Path

from groundbench.model.language import Parse, parse
from groundbench.synthetic import SPLITS, Settings, make_scene

FROZEN = Path(__file__).parent / "data" / "synthetic_parses.tsv"
SCENES_PER_SPLIT = 60


def parse_line(text: str, p: Parse) -> str:
    """``text``, phrases (``|``-separated), relations (``target-word-landmark``), referent."""
    phrases = " | ".join(" ".join(ph) for ph in p.phrases)
    relations = " ".join(f"{r.target}-{r.word}-{r.landmark}" for r in p.relations)
    return f"{text}\t{phrases}\t{relations}\t{p.referent}"


def synthetic_texts() -> list[str]:
    """Every distinct caption and phrase of the first scenes of each split (seed 0)."""
    settings = Settings()
    texts = set()
    for split in SPLITS:
        for index in range(SCENES_PER_SPLIT):
            _, records = make_scene(settings, 0, split, index)
            texts |= {r["text"] for r in records} | {r.get("phrase", r["text"]) for r in records}
    return sorted(texts)


def test_every_synthetic_text_parses_as_frozen():
    want = FROZEN.read_text(encoding="utf-8").splitlines()
    texts = synthetic_texts()
    assert [line.split("\t")[0] for line in want] == texts  # the generator did not change
    got = [parse_line(t, parse(t)) for t in texts]
    changed = [(w, g) for w, g in zip(want, got, strict=True) if w != g]
    assert not changed, f"{len(changed)} synthetic parses changed, e.g. {changed[:3]}"
    assert len(texts) > 1000
