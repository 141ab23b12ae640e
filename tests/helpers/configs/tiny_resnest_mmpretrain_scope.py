# The tiny ResNeSt config as an mmpretrain user writes it: mmpretrain's scope, resnest_mm
# imported for its types (named 'resnest_mm.X', so none resolves to mmpretrain's class).
_base_ = ['./tiny_resnest_digits.py']

default_scope = 'mmpretrain'
custom_imports = dict(imports=['resnest_mm'], allow_failed_imports=False)
