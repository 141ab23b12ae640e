# The seed's 1-device recipe (train_full_1p.sh): 128 images, LR 0.05, 120 epochs.
_base_ = ['./resnest50_8xb128_in1k.py']

optim_wrapper = dict(optimizer=dict(lr=0.05))
auto_scale_lr = dict(base_batch_size=128)
