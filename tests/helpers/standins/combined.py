"""STAND-IN helpers: combined (flat) buffers and the fused SGD update on them, on the CPU.

Both Ascend fused SGDs (torch_npu ``torch_npu/optim/npu_fused_sgd.py`` over
``npu_fused_optim_base.py``; Ascend apex ``src/apex/optimizers/npu_fused_sgd.py``) copy the
parameters, gradients and momentum buffers of a group into one buffer each and re-point every
tensor's storage into it (torch_npu ``torch_npu/utils/combine_tensors.py``
``npu_combine_tensors``, apex ``src/apex/contrib/combine_tensors`` ``combine_npu``, both through
``npu_change_data_ptr``). ``Tensor.set_`` does the same re-pointing here, on the CPU, which is
the stand-ins' NPU. The consequences are the real ones: a tensor that had no gradient at
combination time is not in the buffer and is never updated; a gradient set to None and made
again by backward lives outside the buffer and is ignored.
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from torch.optim.optimizer import required

# The device the stand-ins treat as the NPU.
STANDIN_NPU = 'cpu'


def combine(tensors: Sequence[Optional[torch.Tensor]]) -> Optional[torch.Tensor]:
    """Move ``tensors`` (values kept) into one zero-initialised flat buffer and return it.

    Refuses what ``npu_combine_tensors`` refuses (``RuntimeError``): a None, mixed dtypes, a
    tensor off the (stand-in) NPU, a non-contiguous tensor. None for an empty list or no
    elements, as there.
    """
    if not tensors:
        return None
    if any(t is None for t in tensors):
        raise RuntimeError('Tensors to combine must not have `None`.')
    dtype = tensors[0].dtype
    for t in tensors:
        if t.dtype != dtype:
            raise RuntimeError('Tensors to combine must have the same dtype.')
        if t.device.type != STANDIN_NPU:
            raise RuntimeError(f'Tensors to combine must be on NPU, got {t.device.type} '
                               f'(the stand-in NPU is the {STANDIN_NPU}).')
        if not t.is_contiguous():
            raise RuntimeError('Tensors to combine must be contiguous.')
    total = sum(t.numel() for t in tensors)
    if total == 0:
        return None
    flat = torch.zeros(total, dtype=dtype)
    offset = 0
    with torch.no_grad():
        for t in tensors:
            n = t.numel()
            flat[offset:offset + n].copy_(t.reshape(-1))
            t.set_(flat.untyped_storage(), offset, t.shape)
            offset += n
    return flat


def lives_in(tensor: Optional[torch.Tensor], flat: Optional[torch.Tensor]) -> bool:
    """Whether ``tensor``'s storage is ``flat``'s (apex's ``is_grad_in_combined_tensor``)."""
    return (tensor is not None and flat is not None
            and tensor.untyped_storage().data_ptr() == flat.untyped_storage().data_ptr())


class Combined:
    """One dtype's combined parameters (optional) and gradients, in parameter-group order."""

    def __init__(self, params: List[torch.Tensor], with_params: bool) -> None:
        self.params = params
        self.offsets: Dict[int, int] = {}
        offset = 0
        for p in params:
            self.offsets[id(p)] = offset
            offset += p.numel()
        self.grads = combine([p.grad for p in params])
        self.flat_params = combine(params) if with_params else None

    def group_views(self, group_params: Iterable[torch.Tensor]
                    ) -> Optional[Tuple[List[torch.Tensor], torch.Tensor, torch.Tensor]]:
        """The group's combined params, and its contiguous slices of the param and grad
        buffers (``get_part_combined_tensor``); None when the group has none here."""
        mine = [p for p in group_params if id(p) in self.offsets]
        if not mine:
            return None
        start = self.offsets[id(mine[0])]
        end = self.offsets[id(mine[-1])] + mine[-1].numel()
        return mine, self.flat_params[start:end], self.grads[start:end]


def combine_by_dtype(params: Iterable[torch.Tensor], with_params: bool
                     ) -> Dict[torch.dtype, Combined]:
    """Combine the gradients (and the params) of ``params`` that have a gradient, per dtype.

    Only fp32 and fp16 are accepted (``TypeError``, as ``NpuFusedOptimizerBase`` and apex's
    ``lazy_init``); params without a gradient are left out, for good.
    """
    by_dtype: Dict[torch.dtype, List[torch.Tensor]] = {}
    for p in params:
        if p.grad is None:
            continue
        if p.dtype not in (torch.float32, torch.float16):
            raise TypeError("Fused optimizer's parameters must be either float32 or float16, "
                            f'but received {p.dtype}')
        by_dtype.setdefault(p.dtype, []).append(p)
    return {dtype: Combined(ps, with_params) for dtype, ps in by_dtype.items()}


def momentum_buffers(params: List[torch.Tensor], state: dict, weight_decay: float) -> bool:
    """Put a momentum buffer in ``state`` for every param (both fused SGDs' ``_init_param_state``).

    A new buffer starts as the weight-decayed gradient, as plain SGD's first step; an existing
    one (loaded from a checkpoint) is kept. Returns whether every buffer already existed (the
    real classes then run the momentum update on this first fused step, else not).
    """
    all_existed = True
    for p in params:
        entry = state[p]
        if 'momentum_buffer' not in entry:
            all_existed = False
            d_p = p.grad if weight_decay == 0 else p.grad.add(p, alpha=weight_decay)
            entry['momentum_buffer'] = torch.clone(d_p).detach()
        else:
            entry['momentum_buffer'] = entry['momentum_buffer'].detach().clone()
    return all_existed


def sgd_update(param: torch.Tensor, grad: torch.Tensor, buf: Optional[torch.Tensor],
               group: dict, update_momentum: bool) -> None:
    """One SGD update of the combined ``param`` (the real ``_group_step``, same arithmetic)."""
    weight_decay, momentum = group['weight_decay'], group['momentum']
    d_p = grad if weight_decay == 0 else grad.add(param, alpha=weight_decay)
    if momentum != 0:
        if update_momentum:
            buf.mul_(momentum).add_(d_p, alpha=1 - group['dampening'])
        d_p = d_p.add(buf, alpha=momentum) if group['nesterov'] else buf
    param.add_(d_p, alpha=-group['lr'])


def check_sgd_arguments(lr: float, momentum: float, dampening: float, weight_decay: float,
                        nesterov: bool) -> None:
    """The ``ValueError`` checks both NpuFusedSGD classes make (as ``torch.optim.SGD``'s)."""
    if lr is not required and lr < 0.0:
        raise ValueError(f'Invalid learning rate: {lr}')
    if momentum < 0.0:
        raise ValueError(f'Invalid momentum value: {momentum}')
    if weight_decay < 0.0:
        raise ValueError(f'Invalid weight_decay value: {weight_decay}')
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError('Nesterov momentum requires a momentum and zero dampening')


class CombinedSGD(torch.optim.Optimizer):
    """What both NpuFusedSGD classes share: ``torch.optim.SGD``'s signature and checks, and the
    update of each group's combined buffers (one fp32 and one fp16 buffer per group).

    Momentum buffers are combined per group at the first fused step; a new buffer starts as
    the weight-decayed gradient and that step does no momentum update (the real
    ``_momentum_buffer_already_in_state`` flag).
    """

    def __init__(self, params, lr=required, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        check_sgd_arguments(lr, momentum, dampening, weight_decay, nesterov)
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))
        self._combined_momentum: Optional[List[Dict[torch.dtype, torch.Tensor]]] = None
        self._momentum_in_state = True

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault('nesterov', False)

    def _combine_momentum(self, combined: Dict[torch.dtype, Combined]) -> None:
        self._combined_momentum = []
        self._momentum_in_state = True
        for group in self.param_groups:
            per_dtype = {}
            for dtype, entry in combined.items():
                views = entry.group_views(group['params'])
                if views is None or group['momentum'] == 0:
                    continue
                params = views[0]
                if not momentum_buffers(params, self.state, group['weight_decay']):
                    self._momentum_in_state = False
                per_dtype[dtype] = combine([self.state[p]['momentum_buffer'] for p in params])
            self._combined_momentum.append(per_dtype)

    @torch.no_grad()
    def _fused_step(self, combined: Dict[torch.dtype, Combined]) -> None:
        if self._combined_momentum is None:
            self._combine_momentum(combined)
        for group, momentum in zip(self.param_groups, self._combined_momentum):
            for dtype, entry in combined.items():
                views = entry.group_views(group['params'])
                if views is not None:
                    sgd_update(views[1], views[2], momentum.get(dtype), group,
                               update_momentum=self._momentum_in_state)
        self._momentum_in_state = True
