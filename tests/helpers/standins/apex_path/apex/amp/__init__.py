"""STAND-IN for Ascend apex's ``apex.amp`` (contract tests only; tests/helpers/standins/README.md).

Signatures and checks follow Ascend apex (NVIDIA apex + ``patch/npu.patch``): ``initialize`` with
``combine_grad``; ``RuntimeError`` for ``combine_grad`` outside O1/O2 and for an optimizer
passed twice; an optimizer that went through ``initialize`` gets ``_amp_stash`` and, with
``combine_grad`` or a fused optimizer, a ``zero_grad`` that takes no arguments;
``register_float_function`` raises ``ValueError`` for a missing attribute; ``state_dict`` holds
only ``loss_scaler%d`` entries and ``load_state_dict`` refuses other keys. Every call is
recorded in ``CALLS``.
"""
import contextlib

CALLS = []
STATE = {'initialized': False, 'loss_scale': 2.0**16, 'unskipped': 0, 'optimizers': []}


def reset():
    CALLS.clear()
    STATE.update(initialized=False, loss_scale=2.0**16, unskipped=0, optimizers=[])


def register_float_function(module, name):
    if not hasattr(module, name):
        raise ValueError(f'No function named {name} in module {module}.')
    CALLS.append(('register_float_function', module.__name__, name, STATE['initialized']))


def _zero_grad_without_arguments(optimizer):
    def zero_grad():
        for group in optimizer.param_groups:
            for param in group['params']:
                if param.grad is not None:
                    param.grad.zero_()
    return zero_grad


def initialize(models, optimizers=None, enabled=True, opt_level='O1', cast_model_type=None,
               patch_torch_functions=None, keep_batchnorm_fp32=None, master_weights=None,
               loss_scale=None, cast_model_outputs=None, num_losses=1, verbosity=1,
               dynamic_init_scale=2.**16, scale_growth_factor=2., scale_backoff_factor=0.5,
               scale_window=2000, min_loss_scale=None, max_loss_scale=2.**24, combine_grad=None,
               combine_ddp=None, ddp_replica_count=4, user_cast_preferred=None,
               check_combined_tensors=None):
    if combine_grad and opt_level not in ('O1', 'O2'):
        raise RuntimeError('combine_grad is only supported with O1 or O2')
    if combine_ddp and not combine_grad:
        raise RuntimeError('combine_ddp requires combine_grad')
    optims = optimizers if isinstance(optimizers, (list, tuple)) else [optimizers]
    for optimizer in optims:
        if optimizer is None:
            continue
        if hasattr(optimizer, '_amp_stash'):
            raise RuntimeError('A given optimizer should only be passed through amp.initialize '
                               'once.')
        optimizer._amp_stash = object()
        if combine_grad or getattr(optimizer, 'is_npu_fused_optimizer', False):
            optimizer.zero_grad = _zero_grad_without_arguments(optimizer)
    STATE.update(initialized=True, optimizers=optims,
                 loss_scale=dynamic_init_scale if loss_scale in (None, 'dynamic')
                 else float(loss_scale))
    CALLS.append(('initialize', models, optimizers,
                  dict(opt_level=opt_level, loss_scale=loss_scale, combine_grad=combine_grad)))
    return models, optimizers


@contextlib.contextmanager
def scale_loss(loss, optimizers, loss_id=0, model=None, delay_unscale=False,
               delay_overflow_check=False):
    if not STATE['initialized']:
        raise RuntimeError('amp.scale_loss used before amp.initialize')
    scale = STATE['loss_scale']
    CALLS.append(('scale_loss', scale))
    yield loss.float() * scale
    for optimizer in STATE['optimizers']:  # unscale (one mul_ on the combined buffer in apex)
        for group in optimizer.param_groups:
            for param in group['params']:
                if param.grad is not None:
                    param.grad.mul_(1.0 / scale)
    STATE['unskipped'] += 1


def state_dict(destination=None):
    return {'loss_scaler0': {'loss_scale': STATE['loss_scale'],
                             'unskipped': STATE['unskipped']}}


def load_state_dict(state_dict):
    for key, value in state_dict.items():
        if 'loss_scaler' not in key:
            raise RuntimeError(f'Unexpected key {key} in the amp state dict')
        STATE.update(loss_scale=value['loss_scale'], unskipped=value['unskipped'])
    CALLS.append(('load_state_dict', state_dict))
