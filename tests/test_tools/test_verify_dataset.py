"""tools/misc/verify_dataset.py as a user runs it: what training would skip is listed (exit 1),
what training ignores is counted in a note, the tool's own errors are one sentence (exit 2),
never a traceback."""
import os
import subprocess
import sys

import pytest

from tests.helpers.hostile_images import jpeg_declaring
from tests.helpers.images import write_image_folder

pytestmark = pytest.mark.slow  # subprocesses or whole runs

TOOL = 'tools/misc/verify_dataset.py'


def _verify(repo_root, *args):
    result = subprocess.run([sys.executable, TOOL, *map(str, args)], cwd=repo_root,
                            capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=repo_root))
    assert 'Traceback' not in result.stderr + result.stdout, result.stderr[-3000:]
    return result


def test_bombs_and_unreadable_links_are_listed_with_exit_status_1(tmp_path, repo_root):
    """The 40000 x 40000 JPEG crashed the tool on cv2.error (exit 1 with a traceback, the
    status of "unreadable files found"); a link loop was not followed, so not reported."""
    write_image_folder(str(tmp_path / 'val'), ['a', 'b'], per_class=2, size=16)
    (tmp_path / 'val' / 'a' / 'big40.JPEG').write_bytes(jpeg_declaring(40000, 40000))
    (tmp_path / 'val' / 'b' / 'big30.JPEG').write_bytes(jpeg_declaring(30000, 30000))
    os.symlink('..', tmp_path / 'val' / 'b' / 'loop')
    os.symlink(str(tmp_path / 'gone.JPEG'), tmp_path / 'val' / 'b' / 'broken.JPEG')
    result = _verify(repo_root, tmp_path)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    at = lines.index('4 of 8 files could not be read:')
    assert lines[at + 1:] == [
        f'  {tmp_path}/val/a/big40.JPEG: declares 40000 x 40000 = 1,600,000,000 pixels, more '
        'than max_pixels=89,478,485; not decoded (a decompression bomb or a lying header). If '
        'such images are real, raise max_pixels on the loading transform',
        f'  {tmp_path}/val/b/big30.JPEG: declares 30000 x 30000 = 900,000,000 pixels, more '
        'than max_pixels=89,478,485; not decoded (a decompression bomb or a lying header). If '
        'such images are real, raise max_pixels on the loading transform',
        f"  {tmp_path}/val/b/broken.JPEG: a broken symbolic link to '{tmp_path}/gone.JPEG'",
        f'  {tmp_path}/val/b/loop: a symbolic-link loop back to {tmp_path}/val']


def test_what_training_ignores_is_noted_not_listed(tmp_path, repo_root):
    """Thumbs.db and notes.txt were listed as unreadable (exit 1) although training ignores
    them; .DS_Store, ._* and an image at the split root were not mentioned at all."""
    split = tmp_path / 'train'
    write_image_folder(str(split), ['a'], per_class=2, size=16)
    for name in ('Thumbs.db', 'notes.txt', '.DS_Store', '._000.JPEG'):
        (split / 'a' / name).write_bytes(b'junk')
    (split / 'stray.JPEG').write_bytes((split / 'a' / '000.JPEG').read_bytes())
    (tmp_path / 'meta').mkdir()
    result = _verify(repo_root, tmp_path)
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-3:] == [
        f'note: {tmp_path}: not scanned, not a split folder (train, val, test): meta',
        f'note: {split}: 5 entries ignored, not part of the data set: hidden file: 2 '
        f'({split}/a/.DS_Store, {split}/a/._000.JPEG); image at the split root, outside every '
        f'class folder: 1 ({split}/stray.JPEG); not an image extension: 1 ({split}/a/notes.txt);'
        f' system file: 1 ({split}/a/Thumbs.db). Only image files (.jpg, .jpeg, .png, .ppm, '
        '.bmp, .pgm, .tif) inside class folders are loaded',
        'all 2 files read']


@pytest.mark.parametrize('case', ['missing', 'no images'])
def test_its_own_errors_exit_2_with_a_sentence(case, tmp_path, repo_root):
    if case == 'no images':
        (tmp_path / 'a').mkdir()
        (tmp_path / 'a' / 'notes.txt').write_text('x')
    args = {'missing': [tmp_path / 'none'], 'no images': [tmp_path]}[case]
    result = _verify(repo_root, *args)
    assert result.returncode == 2
    expected = {'missing': f'verify_dataset.py: error: {tmp_path}/none is not a folder',
                'no images': f'verify_dataset.py: error: found no image in class folders under '
                             f'{tmp_path}; a folder data set reads {tmp_path}/<class>/<image>'
                }[case]
    assert expected in result.stderr.splitlines()[-1]


@pytest.mark.slow
def test_names_scans_empty_classes_and_links_to_the_root_are_reported(tmp_path, repo_root):
    """One run over the issue's cases: 3 bad files with a newline, a tab and an ANSI escape in
    their names are 3 lines (they were 6, the escape raw); a progressive JPEG of 20,006 scans
    is listed in milliseconds (verify decoded it for minutes and called it fine); an empty class
    folder is a problem (it passed, then training refused it); a class folder linked to / is
    named (verify walked the file system and exited 2 naming /dev/fd/4)."""
    from tests.helpers.hostile_images import progressive_jpeg
    root = tmp_path / 'data'
    write_image_folder(str(root / 'train'), ['a', 'b'], per_class=2, size=16)
    for name in ('new\nline.JPEG', 'tab\there.JPEG', '\x1b[2Jclear.JPEG'):
        (root / 'train' / 'a' / name).write_bytes(b'not an image')
    (root / 'train' / 'b' / 'scans.JPEG').write_bytes(progressive_jpeg(8000, 8000, 20006))
    (root / 'train' / 'empty').mkdir()
    os.symlink('/', root / 'train' / 'slash')
    result = _verify(repo_root, root)
    assert result.returncode == 1, result.stderr[-3000:]
    assert '\x1b' not in result.stdout
    lines = result.stdout.splitlines()
    start = lines.index('5 of 9 files could not be read:')
    listed = lines[start + 1:]
    assert listed == sorted(listed) and len(listed) == 5
    train = f'{root}/train'
    for line, name in zip(listed, ('\\x1b[2Jclear.JPEG', 'new\\nline.JPEG', 'tab\\there.JPEG')):
        assert line.startswith(f'  {train}/a/{name}: not a readable image (')
    assert listed[3] == (f'  {train}/b/scans.JPEG: a JPEG of 20,006 scans, more than '
                         'max_scans=100 (photos have about 10; each scan is a pass over the '
                         'whole image); not decoded. If such images are real, raise max_scans '
                         'on the loading transform')
    assert listed[4] == (f'  {train}/slash: a link to /, a folder holding the data set itself; '
                         'refusing to walk it')
    assert (f'problem: 1 class folder(s) hold no image: {train}/empty. Training refuses an '
            'empty class (it would still get an output and a label index); add its images or '
            'remove the folder') in lines


@pytest.mark.slow
def test_progress_off_a_terminal_is_a_line_every_few_percent(tmp_path, repo_root):
    """Redirected, mmengine's bar wrote about 80 bytes per file (100 MB for ImageNet)."""
    write_image_folder(str(tmp_path / 'val'), [f'c{i}' for i in range(4)], per_class=100,
                       size=8)
    result = _verify(repo_root, tmp_path)
    assert result.returncode == 0 and result.stdout.endswith('all 400 files read\n')
    progress = result.stdout.splitlines()[:-1]
    assert len(progress) == 20 and all(len(line) < 200 for line in progress), result.stdout
    assert progress[0].startswith(f'verify {tmp_path}: 5% (20/400), 0:00:')
    assert progress[-1].startswith(f'verify {tmp_path}: 100% (400/400), ')
