"""``FusedSGD``: torch's fused SGD kernel with plain SGD's momentum semantics."""
from __future__ import annotations

from typing import Any, Callable, Iterable, List, Optional, Tuple

import torch
from torch.optim.sgd import sgd as functional_sgd

from ... import compat
from ...registry import OPTIMIZERS


def _take_grads(group: dict, state: dict) -> Tuple[list, list, list, bool]:
    """The parameters of ``group`` that have a gradient, their gradients and momentum buffers
    (None where momentum has not started), and whether any gradient is sparse."""
    params, grads, buffers, sparse = [], [], [], False
    with_momentum = group['momentum'] != 0
    for param in group['params']:
        if param.grad is None:
            continue
        params.append(param)
        grads.append(param.grad)
        sparse = sparse or param.grad.is_sparse
        if with_momentum:  # state.get: a defaultdict, and a skipped step leaves no entries
            buffers.append(state.get(param, {}).get('momentum_buffer'))
    return params, grads, buffers, sparse


def _listed(params: Iterable[Any]) -> Tuple[List[Any], List[torch.Tensor]]:
    """Parameters or parameter groups as lists (generators read once), and all their tensors."""
    listed: List[Any] = []
    tensors: List[torch.Tensor] = []
    for item in params:
        if isinstance(item, dict):
            group = item['params']
            group = [group] if isinstance(group, torch.Tensor) else list(group)
            listed.append(dict(item, params=group))
            tensors.extend(group)
        else:
            listed.append(item)
            tensors.append(item)
    return listed, tensors


@OPTIMIZERS.register_module()
class FusedSGD(torch.optim.SGD):
    """``torch.optim.SGD(fused=True)`` that gives plain SGD's result when a step is skipped or a
    parameter's momentum starts late.

    torch 2.14's fused path (``torch/optim/sgd.py`` ``_fused_sgd``, ``FusedSgdKernel``) breaks
    plain SGD's semantics in two situations our recipes reach:

    * **A skipped first step.** Under a ``GradScaler`` (``--amp`` on CUDA, ``ApexAmpHook``'s
      native fallback) the kernel receives ``found_inf``. On the first step ``_fused_sgd`` has
      already created the momentum buffers with ``torch.empty_like`` when the kernel returns
      early on an overflow, and ``SGD.step`` stores that uninitialised memory as momentum, which
      every later step uses. Plain SGD is not stepped at all and keeps no momentum.
    * **A late first gradient** (a stage unfrozen mid-run) in a group whose other parameters
      have momentum: ``_fused_sgd`` sees a non-first step and hands the kernel ``None`` for that
      buffer, which raises ``TypeError``. Plain SGD starts that momentum from the gradient.

    A step in which every parameter with a gradient already has momentum (every step of a
    steady run) is exactly ``SGD.step`` with ``fused=True``: one fused kernel per device and
    dtype, no host synchronisation. Only a step in which some momentum starts is done
    differently, as plain SGD does it: under a ``GradScaler`` it reads ``found_inf`` once (a
    host sync on such steps only) and leaves everything untouched when it is set; otherwise the
    same fused kernel runs twice in such a group, for the parameters that have momentum and, as
    a first step, for those whose momentum starts now. Written here because torch offers no
    option for either case; the step uses torch's public functional ``torch.optim.sgd.sgd``
    (not ``super().step()``, which would run the optimizer's step hooks a second time).

    Args:
        params: Parameters or parameter groups.
        lr (float | Tensor): Learning rate. Defaults to 1e-3 (torch's).
        momentum (float): Momentum factor. Defaults to 0.
        dampening (float): Dampening for momentum. Defaults to 0.
        weight_decay (float): L2 penalty. Defaults to 0.
        nesterov (bool): Nesterov momentum. Defaults to False.
        maximize (bool): Maximise the objective. Defaults to False.
    """

    def __init__(self,
                 params: Iterable[Any],
                 lr: Any = 1e-3,
                 momentum: float = 0.,
                 dampening: float = 0.,
                 weight_decay: float = 0.,
                 nesterov: bool = False,
                 *,
                 maximize: bool = False) -> None:
        params, tensors = _listed(params)
        for kind in sorted({t.device.type for t in tensors}):
            compat.require_fused_sgd(kind)  # one sentence, not SGD's TypeError on an old torch
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                         fused=True)

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """One SGD step (``GradScaler`` sets ``grad_scale``/``found_inf`` on the optimizer)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        grad_scale = getattr(self, 'grad_scale', None)
        found_inf = getattr(self, 'found_inf', None)
        taken = [_take_grads(group, self.state) for group in self.param_groups]
        starting = any(buffer is None for _, _, buffers, _ in taken for buffer in buffers)
        if starting and found_inf is not None and bool(found_inf.item()):
            return loss  # overflow while momentum starts: as plain SGD, no step and no state
        for group, (params, grads, buffers, sparse) in zip(self.param_groups, taken):
            if not params:
                continue
            if group['momentum'] == 0:
                subsets = [list(range(len(params)))]
            else:  # _fused_sgd takes a first step only when all buffers of a call are None
                subsets = [[i for i, b in enumerate(buffers) if b is not None],
                           [i for i, b in enumerate(buffers) if b is None]]
            for subset in subsets:
                if subset:
                    self._fused_step(group, [params[i] for i in subset],
                                     [grads[i] for i in subset],
                                     [buffers[i] for i in subset] if buffers else [],
                                     sparse, grad_scale, found_inf)
        return loss

    def _fused_step(self, group: dict, params: List[torch.Tensor], grads: List[torch.Tensor],
                    buffers: list, sparse: bool, grad_scale: Optional[torch.Tensor],
                    found_inf: Optional[torch.Tensor]) -> None:
        functional_sgd(params, grads, buffers, has_sparse_grad=sparse, fused=True,
                       grad_scale=grad_scale, found_inf=found_inf,
                       weight_decay=group['weight_decay'], momentum=group['momentum'],
                       lr=group['lr'], dampening=group['dampening'],
                       nesterov=group['nesterov'], maximize=group['maximize'])
        if group['momentum'] != 0:  # the kernel created the first-step buffers in the list
            for param, buffer in zip(params, buffers):
                self.state[param]['momentum_buffer'] = buffer
