# The demo: ResNeSt-50 learns scikit-learn's handwritten digits (10 classes, 1,437 train / 360 val
# images, 8x8 scans written as 32x32 JPEGs by tools/dataset_converters/make_digits.py) in minutes
# on a 2-core CPU. `make demo` runs it.
_base_ = ['./_base_/models/resnest50.py', './_base_/default_runtime.py']

num_classes = 10
# zero-init residuals: a stable start from scratch on a tiny data set
model = dict(backbone=dict(zero_init_residual=True),
             head=dict(num_classes=num_classes, topk=(1, 5)))
data_preprocessor = dict(
    num_classes=num_classes,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True,
)

data_root = 'data/digits'
train_pipeline = [
    # CMYK, PNG-as-JPEG, EXIF; bad files skipped and reported
    dict(type='resnest_mm.LoadImageRobust'),
    # no flips: digits are not mirror-symmetric
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.6, 1.0)),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='resnest_mm.LoadImageRobust', on_error='placeholder'),  # evaluation covers every file
    dict(type='Resize', scale=(32, 32)),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    drop_last=True,  # no last batch of 1 sample, which BatchNorm refuses in training
    dataset=dict(type='resnest_mm.CustomDataset', data_root=data_root, data_prefix='train',
                 pipeline=train_pipeline),
    sampler=dict(type='resnest_mm.ResumableSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(type='resnest_mm.CustomDataset', data_root=data_root, data_prefix='val',
                 pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

epochs = 10
optim_wrapper = dict(
    optimizer=dict(type='resnest_mm.NpuFusedSGD', lr=0.05, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=epochs - 1, eta_min=0., by_epoch=True, begin=1,
         end=epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='resnest_mm.ResumableEpochBasedTrainLoop', max_epochs=epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=32, enable=True)

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=5, max_keep_ckpts=1, save_last=True),
)
