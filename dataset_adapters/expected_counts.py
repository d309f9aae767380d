"""Expected full-dataset counts of the shipped real-dataset protocols, with their sources.

``groundbench data check`` shows each next to what it finds after the protocol's selection,
and ``docs/adapters.md`` prints the same table. A count is recorded only where a paper or an
official file gives it; ``count=None`` says that no published count is known, and the source
says why.
"""

from __future__ import annotations

from dataclasses import dataclass

from dataset_adapters.refcoco import PUBLISHED_SENTENCES


@dataclass(frozen=True)
class ExpectedCount:
    """What a protocol counts on the full dataset.

    Attributes:
        protocol: the shipped protocol's name, e.g. ``flickr30k_test.albef``.
        count: the expected count, or None where nothing is published.
        unit: ``samples`` (after the protocol's selection) or ``images`` (of the split).
        source: the paper or official file the count comes from.
    """

    protocol: str
    count: int | None
    unit: str
    source: str


_FLICKR_BOXED = (
    "Flickr30k Entities test, phrases whose entity has a box (Plummer et al., IJCV 2017; "
    "the set MDETR's flickr_eval.py evaluates)"
)
_REFER_SOURCE = {
    ("refcoco", "unc"): "RefCOCO UNC split, sentences (Yu et al. 2016)",
    ("refcoco+", "unc"): "RefCOCO+ UNC split, sentences (Yu et al. 2016)",
    ("refcocog", "umd"): "RefCOCOg UMD split, sentences (Nagaraja et al. 2016)",
}

#: Protocol name -> its expected full-dataset count.
EXPECTED_COUNTS: dict[str, ExpectedCount] = {
    e.protocol: e
    for e in (
        ExpectedCount("flickr30k_test.albef", 14481, "samples", _FLICKR_BOXED),
        ExpectedCount("flickr30k_test.zhang2016", 14481, "samples", _FLICKR_BOXED),
        ExpectedCount(
            "flickr30k_test.mg",
            None,
            "samples",
            "no published count; the MG evaluator's selection (Akbari et al. 2019): boxed "
            "phrases, less notvisual ones and those covering 5% of the image or less",
        ),
        *(
            ExpectedCount(f"{key[0]}_{split}.albef", n, "samples", _REFER_SOURCE[key])
            for key, splits in PUBLISHED_SENTENCES.items()
            for split, n in splits.items()
            if split != "train"  # no shipped protocol evaluates a train split
        ),
        ExpectedCount(
            "referit_test.mg",
            None,
            "samples",
            "no published count; MG's ReferIt selection (Akbari et al. 2019): distinct "
            "sentences of the RefCLEF UNC test refs of the images in referit_test_imlist.txt, "
            "refs whose box leaves the image and boxes covering 5% of the image or less dropped",
        ),
        ExpectedCount(
            "visual_genome_test.mg",
            17478,
            "images",
            "the 'test' set of the MG authors' data_splits.pickle (Akbari et al. 2019); "
            "no published count of its regions",
        ),
    )
}
