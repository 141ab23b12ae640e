from .apex_amp_hook import ApexAmpHook
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .checkpoint_adapter_hook import CheckpointAdapterHook
from .label_range_hook import LabelRangeHook
from .non_finite_loss_hook import NonFiniteLossHook
from .progress_bar_hook import ProgressBarHook
from .run_summary_hook import RunSummaryHook
from .throughput_hook import ThroughputHook
from .torch_npu_profiler_hook import TorchNpuProfilerHook
from .unreadable_image_hook import UnreadableImageHook

__all__ = ['ApexAmpHook', 'AtomicCheckpointHook', 'CheckpointAdapterHook', 'LabelRangeHook',
           'NonFiniteLossHook', 'ProgressBarHook', 'RunSummaryHook', 'ThroughputHook',
           'TorchNpuProfilerHook', 'UnreadableImageHook']
