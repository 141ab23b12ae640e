"""Real JPEG files on disk for data-pipeline and end-to-end tests."""
import os
from typing import Sequence

import numpy as np
from PIL import Image


def write_image_folder(root: str, classes: Sequence[str], per_class: int = 1,
                       size: int = 40, seed: int = 0) -> str:
    """Write ``root/<class>/<i>.JPEG`` files: smooth random colour images, one pattern a class."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for c, name in enumerate(classes):
        folder = os.path.join(root, name)
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            phase = rng.uniform(0, 2 * np.pi, size=3)
            freq = 1 + (c % 5)
            channels = [np.sin(2 * np.pi * freq * (xx + yy * k) + phase[k]) for k in range(3)]
            pixels = ((np.stack(channels, -1) + 1) * 127.5).astype(np.uint8)
            Image.fromarray(pixels).save(os.path.join(folder, f'{i:03d}.JPEG'), quality=90)
    return root
