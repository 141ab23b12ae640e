# ResNeSt-50 classifier (27,483,240 parameters with the 1000-class head).
model = dict(
    type='ImageClassifier',
    backbone=dict(type='resnest_mm.ResNeSt', depth=50, out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=2048,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5),
    ),
)
