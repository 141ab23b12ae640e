#!/usr/bin/env bash
# Download, here, the wheels benchmarks/gpu_check.sh needs on a lent GPU machine (Python 3.12,
# PyTorch, torchvision, timm and OpenCV there; no mmengine, mmcv-lite, mmpretrain, nothing
# fetched there). They go to .whl/ (git-ignored through .git/info/exclude), which the device
# call carries:  run(command='bash benchmarks/gpu_check.sh', carry=['.whl'])
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .git/info .whl
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
PIP="${PYTHON:-python3} -m pip download -q --no-deps --only-binary=:all: --python-version 3.12
     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
     --platform manylinux2014_x86_64 --platform any -d .whl"
for pkg in mmengine==0.10.7 mmcv-lite==2.2.0 mmpretrain==1.2.0 resnest==0.0.5 addict==2.4.0 \
           yapf==0.43.0 platformdirs==4.14.8 termcolor==3.3.0 mat4py==0.6.0 modelindex==0.0.2 \
           model-index==0.1.11 ordered-set==4.1.0 importlib-metadata==8.7.0 nose==1.3.7; do
    $PIP "$pkg"
done
ls .whl
