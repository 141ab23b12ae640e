#!/usr/bin/env bash
# Download, on a machine with internet, the wheels benchmarks/gpu_check.sh needs on a GPU machine
# that has Python 3.12, PyTorch, torchvision, timm, OpenCV, matplotlib, rich, einops, filelock ...
# but no mmengine, mmcv-lite, mmpretrain or resnest, and may have no internet. They go to .whl/
# (git-ignored through .git/info/exclude; about 3 MB); copy the checkout with .whl/ to the GPU
# machine and run `bash benchmarks/gpu_check.sh` there.
# The list: what resnest_mm, tools/benchmark.py and the parity tests import that such a machine
# lacks, one version each (two versions of one package stop the whole install there), and what
# those need in turn. nose,
# which resnest 0.0.5 declares but never imports (and which fails on Python 3.12), is left out;
# gpu_check.sh installs with --no-deps.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .git/info .whl
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -f .whl/*.whl  # one version of each: start from nothing
PY="${PYTHON:-python3}"
PIP="$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12
     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
     --platform manylinux2014_x86_64 --platform any -d .whl"
for pkg in mmengine==0.10.7 mmcv-lite==2.2.0 mmpretrain==1.2.0 resnest==0.0.5 addict==2.4.0 \
           yapf==0.43.0 platformdirs==4.14.8 termcolor==3.3.0 mat4py==0.6.0 modelindex==0.0.2 \
           model-index==0.1.11 ordered-set==4.1.0 importlib-metadata==8.7.0; do
    $PIP "$pkg"
done
ls .whl
# What the wheels declare that none of them brings: the GPU machine's image must have these.
"$PY" - <<'PY'
import glob, re, zipfile
names, needs = set(), {}
for path in glob.glob('.whl/*.whl'):
    with zipfile.ZipFile(path) as wheel:
        meta = next(n for n in wheel.namelist() if n.endswith('.dist-info/METADATA'))
        text = wheel.read(meta).decode()
    norm = lambda s: re.sub(r'[-_.]+', '-', s).lower()  # noqa: E731
    names.add(norm(re.search(r'^Name: (.+)$', text, re.M).group(1)))
    for req in re.findall(r'^Requires-Dist: (.+)$', text, re.M):
        if 'extra ==' not in req and 'python_version < "3.' not in req \
                and 'sys_platform == "win32"' not in req.replace("'", '"'):
            needs.setdefault(norm(re.match(r'[A-Za-z0-9_.-]+', req).group(0)), path)
known = {'nose': 'declared by resnest, never imported',
         'opencv-python': 'the machine has opencv-python-headless (the same cv2)'}
missing = sorted(set(needs) - names)
print('expected on the GPU machine (not among the wheels):',
      ' '.join(name for name in missing if name not in known))
for name in missing:
    if name in known:
        print(f'  not needed: {name} ({known[name]})')
PY
