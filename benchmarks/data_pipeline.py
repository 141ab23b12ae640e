"""Images per second per worker: our train/val input pipelines against the seed's torchvision ones.

    python benchmarks/data_pipeline.py [--images 64] [--repeats 3] [--root DIR] [--decoders]

The photos are real: scikit-learn's bundled sample photographs (``china.jpg``, ``flower.jpg``),
cropped and re-encoded at ImageNet-like sizes (short side 300-500 px) and JPEG qualities 75-95.
Both pipelines run in this process (one worker), over the same files, in interleaved
repetitions; the medians and the ratio ours / torchvision are printed. The seed's pipeline is
``ImageFolder`` + RandomResizedCrop(224, scale=(0.1, 1)), flip, ColorJitter(0.4, 0.4, 0.4),
ToTensor, PCA lighting 0.1, Normalize (train) and centre crop 224/256 + resize (val); ours is
the pipeline of ``configs/resnest50_8xb128_in1k.py`` (normalisation happens later, on the device,
in the data preprocessor, so it is not part of ours).

Same output distributions: every output of both pipelines is normalised the same way (ours:
BGR->RGB, the preprocessor's mean/std) and the per-channel mean and standard deviation over all
outputs are printed side by side. ``--decoders`` also times each JPEG decoder present (OpenCV,
Pillow, simplejpeg, PyTurboJPEG) on the same files: the reason ``decode_image`` uses OpenCV.
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


MEAN = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)


def run_ours(pipeline, paths, stats=None):
    for path in paths:
        out = pipeline(dict(img_path=path, gt_label=0))
        if stats is not None:  # what the data preprocessor does on the device
            stats.append(channel_stats((out['inputs'].flip(0).float() - MEAN) / STD))


def run_torchvision(pipeline, paths, stats=None):
    from torchvision.datasets.folder import pil_loader
    for path in paths:
        out = pipeline(pil_loader(path))
        if stats is not None:
            stats.append(channel_stats(out))


def channel_stats(image: torch.Tensor) -> torch.Tensor:
    """Per-channel sum and sum of squares and the pixel count of a normalised CHW image."""
    flat = image.double().flatten(1)
    return torch.stack([flat.sum(1), (flat ** 2).sum(1),
                        torch.full((3, ), float(flat.shape[1]), dtype=torch.double)])


def summarise(stats) -> str:
    total = torch.stack(stats).sum(0)
    mean = total[0] / total[2]
    std = (total[1] / total[2] - mean ** 2).sqrt()
    return ' '.join(f'{m:+.3f}/{s:.3f}' for m, s in zip(mean.tolist(), std.tolist()))


def time_decoders(paths, repeats: int) -> None:
    """ms per image of each JPEG decoder importable here, full size, same files."""
    import io

    import cv2
    datas = [open(p, 'rb').read() for p in paths]
    decoders = {
        'opencv': lambda d: cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_COLOR),
        'pillow': lambda d: np.asarray(Image.open(io.BytesIO(d)).convert('RGB')),
    }
    try:
        import simplejpeg
        decoders['simplejpeg'] = lambda d: simplejpeg.decode_jpeg(d, colorspace='BGR')
    except ImportError:
        print('  simplejpeg: not installed')
    try:
        from turbojpeg import TurboJPEG
        decoders['pyturbojpeg'] = TurboJPEG().decode
    except (ImportError, RuntimeError, OSError) as exc:
        print(f'  PyTurboJPEG: unavailable ({type(exc).__name__})')
    times = {k: [] for k in decoders}
    for _ in range(repeats):
        for name, decode in decoders.items():
            start = time.perf_counter()
            for data in datas:
                decode(data)
            times[name].append((time.perf_counter() - start) / len(datas) * 1000)
    for name, values in times.items():
        print(f'  decode {name}: {statistics.median(values):.3f} ms/img')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=64)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--root', help='reuse a folder of JPEGs instead of generating one')
    parser.add_argument('--decoders', action='store_true', help='also time each JPEG decoder')
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
    stats = {k: [] for k in timings}
    for name, runner, pipeline in (('ours train', run_ours, ours_train),
                                   ('tv train', run_torchvision, tv_train),
                                   ('ours val', run_ours, ours_val),
                                   ('tv val', run_torchvision, tv_val)):
        for _ in range(max(1, 512 // len(paths))):  # outputs for the distribution check
            runner(pipeline, paths, stats[name])
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
    print('normalised outputs, per channel (R G B) mean/std:')
    for split in ('train', 'val'):
        print(f'  {split}: ours        {summarise(stats[f"ours {split}"])}')
        print(f'  {split}: torchvision {summarise(stats[f"tv {split}"])}')
    if args.decoders:
        print('JPEG decoders, full size:')
        time_decoders(paths, args.repeats)


if __name__ == '__main__':
    main()
