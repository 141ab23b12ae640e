"""One training run for the kill-and-resume tests (a subprocess, so it can be SIGKILLed).

    python tests/helpers/resume_run.py DATA WORK_DIR [--kill-at N] [--kill-in-save N] [--resume]

The digits recipe with the tiny ResNet of tests/helpers/configs/tiny_resnet_digits.py (what is
checked, the same weights, LR and loss, does not depend on the network; a ResNeSt-50 took most
of these tests' time, its checkpoints 200 MB each) on 24 real JPEGs (batch 4: 6 iterations an
epoch, 2 epochs), the ImageNet configs' random pipeline, 2 data-loader workers, checkpoints
every epoch and every 4 iterations. Each iteration appends ``iter lr loss`` to
``WORK_DIR/trace.txt``; the end writes ``final.pth``.
``--kill-at N`` SIGKILLs the process after iteration N; ``--kill-in-save N`` SIGKILLs it halfway
through writing the N-th checkpoint file.
"""
import argparse
import os
import signal
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('data')
    parser.add_argument('work_dir')
    parser.add_argument('--kill-at', type=int)
    parser.add_argument('--kill-in-save', type=int)
    parser.add_argument('--resume', action='store_true')
    args = parser.parse_args()

    import torch
    from mmengine.config import Config
    from mmengine.hooks import Hook

    import resnest_mm.registry  # noqa: F401
    from resnest_mm.frontends.cli import build_runner
    from resnest_mm.registry import HOOKS

    torch.set_num_threads(1)

    @HOOKS.register_module(force=True)
    class TraceHook(Hook):
        priority = 'LOWEST'

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            lr = runner.optim_wrapper.get_lr()['lr'][0]
            with open(os.path.join(runner.work_dir, 'trace.txt'), 'a') as f:
                f.write(f'{runner.iter + 1} {lr!r} {outputs["loss"].item()!r}\n')
            if runner.iter + 1 == args.kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    if args.kill_in_save:
        from resnest_mm.utils import atomic_local_backend, fileio
        put = atomic_local_backend.AtomicLocalBackend.put
        count = [0]

        def dying_put(self, obj, filepath):
            count[0] += 1
            if count[0] == args.kill_in_save:  # die halfway through the real atomic write
                def half(f):
                    f.write(obj[:len(obj) // 2])
                    f.flush()
                    os.kill(os.getpid(), signal.SIGKILL)
                fileio.atomic_write(str(filepath), half)
            return put(self, obj, filepath)

        atomic_local_backend.AtomicLocalBackend.put = dying_put

    cfg = Config.fromfile(os.path.join(ROOT, 'configs/resnest50_1xb32_digits.py'))
    imagenet = Config.fromfile(os.path.join(ROOT, 'configs/_base_/datasets/imagenet_bs128.py'))
    cfg.model.backbone = dict(type='ResNet', depth=18, stem_channels=8, base_channels=8)
    cfg.model.head.in_channels = 64
    cfg.model.head.num_classes = cfg.data_preprocessor.num_classes = 2
    cfg.model.head.topk = (1, )
    cfg.val_evaluator = cfg.test_evaluator = dict(type='Accuracy', topk=(1, ))
    cfg.train_dataloader.dataset.pipeline = imagenet.train_pipeline
    # its lighting noise is added by its data preprocessor
    cfg.data_preprocessor.type = imagenet.data_preprocessor.type
    cfg.train_dataloader.dataset.pipeline[0].scale = 32
    cfg.val_dataloader.dataset.pipeline = imagenet.test_pipeline
    cfg.val_dataloader.dataset.pipeline[0].update(crop_size=32, crop_padding=4)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = args.data
        loader.batch_size = 4
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg.max_epochs = 2
    cfg.param_scheduler = [dict(type='CosineAnnealingLR', T_max=2, by_epoch=True,
                                convert_to_iter_based=True)]
    cfg.default_hooks.checkpoint = dict(type='AtomicCheckpointHook', interval=1,
                                        iter_interval=4, max_keep_ckpts=2, save_last=True)
    cfg.default_hooks.logger.interval = 1
    cfg.custom_hooks = [h for h in cfg.custom_hooks if h['type'] != 'ThroughputHook']
    cfg.custom_hooks.append(dict(type='TraceHook'))
    cfg.randomness = dict(seed=3, deterministic=True)
    cfg.work_dir = args.work_dir
    cfg.resume = args.resume
    cfg.experiment_name = 'resume'
    runner = build_runner(cfg)
    runner.train()
    torch.save(runner.model.state_dict(), os.path.join(args.work_dir, 'final.pth'))


if __name__ == '__main__':
    main()
