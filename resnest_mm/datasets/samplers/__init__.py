from .resumable_sampler import ResumableSampler, SampleIndex, seed_sample

__all__ = ['ResumableSampler', 'SampleIndex', 'seed_sample']
