from .resumable_sampler import ResumableSampler, SampleKey, seed_sample

__all__ = ['ResumableSampler', 'SampleKey', 'seed_sample']
