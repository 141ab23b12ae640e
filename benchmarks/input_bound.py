"""Input-bound throughput: real JPEGs from disk to the model's input, CPU decode vs device decode.

    python benchmarks/input_bound.py [--images 512] [--batch 128] [--repeats 3] [--device cuda]

The photos are the ones of ``benchmarks/data_pipeline.py`` (real photographs re-encoded at
ImageNet-like sizes), written to a temporary folder and read from disk. Both paths run in this
process on one CPU thread (a loader worker's budget), batch after batch, up to the normalised
float batch on the device, in interleaved repeats:

* ``cpu decode``: the train pipeline of ``configs/resnest50_8xb128_in1k.py`` (decode, crop,
  flip, jitter, lighting on the CPU) and ``ClsDataPreprocessor`` on the device;
* ``device decode``: the same config after ``decode_on_device`` (the CPU reads the files and
  draws the choices; ``DecodeOnDevicePreprocessor`` decodes with nvJPEG and augments there).

Printed per path: images per wall second (the device synchronised at the end of every batch)
and CPU milliseconds per image (process CPU time, all threads): how many images one core feeds,
and how many cores a device needs at a given rate. The last line, ``INPUT_BOUND {json}``, is
what ``gpu_check.py`` reads.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data_pipeline import make_photos  # noqa: E402

CONFIG = 'configs/resnest50_8xb128_in1k.py'


def build(decode_on_device: bool, where: str):
    from mmengine.config import Config
    from mmengine.dataset import Compose

    from resnest_mm.datasets.device_decode import apply_decode_on_device
    from resnest_mm.registry import MODELS, TRANSFORMS
    cfg = Config.fromfile(CONFIG)
    if decode_on_device:
        apply_decode_on_device(cfg)
    pipeline = Compose([TRANSFORMS.build(t) for t in cfg.train_dataloader.dataset.pipeline])
    preprocessor = dict(cfg.data_preprocessor)
    preprocessor.setdefault('type', 'ClsDataPreprocessor')
    return pipeline, MODELS.build(preprocessor).to(where)


def one_pass(pipeline, preprocessor, paths, batch: int) -> None:
    from mmengine.dataset import pseudo_collate

    from resnest_mm import device
    for start in range(0, len(paths), batch):
        outs = [pipeline(dict(img_path=p, gt_label=0)) for p in paths[start:start + batch]]
        preprocessor(pseudo_collate([o for o in outs if o is not None]), training=True)
        device.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=512)
    parser.add_argument('--batch', type=int, default=128)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--device', default=None, help='default: the device resnest_mm picks')
    args = parser.parse_args()
    from resnest_mm import device
    args.device = args.device or device.device_type()
    torch.set_num_threads(1)
    import cv2
    cv2.setNumThreads(1)
    root = tempfile.mkdtemp(prefix='input_bound_')
    make_photos(root, args.images)
    paths = sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files)
    runs = {'cpu decode': build(False, args.device), 'device decode': build(True, args.device)}
    rates = {name: [] for name in runs}
    cpu_ms = {name: [] for name in runs}
    for pipeline, pre in runs.values():  # warm-up: decoder handles, kernels
        one_pass(pipeline, pre, paths[:args.batch], args.batch)
    for _ in range(args.repeats):
        for name, (pipeline, pre) in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            one_pass(pipeline, pre, paths, args.batch)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            rates[name].append(len(paths) / wall)
            cpu_ms[name].append(cpu / len(paths) * 1000)
    found = {name: dict(img_s=round(statistics.median(rates[name]), 1),
                        cpu_ms_per_img=round(statistics.median(cpu_ms[name]), 3))
             for name in runs}
    print(f'{len(paths)} JPEGs from disk, batch {args.batch}, device {args.device}, 1 CPU '
          f'thread, {args.repeats} interleaved repeats, medians:')
    for name, row in found.items():
        print(f'  {name}: {row["img_s"]:.1f} img/s, {row["cpu_ms_per_img"]:.3f} CPU-ms/img')
    print('INPUT_BOUND ' + json.dumps(dict(device=args.device, images=len(paths), rows=found)))


if __name__ == '__main__':
    main()
