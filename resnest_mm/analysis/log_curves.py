"""Read MMEngine's JSON scalar logs and draw a run's curves.

MMEngine's ``LocalVisBackend`` writes ``<work_dir>/<timestamp>/vis_data/<timestamp>.json``: one
JSON object per line, training lines with ``epoch``/``iter``/``step`` (the global iteration) and
validation lines with only ``step`` -- the *epoch* in epoch-based runs, the iteration in
iteration-based ones. MMEngine has no reader for it and mmpretrain's ``analyze_logs.py`` is a
script, not an importable API; this puts every series on one iteration axis (a validation of
epoch *e* sits at the last logged iteration of epoch *e*).
"""
from __future__ import annotations

import json
import os
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..utils.errors import ExplainedFileNotFoundError, ExplainedKeyError, ExplainedValueError
from ..utils.fileio import atomic_write

Series = Dict[str, Tuple[np.ndarray, np.ndarray]]  # key -> (iterations, values)


def read_records(path: str) -> Tuple[List[dict], List[dict]]:
    """The training and the validation records of a scalar log, in log order.

    Raises:
        ExplainedFileNotFoundError: ``path`` is missing.
        ExplainedValueError: a line is not JSON (names the line), or the log holds no scalars.
    """
    if not os.path.isfile(path):
        raise ExplainedFileNotFoundError(
            f'log {path} does not exist; the scalar log of a run is '
            'WORK_DIR/<timestamp>/vis_data/<timestamp>.json')
    train: List[dict] = []
    val: List[dict] = []
    with open(path, encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ExplainedValueError(f'{path} line {number} is not JSON ({exc.msg}); pass '
                                          "the run's vis_data/<timestamp>.json, not the .log "
                                          'text') from None
            (train if 'iter' in record else val).append(record)
    if not train and not val:
        raise ExplainedValueError(f'{path} holds no logged scalars')
    return train, val


def load_scalars(path: str) -> Series:
    """Every numeric key of a scalar log as ``(iterations, values)``, in log order.

    Raises:
        ExplainedFileNotFoundError: ``path`` is missing.
        ExplainedValueError: a line is not JSON (names the line), or the log holds no scalars.
    """
    train, val = read_records(path)
    by_epoch = any('epoch' in r for r in train)
    last_iter_of_epoch: Dict[int, int] = {}
    for record in train:
        if 'epoch' in record:
            epoch = int(record['epoch'])
            last_iter_of_epoch[epoch] = max(last_iter_of_epoch.get(epoch, 0), int(record['iter']))
    points: Dict[str, List[Tuple[float, float]]] = defaultdict(list)
    for record in train:
        for key, value in record.items():
            if key not in ('epoch', 'iter', 'step') and isinstance(value, (int, float)):
                points[key].append((record['iter'], value))
    for record in val:
        step = int(record.get('step', 0))
        at = last_iter_of_epoch.get(step, step) if by_epoch else step
        for key, value in record.items():
            if key != 'step' and isinstance(value, (int, float)):
                # validation's own timings would mix with training's: keep them apart
                name = f'val/{key}' if key in ('time', 'data_time') else key
                points[name].append((at, value))
    return {key: (np.array([p[0] for p in pts], dtype=float),
                  np.array([p[1] for p in pts], dtype=float))
            for key, pts in points.items()}


def plot_curves(logs: Sequence[str], keys: Sequence[str], out: str,
                legend: Optional[Sequence[str]] = None, title: Optional[str] = None) -> str:
    """Draw ``keys`` of each log against the iteration, one panel per key, into ``out``.

    Args:
        logs: Scalar log files (several runs are drawn over each other).
        keys: Logged names, e.g. ``loss``, ``lr``, ``accuracy/top1``, ``fps``.
        out: Image file (``.png``, ``.pdf``, ``.svg``).
        legend: A label per log; the log's folder name by default.
        title: Figure title.

    Returns:
        ``out``.

    Raises:
        ExplainedKeyError: a key is in none of the logs (the message lists those present).
    """
    import matplotlib

    matplotlib.use('Agg')  # files only: no display needed
    import matplotlib.pyplot as plt

    if legend is not None and len(legend) != len(logs):
        raise ExplainedValueError(f'--legend has {len(legend)} labels for {len(logs)} logs')
    runs = [load_scalars(path) for path in logs]
    labels = list(legend) if legend else [
        os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(p)))) or p for p in logs]
    for key in keys:
        if not any(key in run for run in runs):
            present = sorted(set().union(*runs))
            raise ExplainedKeyError(f'{key!r} is not in {", ".join(logs)}; logged keys: '
                                    f'{", ".join(present)}')
    fig, axes = plt.subplots(len(keys), 1, figsize=(8, 2.6 * len(keys)), sharex=True,
                             squeeze=False)
    for axis, key in zip(axes[:, 0], keys):
        for run, label in zip(runs, labels):
            if key not in run:
                continue
            x, y = run[key]
            sparse = len(x) < 30  # validation points: mark them
            axis.plot(x, y, marker='o' if sparse else None, markersize=4, label=label)
        axis.set_ylabel(key)
        axis.grid(True, alpha=0.3)
        if len(runs) > 1:
            axis.legend(fontsize='small')
    axes[-1, 0].set_xlabel('iteration')
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    kind = os.path.splitext(out)[1].lstrip('.').lower() or 'png'
    try:
        atomic_write(out, lambda f: fig.savefig(f, format=kind, dpi=100))
    except ValueError as exc:  # matplotlib: unknown format
        raise ExplainedValueError(f'--out {out}: {exc}') from None
    finally:
        plt.close(fig)
    return out


def train_time(path: str) -> dict:
    """Iteration times of a run: mean, and the slowest and fastest epoch by mean time."""
    train, _ = read_records(path)
    per_epoch: Dict[int, List[float]] = defaultdict(list)
    for record in train:
        if 'time' in record:
            per_epoch[int(record.get('epoch', 1))].append(record['time'])
    if not per_epoch:
        raise ExplainedKeyError(f'{path} has no training "time" entries')
    times = [t for values in per_epoch.values() for t in values]
    means = {epoch: float(np.mean(values)) for epoch, values in per_epoch.items()}
    slowest = max(means, key=means.get)
    fastest = min(means, key=means.get)
    return dict(mean=float(np.mean(times)), std=float(np.std(times)), logged=len(times),
                slowest_epoch=(slowest, means[slowest]), fastest_epoch=(fastest, means[fastest]))
