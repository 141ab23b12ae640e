# The digits demo config as an mmpretrain user writes one: mmpretrain's default scope, resnest_mm
# imported for its types (named 'resnest_mm.X', so none resolves to mmpretrain's class of the
# same name). The tests run mmpretrain's tools and APIs and ours on it.
_base_ = ['../../../configs/resnest50_1xb32_digits.py']

default_scope = 'mmpretrain'
custom_imports = dict(imports=['resnest_mm'], allow_failed_imports=False)
