# ImageNet-1k in folder layout: data/imagenet/{train,val}/<wnid>/*.JPEG, with the seed's transforms.
dataset_type = 'ImageNet'
data_root = 'data/imagenet'

data_preprocessor = dict(
    # mmpretrain's ClsDataPreprocessor that also adds the lighting noise drawn by FastLighting
    type='resnest_mm.AugmentOnDevicePreprocessor',
    num_classes=1000,
    mean=[123.675, 116.28, 103.53],  # ImageNet RGB statistics, 0-255
    std=[58.395, 57.12, 57.375],
    to_rgb=True,  # images are decoded BGR; the preprocessor hands RGB to the model
)

# PCA lighting noise of AlexNet / fb.resnet.torch (as the seed), on 0-255 values, BGR order.
EIGVAL = [55.4625, 4.7940, 1.1475]
EIGVEC = [[-0.5836, -0.6948, 0.4203],
          [-0.5808, -0.0045, -0.8140],
          [-0.5675, 0.7192, 0.4009]]

# mmpretrain's PackInputs keys, and the lighting noise for the data preprocessor
PACK_META_KEYS = ('sample_idx', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                  'flip_direction', 'lighting_offset')
train_pipeline = [
    # Load + the seed's RandomResizedCrop (area 0.1-1, ratio 3/4-4/3, centre-crop fallback,
    # antialiased bilinear) in one step: the JPEG is decoded at reduced size when the crop allows.
    # CMYK, PNG-as-JPEG, EXIF handled; unreadable files skipped and reported.
    dict(type='resnest_mm.DecodeRandomResizedCrop', scale=224, crop_ratio_range=(0.1, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    # the seed's ColorJitter and PCA lighting, as mmpretrain's (uint8, rounded as Pillow's)
    dict(type='resnest_mm.FastColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    # drawn here, added on the device by the data preprocessor: batches stay uint8 to the device
    dict(type='resnest_mm.FastLighting', eigval=EIGVAL, eigvec=EIGVEC, alphastd=0.1,
         on_device=True),
    dict(type='PackInputs', meta_keys=PACK_META_KEYS),
]
test_pipeline = [
    # the seed's evaluation crop: the centre square of 224/256 of the short side, resized to
    # 224 (antialiased bilinear); unreadable files scored as black images, and reported
    dict(type='resnest_mm.DecodeCenterCrop', crop_size=224, crop_padding=32, planar=False),
    # no copy into CHW order in the worker: the data preprocessor reorders on the device
    dict(type='resnest_mm.PackForDevice'),
]

train_dataloader = dict(
    batch_size=128,  # per device
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    # the last incomplete batch is dropped, as timm does: a batch of 1 sample would stop
    # training (BatchNorm in training mode, split attention's included, refuses it)
    drop_last=True,
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline),
    # DefaultSampler that can start mid-epoch; seeds each sample's augmentation
    sampler=dict(type='resnest_mm.ResumableSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=256,  # the seed's test batch
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    dataset=dict(type=dataset_type, data_root=data_root, split='val', pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
