# The seed's 8-device recipe (train_full_8p.sh): 8 x 128 images, LR 0.4, 120 epochs.
# Seed report: 78.808 top-1 after 120 epochs on 8 Ascend 910 with apex O1.
_base_ = [
    './_base_/models/resnest50.py',
    './_base_/datasets/imagenet_bs128.py',
    './_base_/schedules/imagenet_bs1024_coslr_120e.py',
    './_base_/default_runtime.py',
]

# The seed trained with apex AMP O1 and combine_grad on Ascend; without apex (CUDA, CPU) the hook
# falls back to the device's native AMP (fp16 + dynamic loss scaling / bf16 autocast). A switch:
# `--cfg-options default_hooks.apex_amp=None` trains in fp32.
default_hooks = dict(
    apex_amp=dict(type='resnest_mm.ApexAmpHook', opt_level='O1', loss_scale='dynamic',
                  combine_grad=True,
                  float_functions=[('torch', 'sigmoid'), ('torch', 'softmax')]))
