# The seed's 8-device performance run (train_performance_8p.sh): one epoch, FPS, no validation.
# Seed report: 3168.55 FPS on 8 Ascend 910.
_base_ = ['./resnest50_8xb128_in1k.py']

train_cfg = dict(max_epochs=1)
param_scheduler = dict(T_max=1, end=1)
val_dataloader = None
val_evaluator = None
val_cfg = None
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=1))
