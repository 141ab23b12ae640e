"""One real, tiny training run of the demo config, shared by the tests of what comes after
training (inference, export, curves, TensorBoard, the progress bar)."""
import glob
import os

from tests.helpers.images import write_image_folder

# sorted: CustomDataset numbers the class folders in name order
DIGIT_NAMES = sorted(['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight',
                      'nine'])
CONFIG = 'configs/resnest50_1xb32_digits.py'


def tiny_digits_run(root: str) -> dict:
    """Train the digits config for 2 epochs on 10 classes x 2 real JPEGs, with TensorBoard on.

    Returns:
        dict: ``work_dir``, ``checkpoint`` (the last one), ``log_json`` (the scalar log),
        ``data_root``, ``images`` (a val image per class, in class order), ``stdout``.
    """
    import contextlib
    import io

    from resnest_mm.frontends.cli import train

    data_root = os.path.join(root, 'digits')
    for split, seed in (('train', 0), ('val', 1)):
        write_image_folder(os.path.join(data_root, split), DIGIT_NAMES, per_class=2, size=40,
                           seed=seed)
    work_dir = os.path.join(root, 'work')
    options = ['train_cfg.max_epochs=2', 'default_hooks.logger.interval=1',
               'default_hooks.checkpoint.interval=1']
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [f'{loader}.dataset.data_root={data_root}', f'{loader}.batch_size=4',
                    f'{loader}.num_workers=0', f'{loader}.persistent_workers=False']
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        train([CONFIG, '--work-dir', work_dir, '--tensorboard', '--cfg-options', *options])
    with open(os.path.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    logs = glob.glob(os.path.join(work_dir, '*', 'vis_data', '2*.json'))
    assert len(logs) == 1, logs
    images = [sorted(glob.glob(os.path.join(data_root, 'val', name, '*.JPEG')))[0]
              for name in DIGIT_NAMES]
    return dict(work_dir=work_dir, checkpoint=checkpoint, log_json=logs[0], data_root=data_root,
                images=images, stdout=out.getvalue())
