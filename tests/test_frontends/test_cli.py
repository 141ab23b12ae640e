"""Command-line flags to config: what tools/train.py and tools/test.py change."""
import os

import pytest
from mmengine.config import Config

from resnest_mm import device
from resnest_mm.frontends.cli import merge_test_args, merge_train_args, test_parser, train_parser
from resnest_mm.registry import bare_type

CONFIG = 'configs/resnest50_8xb128_in1k.py'
DIGITS = 'configs/resnest50_1xb32_digits.py'  # no ApexAmpHook


def _train(*argv, config=CONFIG):
    args = train_parser().parse_args([config, *argv])
    return merge_train_args(Config.fromfile(config), args)


def test_defaults():
    cfg = _train()
    assert cfg.work_dir == './work_dirs/resnest50_8xb128_in1k'
    assert cfg.launcher == 'none' and cfg.resume is False
    assert cfg.env_cfg.dist_cfg.backend == device.dist_backend()
    assert cfg.optim_wrapper.get('type', 'OptimWrapper') == 'OptimWrapper'


def test_amp_resume_validate_and_options():
    cfg = _train('--amp', '--no-validate', '--resume', '--work-dir', 'w',
                 '--cfg-options', 'train_dataloader.batch_size=64', '--launcher', 'pytorch',
                 config=DIGITS)
    assert bare_type(cfg.optim_wrapper.type) == device.amp_wrapper_type()
    assert cfg.optim_wrapper.get('loss_scale') == ('dynamic' if device.needs_loss_scaling()
                                                   else None)
    assert cfg.val_cfg is None and cfg.val_dataloader is None and cfg.val_evaluator is None
    assert cfg.resume is True and cfg.load_from is None  # latest checkpoint of the work dir
    assert cfg.work_dir == 'w' and cfg.launcher == 'pytorch'
    assert cfg.train_dataloader.batch_size == 64


def test_resume_from_path_and_auto_scale_lr():
    cfg = _train('--resume', 'ckpt.pth', '--auto-scale-lr',
                 '--cfg-options', 'auto_scale_lr.enable=False')
    assert cfg.resume is True and cfg.load_from == 'ckpt.pth'
    assert cfg.auto_scale_lr.enable is True


def test_test_args():
    args = test_parser().parse_args([CONFIG, 'model.pth', '--out', 'preds.pkl'])
    cfg = merge_test_args(Config.fromfile(CONFIG), args)
    assert cfg.load_from == 'model.pth' and cfg.resume is False
    assert cfg.test_evaluator[-1] == dict(type='DumpResults', out_file_path='preds.pkl')


def test_amp_flag_picks_the_device_flavour():
    cfg = _train('--amp', config=DIGITS)
    if device.device_type() == 'cpu':
        assert cfg.optim_wrapper.type == 'resnest_mm.CpuAmpOptimWrapper'  # any default scope
        assert cfg.optim_wrapper.dtype == 'bfloat16'
    else:
        assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
        assert cfg.optim_wrapper.dtype == 'float16'


def test_amp_flag_leaves_apex_hook_configs_to_the_hook():
    cfg = _train('--amp')  # the seed's recipe has ApexAmpHook
    assert cfg.default_hooks.apex_amp.type == 'resnest_mm.ApexAmpHook'
    assert cfg.optim_wrapper.get('type', 'OptimWrapper') == 'OptimWrapper'


def test_contract_backend_is_hccl_on_a_simulated_npu(simulated_npu):
    """Contract test (torch_npu stand-in): the process group backend follows the device."""
    assert _train().env_cfg.dist_cfg.backend == 'hccl'


def test_speed_switches():
    cfg = _train('--channels-last', '--compile', '--prof', '3', '--work-dir', 'w')
    # one key, read by the runner; the backbone is not told (it takes the layout it is given)
    assert cfg.channels_last is True and 'channels_last' not in cfg.model.backbone
    assert cfg.compile is True
    prof = cfg.custom_hooks[-1]
    assert prof['type'] == 'ProfilerHook' and prof['profile_times'] == 3  # CPU here
    assert prof['json_trace_path'] == 'w/trace.json'
    assert prof['on_trace_ready']['type'] == 'log_trace'
    assert _train('--prof').custom_hooks[-1]['profile_times'] == 10


def test_npu_profiler_on_ascend(simulated_npu):
    """Contract: on an NPU, --prof asks for torch_npu's current profiler (our hook), not
    mmengine's NPUProfilerHook, whose torch_npu.npu.profile is gone since 2.1.0-6.0.rc1."""
    hook = _train('--prof', '2', '--work-dir', 'w').custom_hooks[-1]
    assert hook == dict(type='resnest_mm.TorchNpuProfilerHook', iters=2, out_dir='w/npu_profiling')


def test_a_restarted_group_resumes_by_itself(monkeypatch):
    """torchrun --max-restarts sets TORCHELASTIC_RESTART_COUNT; a requeued Slurm job
    SLURM_RESTART_COUNT: the run continues from the work dir's newest checkpoint."""
    assert _train().resume is False
    monkeypatch.setenv('TORCHELASTIC_RESTART_COUNT', '1')
    cfg = _train()
    assert cfg.resume is True and cfg.load_from is None and 'resume_fallback' not in cfg
    # the command's --resume PATH only when the work dir has nothing yet (it may be pruned)
    explicit = _train('--resume', 'x.pth')
    assert explicit.load_from is None and explicit.resume_fallback == dict(path='x.pth',
                                                                           resume=True)
    # fine-tuning weights are not dropped by a restart that comes before the first checkpoint
    tuned = _train('--cfg-options', 'load_from=w.pth')
    assert tuned.load_from is None and tuned.resume_fallback == dict(path='w.pth', resume=False)
    monkeypatch.setenv('TORCHELASTIC_RESTART_COUNT', '0')
    monkeypatch.setenv('SLURM_RESTART_COUNT', '2')
    assert _train().resume is True


def test_channels_last_means_the_same_for_every_backbone():
    args = train_parser().parse_args([DIGITS, '--channels-last'])
    cfg = Config.fromfile(DIGITS)
    cfg.model.backbone = dict(type='TIMMBackbone', model_name='resnet18', pretrained=False)
    cfg = merge_train_args(cfg, args)
    assert cfg.channels_last is True and 'channels_last' not in cfg.model.backbone


def test_tensorboard_switch_adds_the_backend_once():
    cfg = _train('--tensorboard')
    types = [b['type'] for b in cfg.visualizer.vis_backends]
    assert types == ['LocalVisBackend', 'TensorboardVisBackend']
    args = train_parser().parse_args([CONFIG, '--tensorboard'])
    assert [b['type'] for b in merge_train_args(cfg, args).visualizer.vis_backends] == types


@pytest.mark.slow
def test_tensorboard_event_files_appear_in_a_real_run(tiny_run):
    """The tiny run trains with --tensorboard: its events hold the logged scalars."""
    import glob

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = glob.glob(os.path.join(tiny_run['work_dir'], '*', 'vis_data', 'events.out.*'))
    assert len(events) == 1
    accumulator = EventAccumulator(events[0])
    accumulator.Reload()
    tags = set(accumulator.Tags()['scalars'])
    assert {'loss', 'lr', 'fps', 'accuracy/top1'} <= tags
    assert len(accumulator.Scalars('loss')) == 10


def test_decode_on_device_flag_and_config_key_rewrite_the_train_pipeline():
    for cfg in (_train('--decode-on-device'),
                _train('--cfg-options', 'decode_on_device=True')):
        assert [t['type'] for t in cfg.train_dataloader.dataset.pipeline] == [
            'resnest_mm.ReadForDeviceDecode', 'PackInputs']
        assert cfg.data_preprocessor.type == 'resnest_mm.DecodeOnDevicePreprocessor'
    assert _train().train_dataloader.dataset.pipeline[0]['type'] != \
        'resnest_mm.ReadForDeviceDecode'
