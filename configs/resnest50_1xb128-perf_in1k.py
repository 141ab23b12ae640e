# The seed's 1-device performance run (train_performance_1p.sh): one epoch, FPS, no validation.
# Seed report: 388.38 FPS on one Ascend 910.
_base_ = ['./resnest50_8xb128-perf_in1k.py']

optim_wrapper = dict(optimizer=dict(lr=0.05))  # 0.05 per 128 images, as the 1-device recipe
auto_scale_lr = dict(base_batch_size=128)
