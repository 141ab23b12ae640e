"""resnest_mm: ResNeSt on MMEngine + MMPretrain for Ascend NPU, NVIDIA GPU and CPU."""
import os
import re
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def read_requirements(name: str) -> list:
    """Requirement lines of requirements/<name>.txt, without comments."""
    with open(os.path.join(HERE, 'requirements', name), encoding='utf-8') as f:
        lines = (line.split('#', 1)[0].strip() for line in f)
        return [line for line in lines if line]


def read_version() -> str:
    with open(os.path.join(HERE, 'resnest_mm', 'version.py'), encoding='utf-8') as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


# Shipped inside the package as resnest_mm/.mim/, where OpenMMLab's mim looks for a package's
# configs and tools (`mim train resnest_mm CONFIG`), and where a non-editable install finds them.
MIM_FILES = ('configs', 'tools', 'model-index.yml')


class BuildPyWithMim(build_py):
    """build_py that also copies configs/, tools/ and model-index.yml into resnest_mm/.mim."""

    def run(self) -> None:
        super().run()
        if getattr(self, 'editable_mode', False):
            return  # an editable install runs from this tree: configs/ and tools/ are here
        target = os.path.join(self.build_lib, 'resnest_mm', '.mim')
        for name in MIM_FILES:
            src, dst = os.path.join(HERE, name), os.path.join(target, name)
            if os.path.isdir(src):
                shutil.rmtree(dst, ignore_errors=True)
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
            else:
                os.makedirs(target, exist_ok=True)
                shutil.copy2(src, dst)


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
        # One per tool that needs more than training does (resnest_mm/utils/extras.py names
        # them in its refusals): the demo data, ONNX export, TensorBoard.
        'digits': ['scikit-learn'],
        'export': ['onnx', 'onnxscript', 'onnxruntime'],
        'tensorboard': ['tensorboard'],
        # mmcv is not required (a full mmcv and mmcv-lite both install `mmcv/`, so requiring one
        # would install a second copy beside the other); a fresh environment takes this one.
        'mmcv-lite': ['mmcv-lite>=2.0,<2.4'],
        # Never installed by default: torch_npu without the CANN toolkit breaks `import torch`.
        'npu': read_requirements('npu.txt'),
    },
    cmdclass={'build_py': BuildPyWithMim},
    zip_safe=False,
)
