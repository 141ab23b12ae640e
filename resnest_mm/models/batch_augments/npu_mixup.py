"""``NpuMixup``: mixup on the device, with no host sync and no data-dependent shapes."""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch
from mmpretrain.registry import BATCH_AUGMENTS

from ...utils.errors import ExplainedValueError


@BATCH_AUGMENTS.register_module()
class NpuMixup:
    """Mixup (Zhang et al., 2018) done the way an Ascend NPU runs it well, on any device.

    ``mixed = lam * x + (1 - lam) * x[perm]`` for images and targets, with ``lam ~ Beta(alpha,
    alpha)``. mmpretrain's ``Mixup`` draws ``lam`` from numpy's global RNG and a permutation with
    torch's global RNG; this one draws both from its own generators, seeded once from the run's
    seed (mmengine seeds the global RNGs before the model is built, and the seed derives from
    them), so a run is reproducible however many other random calls happen. The permutation is
    made on the host and moved (as the seed script did; ``randperm`` on the NPU is avoided) and
    ``lam`` is a Python float: nothing waits for the device and no shape depends on data.

    Targets may be one-hot or smoothed scores (``(N, C)``, integer or float: mmpretrain's
    ``ClsDataPreprocessor`` passes an int64 one-hot) or class indices ``(N, )`` of any
    integer dtype, int32 included (the seed's NPU dtype); indices need ``num_classes``.
    Registered in mmpretrain's ``BATCH_AUGMENTS``, so ``ClsDataPreprocessor(batch_augments=...)``
    and ``RandomBatchAugment`` find it; it composes with label smoothing (the loss smooths the
    mixed scores).

    Args:
        alpha (float): Beta distribution parameter; the seed and the paper use 0.2.
        num_classes (int, optional): Needed only when targets are class indices.
        seed (int, optional): Seed of the generators. Defaults to one drawn from torch's global
            RNG at construction, i.e. determined by the run's seed.
    """

    def __init__(self, alpha: float, num_classes: Optional[int] = None,
                 seed: Optional[int] = None) -> None:
        if not alpha > 0:
            raise ExplainedValueError(f'NpuMixup.alpha must be > 0, got {alpha}')
        self.alpha = float(alpha)
        self.num_classes = num_classes
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1, )).item())
        self.seed = seed
        self._np_rng = np.random.default_rng(seed)
        self._torch_gen = torch.Generator().manual_seed(seed)

    def state_dict(self) -> dict:
        """The generators' states (plain ints and a tensor: loadable with weights_only)."""
        return dict(numpy=self._np_rng.bit_generator.state, torch=self._torch_gen.get_state())

    def load_state_dict(self, state: dict) -> None:
        """Continue the draws from :meth:`state_dict` (``AtomicCheckpointHook`` on resume)."""
        self._np_rng.bit_generator.state = state['numpy']
        self._torch_gen.set_state(state['torch'].cpu())  # resume may load onto the device

    def sample(self, batch_size: int) -> Tuple[float, torch.Tensor]:
        """Draw ``lam`` and the permutation (on the host) for one batch."""
        lam = float(self._np_rng.beta(self.alpha, self.alpha))
        perm = torch.randperm(batch_size, generator=self._torch_gen)
        return lam, perm

    def _scores(self, targets: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        if targets.dim() == 2:  # one-hot (mmpretrain builds it as int64) or soft scores
            return targets.to(dtype)
        if self.num_classes is None:
            raise ExplainedValueError('NpuMixup got class indices as targets; set its '
                                      'num_classes.')
        scores = torch.zeros(targets.shape[0], self.num_classes, dtype=dtype,
                             device=targets.device)
        return scores.scatter_(1, targets.reshape(-1, 1).to(torch.int64), 1.0)

    def mix(self, inputs: torch.Tensor, targets: torch.Tensor, lam: float,
            perm: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Mix a batch with a given ``lam`` and permutation."""
        perm = perm.to(inputs.device, non_blocking=True)
        scores = self._scores(
            targets, inputs.dtype if inputs.is_floating_point() else torch.float32)
        mixed_inputs = lam * inputs + (1 - lam) * inputs.index_select(0, perm)
        mixed_scores = lam * scores + (1 - lam) * scores.index_select(0, perm)
        return mixed_inputs, mixed_scores

    def __call__(self, inputs: torch.Tensor,
                 targets: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        lam, perm = self.sample(inputs.shape[0])
        return self.mix(inputs, targets, lam, perm)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(alpha={self.alpha}, num_classes={self.num_classes})'
