# timm's resnest50d in our ImageNet recipe (same head, optimizer, data preprocessor, AMP
# switch): the peer that tools/benchmark.py and benchmarks/gpu_check.sh compare ours with.
_base_ = ['../resnest50_8xb128_in1k.py']

model = dict(backbone=dict(_delete_=True, type='TIMMBackbone', model_name='resnest50d',
                           pretrained=False))
