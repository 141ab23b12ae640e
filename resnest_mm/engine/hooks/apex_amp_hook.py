"""``ApexAmpHook``: the seed's apex AMP (O1, ``combine_grad=True``) as a config switch."""
from __future__ import annotations

from typing import Sequence, Tuple, Union

from mmengine.hooks import Hook
from mmengine.optim import OptimWrapper

from ...registry import HOOKS
from .. import amp_policy


@HOOKS.register_module()
class ApexAmpHook(Hook):
    """Mixed precision through apex AMP, as the seed trained on Ascend; native AMP elsewhere.

    The hook is the config's request (:attr:`amp_request`); what runs is decided by
    :func:`resnest_mm.engine.amp_policy.decide` and set up by ``ResNeStRunner`` when it builds
    the optimizer wrapper. With apex installed (Ascend's, or NVIDIA's before it dropped
    ``apex.amp``):

    1. the config's ``NpuFusedSGD`` is built as ``apex.optimizers.NpuFusedSGD`` where that
       exists;
    2. ``float_functions`` are registered with ``amp.register_float_function`` (they must be
       known before ``initialize``);
    3. ``amp.initialize(bare_model, optimizer, opt_level, loss_scale[, combine_grad])`` runs on
       the bare model, and the model is wrapped in DDP afterwards, once, as Ascend's apex
       documentation requires (mmengine's ``ApexOptimWrapper`` does it the other way round);
       ``combine_grad`` is passed only when the installed apex accepts it;
    4. :class:`~resnest_mm.engine.optimizers.ApexAmpOptimWrapper` does the backward through
       ``amp.scale_loss`` and saves and restores apex's state in checkpoints.

    Without apex the run gets the device's native AMP (``AmpOptimWrapper``: fp16 with dynamic
    loss scaling on GPU/NPU; ``CpuAmpOptimWrapper``, bf16, on CPU) with a one-line warning, or
    stops with ``fallback=False``. At ``before_run`` the hook checks that the run was set up so
    (an ``optim_wrapper`` given as a built wrapper, or a runner other than ``ResNeStRunner``,
    would otherwise train in fp32 without a word).

    Args:
        opt_level (str): apex optimisation level. Defaults to ``'O1'`` (the seed's README).
        loss_scale (str | float): ``'dynamic'`` or a static scale. Defaults to ``'dynamic'``.
        combine_grad (bool): Ascend apex: unscale all gradients in one fused buffer.
            Defaults to True.
        float_functions (Sequence[tuple]): ``(module, function)`` pairs kept in fp32.
            Defaults to ``[('torch', 'sigmoid'), ('torch', 'softmax')]`` (the seed's).
        fallback (bool): Use native AMP when apex is missing. Defaults to True.
    """

    priority = 'VERY_HIGH'  # check AMP before any other hook sees the model or optimizer

    def __init__(self,
                 opt_level: str = 'O1',
                 loss_scale: Union[str, float] = 'dynamic',
                 combine_grad: bool = True,
                 float_functions: Sequence[Tuple[str, str]] = (('torch', 'sigmoid'),
                                                               ('torch', 'softmax')),
                 fallback: bool = True) -> None:
        self.amp_request = amp_policy.ApexSettings(opt_level, loss_scale, combine_grad,
                                                   tuple(float_functions), fallback)

    def before_run(self, runner) -> None:
        if isinstance(runner.optim_wrapper, OptimWrapper):  # not in a test or validation run
            amp_policy.check_applied(runner.optim_wrapper)
