# The demo recipe (ResumableSampler, ResumableEpochBasedTrainLoop, AtomicCheckpointHook, the
# safety hooks) on a tiny ResNet-18 (8 base channels), for the tests where the network does not
# matter and several processes or restarts do. mmpretrain's Mixup draws from the global numpy
# and torch RNGs, so a resume is bit-identical only if every rank's RNG states come back.
_base_ = ['../../../configs/resnest50_1xb32_digits.py']

custom_imports = dict(imports=['tests.helpers.interrupt_hooks'], allow_failed_imports=False)

num_classes = 2
model = dict(
    backbone=dict(_delete_=True, type='ResNet', depth=18, stem_channels=8, base_channels=8),
    head=dict(num_classes=num_classes, in_channels=64, topk=(1, )),
    train_cfg=dict(augments=dict(type='Mixup', alpha=0.2)))
data_preprocessor = dict(num_classes=num_classes)
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
epochs = 2
train_cfg = dict(max_epochs=epochs)
param_scheduler = [dict(type='CosineAnnealingLR', T_max=epochs, by_epoch=True,
                        convert_to_iter_based=True)]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False)
val_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False)
test_dataloader = val_dataloader
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=1, iter_interval=2, max_keep_ckpts=-1))
custom_hooks = [dict(type='InterruptHook')]  # INTERRUPT=at:rank:sig in the environment
randomness = dict(seed=5, deterministic=True)
auto_scale_lr = dict(base_batch_size=2, enable=False)
