"""The tiny-ResNet config of the multi-process and tool tests (tests/helpers/configs/), its data
and the ``--cfg-options`` that point it there."""
import os
import socket

from tests.helpers.images import write_image_folder

TINY = 'tests/helpers/configs/tiny_resnet_digits.py'
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def write_tiny_data(root, per_class: int = 6) -> None:
    """``root/{train,val}/{a,b}/`` with ``per_class`` 32-pixel JPEGs each."""
    for split, seed in (('train', 0), ('val', 1)):
        write_image_folder(os.path.join(str(root), split), ['a', 'b'], per_class=per_class,
                           size=32, seed=seed)


def data_options(data, *extra) -> list:
    """``--cfg-options`` pointing every loader at ``data``, then ``extra`` items."""
    return ['--cfg-options', *(f'{loader}.dataset.data_root={data}' for loader in LOADERS),
            *extra]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
