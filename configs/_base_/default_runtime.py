# Runtime shared by every resnest_mm config.
default_scope = 'resnest_mm'
# Our types are named with their scope ('resnest_mm.X'): they stay ours under any default_scope
# (mmpretrain's tools and APIs build in scope 'mmpretrain', which has its own ResNeSt).
# mmengine's Runner with what it lacks for us (gloo on CPU, every launcher on NPU, no silent AMP
# swap, checkpoints loaded as data and verified, stop at a signal): resnest_mm/engine/runner/
runner_type = 'resnest_mm.ResNeStRunner'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),  # the seed printed every 100 iterations
    param_scheduler=dict(type='ParamSchedulerHook'),
    # written atomically; every 10 epochs, every 1000 iterations (resumable mid-epoch), and at
    # the end; the last 3 kept; RNG states included
    checkpoint=dict(type='resnest_mm.AtomicCheckpointHook', interval=10, iter_interval=1000,
                    max_keep_ckpts=3, save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False),
    # resnest_mm's hooks go here too, under keys: a config changes or drops one by its key
    # (default_hooks merge key by key) and re-listing custom_hooks cannot lose them.
    checkpoint_adapter=dict(type='resnest_mm.CheckpointAdapterHook', head_mismatch='error'),
    # stops at NaN/inf; never saves NaN weights
    non_finite_loss=dict(type='resnest_mm.NonFiniteLossHook'),
    throughput=dict(type='resnest_mm.ThroughputHook', skip_iters=2),  # FPS as the seed measured
    summary=dict(type='resnest_mm.RunSummaryHook'),  # <work_dir>/summary.json
    # lists bad files
    unreadable_images=dict(type='resnest_mm.UnreadableImageHook', max_fraction=0.001),
    # refuses labels that are not class indices of model.head before a loop starts
    label_range=dict(type='resnest_mm.LabelRangeHook'),
    # a bar on a terminal, else a line per 10 %
    progress_bar=dict(type='resnest_mm.ProgressBarHook'),
)
custom_hooks = []

env_cfg = dict(
    cudnn_benchmark=True,  # fixed input size: let cuDNN pick the fastest kernels
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # The process-group backend follows the device (hccl / nccl / gloo); tools/train.py fills it
    # in from resnest_mm.device unless set here.
    dist_cfg=dict(),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=1, deterministic=False)  # the seed script used seed 1
