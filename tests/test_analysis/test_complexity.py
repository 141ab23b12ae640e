"""FLOPs and parameters of the configs' classifiers."""
import pytest

from resnest_mm.analysis.complexity import model_complexity

pytestmark = pytest.mark.slow  # ResNeSt-50 traced at 224 pixels (a minute or more on 2 cores)


def test_resnest50_imagenet_matches_the_paper():
    info = model_complexity('configs/resnest50_8xb128_in1k.py')
    assert info['input_shape'] == (1, 3, 224, 224)
    assert info['params'] == 27_483_240  # the parity tests' count for ResNeSt-50
    # the paper: 5.39 GFLOPs (multiply-adds) at 224
    assert abs(info['flops'] / 5.39e9 - 1) < 0.01


def test_other_input_size_scales_the_flops():
    small = model_complexity('configs/resnest50_8xb128_in1k.py', (112, 112), show_table=True)
    assert small['params'] == 27_483_240
    assert 0.2 < small['flops'] / 5.4e9 < 0.3
    assert 'backbone' in small['table']
