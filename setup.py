"""resnest_mm: ResNeSt on MMEngine + MMPretrain for Ascend NPU, NVIDIA GPU and CPU."""
import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read_requirements(name: str) -> list:
    """Requirement lines of requirements/<name>.txt, without comments."""
    with open(os.path.join(HERE, 'requirements', name), encoding='utf-8') as f:
        lines = (line.split('#', 1)[0].strip() for line in f)
        return [line for line in lines if line]


def read_version() -> str:
    with open(os.path.join(HERE, 'resnest_mm', 'version.py'), encoding='utf-8') as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


setup(
    name='resnest_mm',
    version=read_version(),
    description=__doc__,
    long_description=open(os.path.join(HERE, 'README.md'), encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.9',
    packages=find_packages(include=['resnest_mm', 'resnest_mm.*']),
    install_requires=read_requirements('runtime.txt'),
    extras_require={
        'tests': read_requirements('tests.txt'),
        'optional': read_requirements('optional.txt'),
        # Never installed by default: torch_npu without the CANN toolkit breaks `import torch`.
        'npu': read_requirements('npu.txt'),
    },
    zip_safe=False,
)
