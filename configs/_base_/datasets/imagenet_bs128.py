# ImageNet-1k in folder layout: data/imagenet/{train,val}/<wnid>/*.JPEG, with the seed's transforms.
dataset_type = 'ImageNet'
data_root = 'data/imagenet'

data_preprocessor = dict(
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

train_pipeline = [
    dict(type='LoadImageRobust'),  # CMYK, PNG-as-JPEG, EXIF; bad files skipped and reported
    # seed: area 0.1-1 (not torchvision's 0.08), ratio 3/4-4/3, centre-crop fallback, bilinear
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.1, 1.0), backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    dict(type='Lighting', eigval=EIGVAL, eigvec=EIGVEC, alphastd=0.1, to_rgb=False),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageRobust', on_error='placeholder'),  # evaluation covers every file
    # seed: the centre square of 224/256 of the short side, resized to 224 (bilinear)
    dict(type='EfficientNetCenterCrop', crop_size=224, crop_padding=32,
         interpolation='bilinear', backend='pillow'),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=128,  # per device
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
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
