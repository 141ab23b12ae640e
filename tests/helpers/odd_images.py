"""Real files with ImageNet's oddities and with the failures a loader must survive."""
import io
import os
from typing import Dict

import numpy as np
from PIL import Image


def _photo(w: int = 48, h: int = 32, seed: int = 0) -> np.ndarray:
    """A smooth colour image (JPEG-friendly), RGB uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = rng.uniform(40, 200, size=3)
    img = base + 40 * np.sin(xx[..., None] / 6 + np.arange(3)) + 30 * np.cos(yy[..., None] / 5)
    return img.clip(0, 255).astype(np.uint8)


def write_odd_images(folder: str) -> Dict[str, np.ndarray]:
    """Write the oddities; return name -> the RGB image a correct loader must produce."""
    os.makedirs(folder, exist_ok=True)
    rgb = _photo()
    expected = {}
    Image.fromarray(rgb).convert('CMYK').save(os.path.join(folder, 'cmyk.JPEG'), quality=95)
    expected['cmyk.JPEG'] = rgb
    gray = np.asarray(Image.fromarray(rgb).convert('L'))
    Image.fromarray(gray).save(os.path.join(folder, 'gray.JPEG'), quality=95)
    expected['gray.JPEG'] = np.repeat(gray[..., None], 3, axis=2)
    Image.fromarray(rgb).save(os.path.join(folder, 'png_named.JPEG'), format='PNG')
    expected['png_named.JPEG'] = rgb
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1, ), 128, np.uint8)], axis=2)
    Image.fromarray(rgba, mode='RGBA').save(os.path.join(folder, 'rgba.png'))
    expected['rgba.png'] = rgb
    deep = (rgb[..., 0].astype(np.uint16) * 257)
    Image.fromarray(deep).save(os.path.join(folder, 'gray16.png'))
    expected['gray16.png'] = np.repeat(rgb[..., :1], 3, axis=2)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.fromarray(rgb).save(os.path.join(folder, 'rotated.JPEG'), quality=95, exif=exif)
    expected['rotated.JPEG'] = np.rot90(rgb, k=-1)
    return expected


def write_unreadable_images(folder: str) -> Dict[str, str]:
    """Write files no decoder can read; return name -> the reason a loader should give."""
    os.makedirs(folder, exist_ok=True)
    noisy = np.random.default_rng(1).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noisy).save(buf, format='JPEG', quality=90)
    data = buf.getvalue()
    with open(os.path.join(folder, 'truncated.JPEG'), 'wb') as f:
        f.write(data[:len(data) // 2])
    open(os.path.join(folder, 'empty.JPEG'), 'wb').close()
    with open(os.path.join(folder, 'text.JPEG'), 'w') as f:
        f.write('this is not an image\n')
    return {'truncated.JPEG': 'truncated JPEG', 'empty.JPEG': 'empty file',
            'text.JPEG': 'not a readable image'}
