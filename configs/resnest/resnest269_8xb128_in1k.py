# ResNeSt-269 on ImageNet-1k: the network of the authors' resnest269 (stem width 64), evaluated
# at their 416 px: the centre square of 416/(416+32) of the short side, resized to 416 (their
# scripts/torch/verify.py, ECenterCrop; they resize bicubic, we antialiased bilinear). Its
# released weights are `resnest269` in the model index (and timm's copy), so
# `python tools/test.py configs/resnest/resnest269_8xb128_in1k.py resnest269` scores them.
# Training keeps the seed's ResNeSt-50 recipe (8 x 128, 120 epochs): untuned for this depth.
_base_ = ['../resnest50_8xb128_in1k.py']

model = dict(backbone=dict(depth=269))
test_pipeline = [
    dict(type='resnest_mm.DecodeCenterCrop', crop_size=416, crop_padding=32, planar=False),
    dict(type='resnest_mm.PackForDevice'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
