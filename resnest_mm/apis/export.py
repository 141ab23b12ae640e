"""Ship a trained classifier: a state dict, TorchScript or ONNX, each checked after writing.

What mmpretrain 1.x lacks: its deployment goes through MMDeploy (a separate install built against
full mmcv, which does not build here). This writes the three formats directly, runs the written
file back (``torch.load`` with ``weights_only=True``, ``torch.jit.load``, onnxruntime) against the
PyTorch model and reports the largest difference, and puts the preprocessing a deployer must
reproduce (input size, mean, std, channel order) and the class names in a JSON file beside it.

The exported networks take a float ``N x 3 x H x W`` batch already normalised as the config's
data preprocessor does, and return logits (apply softmax for probabilities).
"""
from __future__ import annotations

import json
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.utils import ProgressBar

from .. import compat
from ..datasets.transforms.pack_for_device import PACK_TYPES
from ..registry import bare_type
from ..utils.errors import ExplainedRuntimeError, ExplainedValueError
from ..utils.extras import require
from ..utils.fileio import atomic_save, atomic_write

FORMATS = ('state_dict', 'torchscript', 'onnx')
SUFFIXES = {'state_dict': '.state_dict.pth', 'torchscript': '.torchscript.pt', 'onnx': '.onnx'}


class LogitsModel(torch.nn.Module):
    """The classifier as a plain ``tensor -> logits`` module (what tracing and ONNX need)."""

    def __init__(self, classifier: torch.nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.classifier(inputs, mode='tensor')


def input_size(cfg) -> Tuple[int, int]:
    """``(height, width)`` the config's test pipeline feeds the network."""
    size = None
    for step in cfg.test_dataloader.dataset.pipeline:
        kind = bare_type(step['type'])
        if kind == 'DecodeCenterCrop':
            size = step.get('crop_size', 224)
        elif kind in ('CenterCrop', 'EfficientNetCenterCrop'):
            size = step['crop_size']
        elif kind in ('Resize', 'RandomResizedCrop', 'DecodeRandomResizedCrop') and \
                'scale' in step:
            size = step['scale']
    if size is None:
        raise ExplainedValueError('cannot tell the input size from the config\'s test pipeline; '
                                  'give it (export.py --input-size H W, get_flops.py --shape H W)')
    if isinstance(size, int):
        return size, size
    width, height = size  # mmcv scales are (width, height)
    return int(height), int(width)


def preprocessing(cfg) -> dict:
    """What a deployer must do to an image before the exported network sees it."""
    pre = cfg.get('data_preprocessor') or cfg.model.get('data_preprocessor') or {}
    return dict(mean=list(pre.get('mean', [0., 0., 0.])), std=list(pre.get('std', [1., 1., 1.])),
                channel_order='RGB' if pre.get('to_rgb') else 'BGR',
                scale='0-255 pixel values before (x - mean) / std',
                # how the image becomes the input size (decoding and cropping steps, not the
                # packing into a data sample)
                test_pipeline=[dict(step) for step in cfg.test_dataloader.dataset.pipeline
                               if bare_type(step['type']) not in PACK_TYPES])


def _check_inputs(shape: Tuple[int, int], batches: Sequence[int],
                  seed: int = 0) -> List[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(n, 3, *shape, generator=generator) for n in batches]


def _compare(run: Callable[[torch.Tensor], np.ndarray], reference: torch.nn.Module,
             inputs: List[torch.Tensor], what: str) -> float:
    """Largest absolute difference between ``run`` and ``reference`` over ``inputs``."""
    worst = 0.
    print(f'checking {what} on {len(inputs)} batches (batch sizes {[len(x) for x in inputs]})')
    bar = ProgressBar(len(inputs))
    for x in inputs:
        with torch.no_grad():
            expected = reference(x).float().cpu().numpy()
        got = np.asarray(run(x))
        if got.shape != expected.shape:
            raise ExplainedRuntimeError(f'{what} returned shape {got.shape} for a batch of '
                                        f'{len(x)}, PyTorch {expected.shape}')
        worst = max(worst, float(np.abs(got - expected).max()))
        bar.update()
    print()
    return worst


def _export_state_dict(model: torch.nn.Module, out: str) -> Callable:
    atomic_save(model.state_dict(), out)
    # The check: a fresh model of the same config, the written file loaded strictly into it.
    from .inference import init_model

    twin = LogitsModel(init_model(model.cfg, device='cpu'))
    twin.classifier.load_state_dict(torch.load(out, map_location='cpu', weights_only=True),
                                    strict=True)

    def run(x: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return twin(x).numpy()
    return run


def _export_torchscript(wrapper: torch.nn.Module, example: torch.Tensor, out: str) -> Callable:
    with torch.no_grad():
        traced = torch.jit.trace(wrapper, example, check_trace=False)
    atomic_write(out, lambda f: torch.jit.save(traced, f))
    loaded = torch.jit.load(out, map_location='cpu')

    def run(x: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return loaded(x).numpy()
    return run


def _export_onnx(wrapper: torch.nn.Module, example: torch.Tensor, out: str,
                 dynamic_batch: bool, opset: Optional[int]) -> Callable:
    compat.require_torch((2, 6), 'ONNX export (it goes through torch.export)')
    require('onnx', 'ONNX export')
    require('onnxscript', 'ONNX export')  # torch.onnx's exporter is built on it
    kwargs = dict(input_names=['input'], output_names=['logits'], dynamo=True,
                  external_data=False)
    if opset is not None:
        kwargs['opset_version'] = opset
    if dynamic_batch:
        kwargs['dynamic_shapes'] = {'inputs': {0: torch.export.Dim('batch', min=1)}}
    with torch.no_grad():
        program = torch.onnx.export(wrapper, (example, ), None, **kwargs)
    data = program.model_proto.SerializeToString()
    atomic_write(out, lambda f: f.write(data))
    onnxruntime = require('onnxruntime', f'{out} was written; checking it (--no-check skips that)')
    session = onnxruntime.InferenceSession(out, providers=['CPUExecutionProvider'])
    name = session.get_inputs()[0].name

    def run(x: torch.Tensor) -> np.ndarray:
        return session.run(None, {name: x.numpy()})[0]
    return run


def export_model(model: torch.nn.Module, fmt: str, out: str, *,
                 dynamic_batch: bool = False,
                 size: Optional[Tuple[int, int]] = None,
                 opset: Optional[int] = None,
                 check: bool = True,
                 check_batches: int = 4,
                 atol: float = 1e-4) -> Dict[str, object]:
    """Write ``model`` (from :func:`~resnest_mm.apis.init_model`) as ``fmt`` to ``out``.

    Exports run on the CPU in fp32: the model is moved there.

    Args:
        model: The classifier, with ``cfg`` and ``dataset_meta`` (``init_model`` sets them).
        fmt: ``'state_dict'``, ``'torchscript'`` or ``'onnx'``.
        out: Where to write; ``out + '.json'`` gets the input size, preprocessing and classes.
        dynamic_batch: Let the batch size vary (ONNX: a symbolic batch axis; TorchScript is
            traced and takes any batch size anyway). The check then uses other batch sizes
            than the one exported with.
        size: ``(height, width)``; from the config's test pipeline when None.
        opset: ONNX opset; the exporter's default when None.
        check: Run the written file and compare with PyTorch (fp32, CPU).
        check_batches: How many random batches the check runs.
        atol: Largest absolute logit difference the check accepts.

    Returns:
        ``format``, ``path``, ``meta_path``, ``input_shape`` and ``max_abs_diff`` (None without
        the check).

    Raises:
        ExplainedValueError: unknown format, or the check found a larger difference than
            ``atol`` (the files stay, for inspection).
    """
    if fmt not in FORMATS:
        raise ExplainedValueError(f'--format {fmt!r}: choose one of {", ".join(FORMATS)}')
    if check and check_batches < 1:
        raise ExplainedValueError(f'check_batches={check_batches}: at least 1 to check')
    model = model.cpu().float().eval()
    height, width = size or input_size(model.cfg)
    wrapper = LogitsModel(model).eval()
    example = _check_inputs((height, width), [2], seed=1)[0]
    if fmt == 'state_dict':
        runner = _export_state_dict(model, out)
    elif fmt == 'torchscript':
        runner = _export_torchscript(wrapper, example, out)
    else:
        runner = _export_onnx(wrapper, example, out, dynamic_batch, opset)
    # Traced TorchScript and state dicts take any batch size; ONNX only with dynamic_batch.
    any_batch = dynamic_batch or fmt != 'onnx'
    batches = [3, 1, 5, 2] if any_batch else [2] * 4
    max_diff = None
    if check:
        inputs = _check_inputs((height, width), (batches * check_batches)[:check_batches])
        max_diff = _compare(runner, wrapper, inputs, f'{out} ({fmt})')
    meta = dict(format=fmt, input_shape=['N' if any_batch else 2, 3, height, width],
                input_name='input', output='logits (softmax gives probabilities)',
                preprocessing=preprocessing(model.cfg),
                classes=(getattr(model, 'dataset_meta', None) or {}).get('classes'),
                check=dict(max_abs_diff=max_diff, atol=atol,
                           runtime={'onnx': 'onnxruntime (CPU)', 'torchscript': 'torch.jit.load',
                                    'state_dict': 'torch.load into a fresh model'}[fmt]),
                torch=torch.__version__)
    meta_path = out + '.json'
    atomic_write(meta_path, lambda f: f.write(json.dumps(meta, indent=2).encode()))
    if max_diff is not None and max_diff > atol:
        raise ExplainedValueError(
            f'{out}: the exported {fmt} model differs from PyTorch by {max_diff:.3g} '
            f'(allowed {atol:g}); the file is kept for inspection')
    return dict(format=fmt, path=out, meta_path=meta_path, input_shape=meta['input_shape'],
                max_abs_diff=max_diff)
