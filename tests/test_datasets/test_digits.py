"""The demo data set: real digit scans, fixed stratified split, same result every time."""
import os

from PIL import Image

from resnest_mm.datasets import write_digits


def _listing(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, files in os.walk(root) for f in files)


def test_layout_counts_and_determinism(tmp_path):
    counts = write_digits(str(tmp_path / 'a'), size=16)
    assert counts == {'train': 1437, 'val': 360}
    for split in ('train', 'val'):
        assert sorted(os.listdir(tmp_path / 'a' / split)) == [str(d) for d in range(10)]
    val_per_class = [len(os.listdir(tmp_path / 'a' / 'val' / str(d))) for d in range(10)]
    assert min(val_per_class) >= 35 and max(val_per_class) <= 37  # stratified
    image = Image.open(next((tmp_path / 'a' / 'val' / '0').iterdir()))
    assert image.format == 'JPEG' and image.size == (16, 16) and image.mode == 'RGB'
    write_digits(str(tmp_path / 'b'), size=16)
    assert _listing(tmp_path / 'a') == _listing(tmp_path / 'b')
