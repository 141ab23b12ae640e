# The seed's fine-tuning recipe (config *_finetune_1p.yaml): the 1-device recipe on a folder
# dataset with 1200 classes, starting from an ImageNet checkpoint with a fresh classifier.
# data/custom/{train,val}/<class name>/*.{jpg,png,...}; class names are the folder names.
_base_ = ['./resnest50_1xb128_in1k.py']

num_classes = 1200
model = dict(head=dict(num_classes=num_classes))
data_preprocessor = dict(num_classes=num_classes)

# The ResNeSt authors' ImageNet weights (81.03 top-1), by their model index name: downloaded once
# into the torch hub cache, SHA-256 checked, converted at load (docs/models.md). Your own run
# instead: load_from = 'work_dirs/resnest50_8xb128_in1k/epoch_120.pth'.
load_from = 'resnest50'
default_hooks = dict(checkpoint_adapter=dict(head_mismatch='reinit'))  # a new classifier

data_root = 'data/custom'
train_dataloader = dict(
    dataset=dict(_delete_=True, type='resnest_mm.CustomDataset', data_root=data_root,
                 data_prefix='train',
                 pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    dataset=dict(_delete_=True, type='resnest_mm.CustomDataset', data_root=data_root,
                 data_prefix='val',
                 pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
