# ResNeSt-101 on ImageNet-1k: the network of the authors' resnest101 (stem width 64), evaluated
# at their 256 px: the centre square of 256/(256+32) of the short side, resized to 256 (their
# scripts/torch/verify.py, ECenterCrop; they resize bicubic, we antialiased bilinear). Its
# released weights are `resnest101` in the model index (and timm's copy), so
# `python tools/test.py configs/resnest/resnest101_8xb128_in1k.py resnest101` scores them.
# Training keeps the seed's ResNeSt-50 recipe (8 x 128, 120 epochs): untuned for this depth.
_base_ = ['../resnest50_8xb128_in1k.py']

model = dict(backbone=dict(depth=101))
test_pipeline = [
    dict(type='resnest_mm.DecodeCenterCrop', crop_size=256, crop_padding=32, planar=False),
    dict(type='resnest_mm.PackForDevice'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
