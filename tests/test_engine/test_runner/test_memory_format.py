"""channels_last is decided once (memory_format) and applied once by the runner, to any model and
to the batches its data preprocessor makes; the backbone no longer takes it."""
import pytest
import torch
from mmengine.model import BaseModel

from resnest_mm.engine.runner.memory_format import memory_format, to_memory_format
from resnest_mm.models.backbones import ResNeSt
from resnest_mm.utils.errors import ExplainedError
from tests.helpers.toy_runner import make_runner


class Conv(BaseModel):
    """Any model: records the layout of every batch its forward is given."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.layouts = []

    def forward(self, inputs, labels=None, mode='tensor'):
        self.layouts.append(inputs.is_contiguous(memory_format=torch.channels_last) and
                            not inputs.is_contiguous())
        return self.conv(inputs)


@pytest.mark.parametrize('channels_last', [True, False])
def test_the_runner_converts_the_model_and_its_batches(tmp_path, channels_last):
    runner = make_runner(str(tmp_path), model=Conv(), cfg=dict(channels_last=channels_last))
    model = runner.model
    weight = model.conv.weight
    assert weight.is_contiguous(memory_format=torch.channels_last) is channels_last
    assert weight.is_contiguous() is not channels_last
    out = model.val_step(dict(inputs=torch.randn(2, 3, 8, 8)))  # through the data preprocessor
    assert model.layouts == [channels_last]
    assert out.is_contiguous(memory_format=torch.channels_last) is channels_last


def test_batches_of_other_shapes_pass_unchanged():
    model = to_memory_format(Conv(), torch.channels_last)
    images = [torch.randn(3, 8, 8), torch.randn(3, 6, 6)]  # no batch tensor: nothing to convert
    out = model.data_preprocessor(dict(inputs=images))
    assert all(a is b for a, b in zip(out['inputs'], images))


def test_the_decision(simulated_npu):
    """Contract (torch_npu stand-in): NHWC is refused where the device module says the device
    does not run it, with the key to change; NCHW is always granted."""
    assert memory_format(False) == torch.contiguous_format
    with pytest.raises(ExplainedError, match=r'NPU does not run channels_last tensors; set '
                       r'channels_last = False in the config \(or drop --channels-last\)'):
        memory_format(True)


def test_the_decision_here():
    assert memory_format(True) == torch.channels_last  # CPU (and GPU) run NHWC


def test_the_backbone_refuses_its_old_key_naming_the_new_one():
    with pytest.raises(ExplainedError, match=r'backbone.channels_last=True is no longer read: the '
                       r'memory format is the top-level config key channels_last'):
        ResNeSt(50, channels_last=True)
