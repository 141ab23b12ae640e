# ResNeSt-101 classifier (stem width 64, as in the original).
_base_ = ['./resnest50.py']
model = dict(backbone=dict(depth=101))
