# The seed's 1-device performance run (train_performance_1p.sh): one epoch, FPS, no validation.
# Seed report: 388.38 FPS on one Ascend 910.
_base_ = ['./resnest50_1xb128_in1k.py']

train_cfg = dict(max_epochs=1)
param_scheduler = dict(T_max=1, end=1)
val_dataloader = None
val_evaluator = None
val_cfg = None
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=1))
