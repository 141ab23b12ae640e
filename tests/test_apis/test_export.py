"""Export to each format, and the check that runs the written file back."""
import json
import os

import numpy as np
import pytest
import torch

from resnest_mm.apis import init_model
from resnest_mm.apis.export import LogitsModel, export_model
from resnest_mm.utils.errors import ExplainedValueError
from tests.helpers.tiny_run import CONFIG, DIGIT_NAMES

pytestmark = pytest.mark.slow  # subprocesses or whole runs


@pytest.fixture(scope='module')
def model(tiny_run):
    return init_model(CONFIG, tiny_run['checkpoint'], device='cpu')


@pytest.mark.parametrize('fmt', ['state_dict', 'torchscript'])
def test_torch_formats_round_trip_exactly(model, fmt, tmp_path):
    out = str(tmp_path / f'model.{fmt}')
    result = export_model(model, fmt, out)
    assert result['max_abs_diff'] == 0.
    meta = json.load(open(out + '.json'))
    assert meta['input_shape'] == ['N', 3, 32, 32]
    assert meta['classes'] == DIGIT_NAMES
    assert meta['preprocessing']['channel_order'] == 'RGB'
    if fmt == 'torchscript':  # loads without resnest_mm and takes another batch size
        loaded = torch.jit.load(out)
        x = torch.randn(7, 3, 32, 32)
        with torch.no_grad():
            np.testing.assert_array_equal(loaded(x).numpy(), LogitsModel(model)(x).numpy())


def test_onnx_with_dynamic_batch_matches_pytorch_in_onnxruntime(model, tmp_path):
    import onnxruntime

    out = str(tmp_path / 'model.onnx')
    result = export_model(model, 'onnx', out, dynamic_batch=True, check_batches=2)
    assert result['max_abs_diff'] <= 1e-4
    session = onnxruntime.InferenceSession(out, providers=['CPUExecutionProvider'])
    assert session.get_inputs()[0].name == 'input'
    x = torch.randn(6, 3, 32, 32)
    got = session.run(None, {'input': x.numpy()})[0]
    with torch.no_grad():
        expected = LogitsModel(model)(x).numpy()
    assert np.abs(got - expected).max() <= 1e-4
    assert json.load(open(out + '.json'))['check']['runtime'] == 'onnxruntime (CPU)'


def test_a_failed_check_is_an_error_and_keeps_the_file(model, tmp_path):
    out = str(tmp_path / 'model.pt')
    with pytest.raises(ExplainedValueError, match='differs from PyTorch'):
        export_model(model, 'torchscript', out, atol=-1., check_batches=1)
    assert os.path.isfile(out)


def test_unknown_format(model, tmp_path):
    with pytest.raises(ExplainedValueError, match='choose one of'):
        export_model(model, 'tflite', str(tmp_path / 'x'))


@pytest.mark.parametrize('config', ['configs/resnest50_8xb128_in1k.py',
                                    'configs/resnest/resnest101_8xb128_in1k.py'])
def test_the_preprocessing_a_deployer_gets_holds_no_packing_step(config):
    """The in1k test pipelines pack with PackForDevice (scoped): a deployer has nothing of it to
    run, as of mmpretrain's PackInputs."""
    from mmengine.config import Config

    from resnest_mm.apis.export import preprocessing
    steps = preprocessing(Config.fromfile(config))['test_pipeline']
    assert [step['type'] for step in steps] == ['resnest_mm.DecodeCenterCrop']
