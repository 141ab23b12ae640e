"""Images per CPU-second: our train/val input pipelines against the seed's torchvision ones and
DALI's CPU pipeline (when installed).

    python benchmarks/data_pipeline.py [--images 64] [--repeats 5] [--root DIR] [--decoders]

The photos are real: scikit-learn's bundled sample photographs (``china.jpg``, ``flower.jpg``)
and matplotlib's ``grace_hopper.jpg`` when present, cropped and re-encoded at ImageNet-like sizes
(short side 300-500 px, 4:3 and 3:4) and JPEG qualities 75-95. Every pipeline runs in this
process, over the same files, in interleaved repetitions; the rate is images per second of
*process* CPU time (``time.process_time``: the threads of every library count), medians are
printed with the ratios ours / torchvision and ours / DALI. One thread each (torch, OpenCV and
DALI's ``num_threads=1``): a data-loader worker's budget.

* torchvision (the seed): ``ImageFolder`` loading + RandomResizedCrop(224, scale=(0.1, 1)), flip,
  ColorJitter(0.4, 0.4, 0.4), ToTensor, PCA lighting 0.1, Normalize (train); Resize(256),
  CenterCrop(224), ToTensor, Normalize (val).
* DALI's CPU pipeline, the same family: ``fn.decoders.image_random_crop`` (ROI decode, area
  0.1-1, ratio 3/4-4/3), ``fn.resize`` 224 (antialiased linear), ``fn.color_twist``
  (brightness, contrast, saturation 0.6-1.4), ``fn.crop_mirror_normalize`` with a coin-flip
  mirror (train); decode, resize shorter side 256, ``crop_mirror_normalize`` 224 (val). DALI's
  CPU pipeline has no PCA lighting.
* ours: the pipelines of ``configs/resnest50_8xb128_in1k.py``. Its data preprocessor runs
  later, on the device: BGR->RGB, normalisation and the PCA lighting noise, which the worker only
  draws (``FastLighting(on_device=True)``: the batch stays uint8), so they are not part of ours;
  each stage's share of its CPU time is printed.

Same output distributions: our outputs go through the config's data preprocessor (on the CPU
here, untimed), the others are normalised alike, and the per-channel mean and standard deviation
over all outputs are printed side by side. ``--decoders`` also times each JPEG decoder present
(OpenCV, Pillow, simplejpeg, PyTurboJPEG, our region decoder on the whole image) on the same
files.
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


def source_photos():
    """The real photographs installed here: scikit-learn's two, matplotlib's one if present."""
    from sklearn.datasets import load_sample_images
    photos = [np.asarray(p) for p in load_sample_images().images]
    try:
        import matplotlib.cbook
        with matplotlib.cbook.get_sample_data('grace_hopper.jpg') as f:
            photos.append(np.asarray(Image.open(f).convert('RGB')))
    except (ImportError, OSError, ValueError):
        pass
    return photos


def make_photos(root: str, count: int) -> None:
    photos = source_photos()
    rng = np.random.default_rng(0)
    for i in range(count):
        src = photos[i % len(photos)]
        if i % 4 == 3:  # a portrait now and then, as in ImageNet
            src = src[:, :max(1, src.shape[0] * 3 // 4)]
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
    """The config's train and val pipelines, and its data preprocessor."""
    from mmengine.config import Config
    from mmengine.dataset import Compose
    from mmengine.registry import DefaultScope

    import resnest_mm.registry  # noqa: F401
    cfg = Config.fromfile('configs/resnest50_8xb128_in1k.py')
    with DefaultScope.overwrite_default_scope('resnest_mm'):
        from resnest_mm.registry import MODELS, TRANSFORMS
        train = Compose([TRANSFORMS.build(t) for t in cfg.train_pipeline])
        val = Compose([TRANSFORMS.build(t) for t in cfg.test_pipeline])
        preprocessor = MODELS.build(dict(cfg.data_preprocessor))
    return train, val, preprocessor


MEAN = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)


def run_ours(pipeline, paths, stats=None, stages=None, preprocessor=None):
    """Run our Compose on every path; ``stages`` (a dict) accumulates CPU seconds per transform;
    with ``stats``, each output goes through ``preprocessor`` (as on the device) first."""
    from mmengine.dataset import pseudo_collate
    for path in paths:
        if stages is None:
            out = pipeline(dict(img_path=path, gt_label=0))
        else:
            out = dict(img_path=path, gt_label=0)
            for transform in pipeline.transforms:
                start = time.process_time()
                out = transform(out)
                name = type(transform).__name__
                stages[name] = stages.get(name, 0.) + time.process_time() - start
        if stats is not None:  # what the data preprocessor does on the device
            stats.append(channel_stats(preprocessor(pseudo_collate([out]))['inputs'][0]))


def dali_pipelines(paths):
    """DALI's CPU train and val pipelines over ``paths`` (one batch = all of them), or None."""
    try:
        from nvidia.dali import fn, pipeline_def, types
    except ImportError:
        return None
    mean = [float(m) for m in MEAN.flatten()]
    std = [float(s) for s in STD.flatten()]
    # Synchronous: each run() decodes its own batch, so its CPU time is its own.
    options = dict(batch_size=len(paths), num_threads=1, device_id=None, exec_async=False,
                   exec_pipelined=False, prefetch_queue_depth=1, seed=0)

    @pipeline_def(**options)
    def train():
        jpegs, _ = fn.readers.file(files=paths, random_shuffle=False)
        images = fn.decoders.image_random_crop(
            jpegs, device='cpu', output_type=types.RGB, random_area=[0.1, 1.0],
            random_aspect_ratio=[3. / 4., 4. / 3.], num_attempts=10)
        images = fn.resize(images, resize_x=224, resize_y=224, antialias=True)
        jitter = dict(range=[0.6, 1.4])
        images = fn.color_twist(images, brightness=fn.random.uniform(**jitter),
                                contrast=fn.random.uniform(**jitter),
                                saturation=fn.random.uniform(**jitter))
        return fn.crop_mirror_normalize(images, dtype=types.FLOAT, output_layout='CHW',
                                        mean=mean, std=std,
                                        mirror=fn.random.coin_flip(probability=0.5))

    @pipeline_def(**options)
    def val():
        jpegs, _ = fn.readers.file(files=paths, random_shuffle=False)
        images = fn.decoders.image(jpegs, device='cpu', output_type=types.RGB)
        images = fn.resize(images, resize_shorter=256, antialias=True)
        return fn.crop_mirror_normalize(images, dtype=types.FLOAT, output_layout='CHW',
                                        crop=(224, 224), mean=mean, std=std)

    built = train(), val()
    for pipe in built:
        pipe.build()
    return built


def run_dali(pipe, paths, stats=None):
    (out, ) = pipe.run()
    if stats is not None:
        for image in out.as_array():
            stats.append(channel_stats(torch.from_numpy(image)))


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
    from resnest_mm.datasets import jpeg_roi
    from resnest_mm.datasets.decode import jpeg_size
    if jpeg_roi.available():
        def region(data):
            height, width = jpeg_size(data)
            return jpeg_roi.decode_region(data, (height, width), 1, (0, 0, width, height))
        decoders['region (whole image)'] = region
    times = {k: [] for k in decoders}
    for _ in range(repeats):
        for name, decode in decoders.items():
            start = time.process_time()
            for data in datas:
                decode(data)
            times[name].append((time.process_time() - start) / len(datas) * 1000)
    for name, values in times.items():
        print(f'  decode {name}: {statistics.median(values):.3f} CPU-ms/img')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=64)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--root', help='reuse a folder of JPEGs instead of generating one')
    parser.add_argument('--decoders', action='store_true', help='also time each JPEG decoder')
    args = parser.parse_args()
    torch.set_num_threads(1)
    import cv2
    cv2.setNumThreads(1)
    root = args.root or tempfile.mkdtemp(prefix='pipeline_bench_')
    if not args.root:
        make_photos(root, args.images)
    paths = sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files)
    from resnest_mm.datasets import jpeg_roi
    print(f'JPEG region decoder: {"built" if jpeg_roi.available() else "NOT built"}')
    ours_train, ours_val, preprocessor = our_pipelines()
    tv_train, tv_val = torchvision_pipelines()
    runs = [('ours train', run_ours, ours_train), ('tv train', run_torchvision, tv_train),
            ('ours val', run_ours, ours_val), ('tv val', run_torchvision, tv_val)]
    dali = dali_pipelines(paths)
    if dali is None:
        print('DALI: not installed (pip install -r requirements/benchmarks.txt)')
    else:
        runs += [('dali train', run_dali, dali[0]), ('dali val', run_dali, dali[1])]
    timings = {name: [] for name, _, _ in runs}
    stats = {name: [] for name in timings}
    import random
    random.seed(0)  # torchvision draws from random and torch, ours from np.random: the
    np.random.seed(0)  # printed statistics repeat from run to run (DALI has seed=0)
    torch.manual_seed(0)
    for name, runner, pipeline in runs:  # outputs for the distribution check, and warm-up
        for _ in range(max(1, 512 // len(paths))):
            if runner is run_ours:
                runner(pipeline, paths, stats[name], preprocessor=preprocessor)
            else:
                runner(pipeline, paths, stats[name])
    for _ in range(args.repeats):
        for name, runner, pipeline in runs:
            start = time.process_time()
            runner(pipeline, paths)
            timings[name].append(len(paths) / (time.process_time() - start))
    stages = {'train': {}, 'val': {}}
    for split, pipeline in (('train', ours_train), ('val', ours_val)):
        for _ in range(args.repeats):
            run_ours(pipeline, paths, stages=stages[split])
    rate = {k: statistics.median(v) for k, v in timings.items()}
    print(f'{len(paths)} photos, {args.repeats} interleaved repeats, 1 thread each, images per '
          'CPU-second (process time), medians:')
    goals = {'train': (2.5, 1.5), 'val': (3.0, None)}
    for split in ('train', 'val'):
        ours, tv = rate[f'ours {split}'], rate[f'tv {split}']
        line = (f'  {split}: ours {ours:.1f}, torchvision {tv:.1f}, ratio {ours / tv:.2f}x '
                f'(goal >= {goals[split][0]}x)')
        if f'dali {split}' in rate:
            dali_rate = rate[f'dali {split}']
            goal = f'goal >= {goals[split][1]}x' if goals[split][1] else 'no goal'
            line += f'; DALI-CPU {dali_rate:.1f}, ratio {ours / dali_rate:.2f}x ({goal})'
        print(line)
    print("ours, each stage's share of the CPU time:")
    for split in ('train', 'val'):
        total = sum(stages[split].values())
        shares = ', '.join(f'{name} {100 * t / total:.0f}%' for name, t in
                           sorted(stages[split].items(), key=lambda item: -item[1]))
        print(f'  {split}: {shares}')
    print('normalised outputs, per channel (R G B) mean/std:')
    for split in ('train', 'val'):
        for who, label in (('ours', 'ours       '), ('tv', 'torchvision'), ('dali', 'DALI-CPU   ')):
            if stats.get(f'{who} {split}'):
                print(f'  {split}: {label} {summarise(stats[f"{who} {split}"])}')
    print('handing each output to the training process (a loader worker moves it to shared '
          'memory), CPU-ms per image, not counted above:')
    pipelines = {name: pipeline for name, _, pipeline in runs}
    for split in ('train', 'val'):
        ours, tv = pipelines[f'ours {split}'], pipelines[f'tv {split}']
        print(f'  {split}: ours {handoff_ms(ours, paths, True, args.repeats):.3f}, torchvision '
              f'{handoff_ms(tv, paths, False, args.repeats):.3f}')
    if args.decoders:
        print('JPEG decoders, full size:')
        time_decoders(paths, args.repeats)


def handoff_ms(pipeline, paths, ours: bool, repeats: int) -> float:
    """Median CPU-ms per image of ``share_memory_`` on the pipeline's outputs: what a
    ``DataLoader`` worker does to every sample's tensor before the training process gets it
    (a uint8 image is a quarter of a float32 one's bytes)."""
    from torchvision.datasets.folder import pil_loader
    times = []
    for _ in range(repeats):
        if ours:
            outs = [pipeline(dict(img_path=p, gt_label=0))['inputs'] for p in paths]
        else:
            outs = [pipeline(pil_loader(p)) for p in paths]
        start = time.process_time()
        for out in outs:
            out.share_memory_()
        times.append((time.process_time() - start) / len(paths) * 1000)
    return statistics.median(times)


if __name__ == '__main__':
    main()
