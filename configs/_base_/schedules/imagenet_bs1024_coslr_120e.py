# The seed's schedule: SGD, LR 0.05 per 128 images (0.4 for the global batch 1024), 120 epochs,
# cosine per iteration down to 0, no warm-up, weight decay 1e-4 on every parameter.
# NpuFusedSGD is the fused SGD of the device (torch_npu's / apex's on Ascend as the seed used,
# torch's fused SGD on CUDA and CPU), with torch.optim.SGD's semantics.
optim_wrapper = dict(
    optimizer=dict(type='resnest_mm.NpuFusedSGD', lr=0.4, momentum=0.9, weight_decay=1e-4))
param_scheduler = dict(
    type='CosineAnnealingLR', T_max=120, eta_min=0., by_epoch=True, begin=0, end=120,
    convert_to_iter_based=True)
# mmengine's epoch loop that also resumes mid-epoch from an iteration checkpoint
train_cfg = dict(type='resnest_mm.ResumableEpochBasedTrainLoop', max_epochs=120,
                 val_interval=10)  # and at the end
val_cfg = dict()
test_cfg = dict()
# LR above is for 8 devices x 128 images; other world sizes / batch sizes scale it linearly.
auto_scale_lr = dict(base_batch_size=1024, enable=True)
