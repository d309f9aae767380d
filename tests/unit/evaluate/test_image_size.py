"""An image whose real size differs from its record's is refused, never scored silently."""

import pytest
from PIL import Image

from groundbench.errors import DataFormatError
from groundbench.evaluate import evaluate


def _resize(path, size):
    with Image.open(path) as im:
        im.resize(size).save(path)


@pytest.mark.parametrize(
    "method", ["centre_prior", "plugin:tests.unit.evaluate.test_image_size:grey"]
)
def test_resized_image_is_refused_and_finished_records_are_kept(tiny, tmp_path, method):
    protocol, root = tiny
    image = root / "images" / "1.png"
    _resize(image, (80, 64))  # the records say 40×32
    out = tmp_path / "out"
    with pytest.raises(DataFormatError) as err:
        evaluate(str(protocol), method, out_dir=out, data_root=root, batch_size=1, progress=False)
    assert str(err.value) == (
        f"image {image} is 80×64 pixels but sample 'tiny/001' records 40×32, so its boxes "
        "and the map would be in different frames; restore the original images or correct the "
        "record (`groundbench data check` lists every such record)"
    )
    cached = list((tmp_path / "out.partial").glob("records.*.jsonl"))
    assert [p.read_text().count("\n") for p in cached] == [1]  # tiny/000, scored before it
    assert not out.exists()


def grey(samples, images):
    """A plugin that reads pixels: one grey map per image, at the image's size."""
    import torch

    from groundbench.types import RawMaps

    maps = [torch.full(img.shape[:2], float(img.mean())) for img in images]
    return RawMaps(tuple(s.id for s in samples), tuple(maps))


grey.supervision = "training-free"
