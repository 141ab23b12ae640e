"""Images per second per worker: our train/val input pipelines against the seed's torchvision ones.

    python benchmarks/data_pipeline.py [--images 64] [--repeats 3] [--root DIR]

The photos are real: scikit-learn's bundled sample photographs (``china.jpg``, ``flower.jpg``),
cropped and re-encoded at ImageNet-like sizes (short side 300-500 px) and JPEG qualities 75-95.
Both pipelines run in this process (one worker), over the same files, in interleaved
repetitions; the medians and the ratio ours / torchvision are printed. The seed's pipeline is
``ImageFolder`` + RandomResizedCrop(224, scale=(0.1, 1)), flip, ColorJitter(0.4, 0.4, 0.4),
ToTensor, PCA lighting 0.1, Normalize (train) and centre crop 224/256 + resize (val); ours is
the pipeline of ``configs/resnest50_8xb128_in1k.py`` (normalisation happens later, on the device,
in the data preprocessor, so it is not part of ours).
"""
import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import torch
from PIL import Image

EIGVAL = torch.tensor([0.2175, 0.0188, 0.0045])
EIGVEC = torch.tensor([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140],
                       [-0.5836, -0.6948, 0.4203]])


class Lighting:
    """The seed's PCA lighting noise on a 0-1 RGB tensor."""

    def __init__(self, alphastd: float) -> None:
        self.alphastd = alphastd

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        alpha = img.new_empty(3).normal_(0, self.alphastd)
        rgb = (EIGVEC * alpha.view(1, 3) * EIGVAL.view(1, 3)).sum(1)
        return img + rgb.view(3, 1, 1)


def make_photos(root: str, count: int) -> None:
    from sklearn.datasets import load_sample_images
    photos = [np.asarray(p) for p in load_sample_images().images]
    rng = np.random.default_rng(0)
    for i in range(count):
        src = photos[i % len(photos)]
        short = int(rng.integers(300, 501))
        scale = short / min(src.shape[:2])
        image = Image.fromarray(src).resize(
            (max(short, round(src.shape[1] * scale)), max(short, round(src.shape[0] * scale))),
            Image.BICUBIC)
        folder = os.path.join(root, f'n{i % 4:08d}')
        os.makedirs(folder, exist_ok=True)
        image.save(os.path.join(folder, f'{i:05d}.JPEG'), quality=int(rng.integers(75, 96)))


def torchvision_pipelines():
    from torchvision import transforms as T
    normalize = T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    train = T.Compose([T.RandomResizedCrop(224, scale=(0.1, 1.0)), T.RandomHorizontalFlip(),
                       T.ColorJitter(0.4, 0.4, 0.4), T.ToTensor(), Lighting(0.1), normalize])
    val = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), normalize])
    return train, val


def our_pipelines():
    from mmengine.config import Config
    from mmengine.dataset import Compose
    from mmengine.registry import DefaultScope

    import resnest_mm.registry  # noqa: F401
    cfg = Config.fromfile('configs/resnest50_8xb128_in1k.py')
    with DefaultScope.overwrite_default_scope('resnest_mm'):
        from resnest_mm.registry import TRANSFORMS
        train = Compose([TRANSFORMS.build(t) for t in cfg.train_pipeline])
        val = Compose([TRANSFORMS.build(t) for t in cfg.test_pipeline])
    return train, val


def run_ours(pipeline, paths):
    for path in paths:
        pipeline(dict(img_path=path, gt_label=0))


def run_torchvision(pipeline, paths):
    from torchvision.datasets.folder import pil_loader
    for path in paths:
        pipeline(pil_loader(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=64)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--root', help='reuse a folder of JPEGs instead of generating one')
    args = parser.parse_args()
    torch.set_num_threads(1)
    import cv2
    cv2.setNumThreads(0)
    root = args.root or tempfile.mkdtemp(prefix='pipeline_bench_')
    if not args.root:
        make_photos(root, args.images)
    paths = sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files)
    ours_train, ours_val = our_pipelines()
    tv_train, tv_val = torchvision_pipelines()
    timings = {k: [] for k in ('ours train', 'tv train', 'ours val', 'tv val')}
    for _ in range(args.repeats):
        for name, runner, pipeline in (('ours train', run_ours, ours_train),
                                       ('tv train', run_torchvision, tv_train),
                                       ('ours val', run_ours, ours_val),
                                       ('tv val', run_torchvision, tv_val)):
            start = time.perf_counter()
            runner(pipeline, paths)
            timings[name].append(len(paths) / (time.perf_counter() - start))
    rate = {k: statistics.median(v) for k, v in timings.items()}
    print(f'{len(paths)} photos, {args.repeats} interleaved repeats, 1 worker, medians:')
    for split in ('train', 'val'):
        ours, tv = rate[f'ours {split}'], rate[f'tv {split}']
        print(f'  {split}: ours {ours:.1f} img/s, torchvision {tv:.1f} img/s, '
              f'ratio {ours / tv:.2f}x (goal >= 1.5x)')


if __name__ == '__main__':
    main()
