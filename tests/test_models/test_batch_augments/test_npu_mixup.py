"""NpuMixup: exact mixing, valid targets, Beta-distributed lambda, reproducibility, composition."""
import numpy as np
import pytest
import torch
from mmpretrain.models import ClsDataPreprocessor
from mmpretrain.models.losses import LabelSmoothLoss
from mmpretrain.registry import BATCH_AUGMENTS
from mmpretrain.structures import DataSample
from scipy import stats

from resnest_mm.models import NpuMixup


def _batch(n=8, c=10, seed=0):
    gen = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, 3, 4, 4, generator=gen)
    labels = torch.randint(0, c, (n, ), generator=gen)
    return inputs, torch.nn.functional.one_hot(labels, c).float(), labels


def test_images_and_targets_are_the_exact_mixture():
    inputs, scores, _ = _batch()
    lam, perm = NpuMixup(alpha=0.2, seed=3).sample(8)
    mixed, mixed_scores = NpuMixup(alpha=0.2, seed=3)(inputs, scores)
    assert torch.equal(mixed, lam * inputs + (1 - lam) * inputs[perm])
    assert torch.equal(mixed_scores, lam * scores + (1 - lam) * scores[perm])
    torch.testing.assert_close(mixed_scores.sum(1), torch.ones(8))
    assert sorted(perm.tolist()) == list(range(8))


@pytest.mark.parametrize('dtype', [torch.int32, torch.int64])
def test_integer_labels_including_int32(dtype):
    inputs, scores, labels = _batch()
    a = NpuMixup(alpha=1.0, num_classes=10, seed=5)(inputs, labels.to(dtype))
    b = NpuMixup(alpha=1.0, seed=5)(inputs, scores)
    c = NpuMixup(alpha=1.0, seed=5)(inputs, scores.to(dtype))  # integer one-hot
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and torch.equal(c[1], b[1])
    with pytest.raises(ValueError, match='num_classes'):
        NpuMixup(alpha=1.0)(inputs, labels)


def test_lambda_follows_beta_alpha_alpha():
    for alpha in (0.2, 1.0):
        mixup = NpuMixup(alpha=alpha, seed=11)
        lams = [mixup.sample(2)[0] for _ in range(2000)]
        assert stats.kstest(lams, 'beta', args=(alpha, alpha)).pvalue > 0.01


def test_same_seed_same_result_and_seed_from_the_run():
    inputs, scores, _ = _batch()
    first = NpuMixup(alpha=0.2, seed=7)(inputs, scores)
    second = NpuMixup(alpha=0.2, seed=7)(inputs, scores)
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    torch.manual_seed(1)  # what mmengine does with randomness.seed before building the model
    seed_a = NpuMixup(alpha=0.2).seed
    torch.manual_seed(1)
    assert NpuMixup(alpha=0.2).seed == seed_a


def test_composes_with_data_preprocessor_random_batch_augment_and_label_smoothing():
    assert BATCH_AUGMENTS.get('NpuMixup') is NpuMixup
    preprocessor = ClsDataPreprocessor(
        num_classes=10, batch_augments=dict(
            augments=[dict(type='NpuMixup', alpha=0.2, seed=0), dict(type='CutMix', alpha=1.0)],
            probs=[0.5, 0.5]))
    np.random.seed(0)
    samples = [DataSample().set_gt_label(i % 10) for i in range(4)]
    data = preprocessor(dict(inputs=[torch.randint(0, 255, (3, 8, 8), dtype=torch.uint8)
                                     for _ in range(4)], data_samples=samples), training=True)
    scores = torch.stack([s.gt_score for s in data['data_samples']])
    torch.testing.assert_close(scores.sum(1), torch.ones(4))
    loss = LabelSmoothLoss(label_smooth_val=0.1, mode='original')
    value = loss(torch.randn(4, 10), scores)
    assert torch.isfinite(value)


def test_rejects_bad_alpha():
    with pytest.raises(ValueError, match='alpha'):
        NpuMixup(alpha=0)


def test_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    """What AtomicCheckpointHook saves and restores on --resume, found where the hook looks."""
    import io

    from mmengine.config import Config

    from resnest_mm.engine.loops import stateful_augments
    from resnest_mm.registry import MODELS
    cfg = Config.fromfile('configs/resnest50_8xb256-mixup-ls-270e_in1k.py')

    (mixup, ) = stateful_augments(MODELS.build(cfg.model))
    assert isinstance(mixup, NpuMixup)
    mixup.sample(8)
    buf = io.BytesIO()
    torch.save(mixup.state_dict(), buf)
    expected = mixup.sample(8)
    buf.seek(0)
    mixup.load_state_dict(torch.load(buf, weights_only=True))
    lam, perm = mixup.sample(8)
    assert lam == expected[0] and torch.equal(perm, expected[1])
