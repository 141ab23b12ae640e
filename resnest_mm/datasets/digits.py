"""scikit-learn's handwritten digits as an ImageNet-style folder of JPEGs (the demo data set)."""
from __future__ import annotations

import os
from typing import Dict

import numpy as np

SEED = 0  # the split is part of the demo's definition: never change it silently


def write_digits(out_dir: str, size: int = 32, val_fraction: float = 0.2) -> Dict[str, int]:
    """Write ``out_dir/{train,val}/<digit>/<index>.jpg`` and return the image counts.

    The 8x8 scans (16 grey levels) are scaled to 0-255 and resized to ``size`` with bicubic
    interpolation, saved as RGB JPEG (quality 95). The split is stratified and fixed (seed 0).
    Existing files are overwritten, so re-running gives the same folder.
    """
    from PIL import Image

    from ..utils.extras import require
    feature = 'the digits demo data (tools/dataset_converters/make_digits.py)'
    load_digits = require('sklearn.datasets', feature).load_digits
    train_test_split = require('sklearn.model_selection', feature).train_test_split

    if not 0 < val_fraction < 1:
        raise ValueError(f'--val-fraction must be between 0 and 1, got {val_fraction}')
    digits = load_digits()
    indices = np.arange(len(digits.target))
    train_idx, val_idx = train_test_split(indices, test_size=val_fraction, random_state=SEED,
                                          stratify=digits.target)
    counts = {}
    for split, split_idx in (('train', train_idx), ('val', val_idx)):
        for i in sorted(split_idx):
            folder = os.path.join(out_dir, split, str(digits.target[i]))
            os.makedirs(folder, exist_ok=True)
            pixels = (digits.images[i] * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
            image = Image.fromarray(pixels, mode='L').resize((size, size), Image.BICUBIC)
            image.convert('RGB').save(os.path.join(folder, f'{i:04d}.jpg'), quality=95)
        counts[split] = len(split_idx)
    return counts
