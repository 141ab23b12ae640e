# The paper's ResNeSt-50 recipe (81.03 top-1 reported by the authors): 8 x 256 images, LR 0.8 for
# the global batch 2048, 270 epochs with 5 linear warm-up epochs then cosine, mixup 0.2, label
# smoothing 0.1, no weight decay on norm layers and biases, AutoAugment.
_base_ = [
    './_base_/models/resnest50.py',
    './_base_/datasets/imagenet_bs128.py',
    './_base_/schedules/imagenet_bs1024_coslr_120e.py',
    './_base_/default_runtime.py',
]

model = dict(
    head=dict(loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')),
    # mixup on the device (no host sync), from the run's seed
    train_cfg=dict(augments=dict(type='NpuMixup', alpha=0.2)),
)

train_pipeline = [
    dict(type='resnest_mm.DecodeRandomResizedCrop', scale=224, crop_ratio_range=(0.1, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='AutoAugment', policies='imagenet',
         hparams=dict(pad_val=[104, 116, 124])),  # the BGR mean pixel
    dict(type='resnest_mm.FastColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    dict(type='resnest_mm.FastLighting', eigval={{_base_.EIGVAL}}, eigvec={{_base_.EIGVEC}},
         alphastd=0.1, on_device=True),
    dict(type='PackInputs', meta_keys={{_base_.PACK_META_KEYS}}),
]
train_dataloader = dict(batch_size=256, dataset=dict(pipeline=train_pipeline))

optim_wrapper = dict(
    optimizer=dict(lr=0.8),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=265, eta_min=0., by_epoch=True, begin=5, end=270,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=270)
auto_scale_lr = dict(base_batch_size=2048)
