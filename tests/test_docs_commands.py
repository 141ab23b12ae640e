"""Every command in README.md and docs/*.md, as written, is covered here.

The harness reads the fenced ``bash``/``sh``/``shell`` blocks of those files (comments dropped,
``\\`` continuations joined, optional ``[...]`` parts dropped), replaces the placeholders the
docs use (``CONFIG``, ``CHECKPOINT`` ...: :data:`PLACEHOLDERS`) and gives each command to the
first rule of :data:`RULES` whose pattern matches. A command no rule covers fails the test, so
a new command in the docs needs a rule here. What each rule proves:

- ``python tools/X.py ARGS`` on the digits config (infer, export, test): run for real, as
  written, in a workspace where ``configs/``, ``tools/``, ``data/digits/`` (the tiny run's
  JPEGs; an example image path the docs name gets a real image) and
  ``work_dirs/demo/epoch_10.pth`` (the tiny run's checkpoint) exist.
- any other ``python tools/X.py ARGS``: the tool parses ARGS (run up to the end of its
  argument parsing by tests/helpers/parse_only.py); for train and test the config also loads
  and passes the checks run at start (top-level keys, types, values).
- ``bash tools/dist_*.sh`` / ``slurm_train.sh``: the script is valid shell (``bash -n``) and the
  train/test arguments it forwards parse as above (8 devices and Slurm are not here).
- ``make TARGET``: the target exists and expands (``make -n``); the targets themselves are the
  suite, the lint and the demo.
- ``pip install``/``mim``: the packaging tests (tests/test_packaging.py) build and install the
  package and check what mim reads.
"""
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ['README.md', 'docs/*.md']
PLACEHOLDERS = {
    'CONFIG': 'configs/resnest50_1xb32_digits.py',
    'CHECKPOINT': 'work_dirs/demo/epoch_10.pth',  # the tiny run's checkpoint in the workspace
    'CKPT': 'work_dirs/demo/epoch_10.pth',
    'PARTITION': 'debug',
}
# Tools run for real when a command reads only the digits config and data (the tiny run's);
# the others are checked up to the end of their argument parsing.
REAL_TOOLS = ('tools/infer.py', 'tools/deploy/export.py', 'tools/test.py')
pytestmark = pytest.mark.slow


def doc_commands():
    """``(file:line, command)`` of every command in the fenced shell blocks of the docs."""
    found = []
    for pattern in DOCS:
        for path in sorted(glob.glob(os.path.join(ROOT, pattern))):
            text = open(path, encoding='utf-8').read()
            for match in re.finditer(r'^```(?:bash|sh|shell)\n(.*?)^```', text, re.S | re.M):
                first = text[:match.start()].count('\n') + 2
                command, start = '', None
                for offset, line in enumerate(match.group(1).splitlines()):
                    code = re.sub(r'(^|\s)#.*$', '', line).rstrip()
                    if not code.strip():
                        continue
                    start = first + offset if start is None else start
                    if code.endswith('\\'):
                        command += code[:-1] + ' '
                        continue
                    command = re.sub(r'\s*\[[^\]]*\]', '', command + code)  # optional parts
                    found.append((f'{os.path.relpath(path, ROOT)}:{start}',
                                  ' '.join(command.split())))
                    command, start = '', None
    return found


def _words(command):
    words = shlex.split(command)
    env = {}
    while words and re.match(r'^[A-Z_]+=', words[0]):
        key, _, value = words.pop(0).partition('=')
        env[key] = value
    return env, [PLACEHOLDERS.get(w, w) for w in words]


def _run(args, cwd=ROOT, **kwargs):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600, **kwargs)


class Checks:
    """The checks of one harness run: parse-only checks are batched into one process (its
    imports are paid once), real runs happen in ``workspace``."""

    def __init__(self, workspace):
        self.workspace = workspace
        self.ran = {}  # (env, words) of a command run for real -> its problem or None
        self.parse_jobs = []  # (where, command, argv, config to check or None)

    def parse(self, where, command, tool, args):
        config = args[0] if os.path.basename(tool) in ('train.py', 'test.py') and args else None
        self.parse_jobs.append((where, command, [tool, *args], config))

    def finish(self):
        """The problems of the batched parse-only checks."""
        if not self.parse_jobs:
            return []
        lines = ''.join(json.dumps(argv) + '\n' for _, _, argv, _ in self.parse_jobs)
        done = _run([sys.executable, 'tests/helpers/parse_only.py'], input=lines)
        results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{')]
        if len(results) != len(self.parse_jobs):
            return [f'parse_only.py ended early: {done.stderr.strip()[-800:]}']
        problems = []
        for (where, command, _, config), result in zip(self.parse_jobs, results):
            if result['status'] != 0:
                problems.append(f'{where}: {command!r} does not parse: '
                                f'{result["output"].strip()[-400:]}')
            elif config:
                why = _config_passes(config)
                if why:
                    problems.append(f'{where}: {command!r}: {why}')
        return problems


def _config_passes(config):
    """None when ``config`` loads and passes the checks run at start, else why not."""
    from resnest_mm.frontends import preflight
    from resnest_mm.frontends.config_loader import load_config
    try:
        cfg = load_config(os.path.join(ROOT, config))
        for check in (preflight.check_top_level_keys, preflight.check_types,
                      preflight.check_values):
            check(cfg)
    except Exception as exc:
        return f'{config}: {exc}'
    return None


def _runs_here(words):
    """Whether a tool command can run for real on the tiny digits run: it reads the digits
    config and data only."""
    return (words[1] in REAL_TOOLS and PLACEHOLDERS['CONFIG'] in words
            and not any(w.startswith('data/') and not w.startswith('data/digits/')
                        for w in words))


def _python_tool(checks, where, command, env, words):
    if _runs_here(words):
        # a command written in two places (README.md and docs/tools.md) runs once: the same
        # words in the same workspace, the same outcome, reported at each place
        key = (tuple(sorted(env.items())), tuple(words))
        if key not in checks.ran:
            checks.ran[key] = _run_tool(checks, env, words)
        return checks.ran[key]
    checks.parse(where, command, words[1], words[2:])
    return None


def _run_tool(checks, env, words):
    """Run a tool command for real in the workspace; None when it exits 0, else why not."""
    # an example image the docs name gets a real image at that path for this command only:
    # left there, its folder (val/3/) would be an 11th class to the next tools/test.py
    made = []
    for word in words:
        target = os.path.join(checks.workspace, word)
        if word.startswith('data/digits/') and word.lower().endswith(('.jpg', '.jpeg',
                                                                     '.png')) and \
                not os.path.exists(target):
            folder = os.path.dirname(target)
            while not os.path.exists(folder):
                made.append(folder)
                folder = os.path.dirname(folder)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy(checks.example_image, target)
            made.append(target)
    try:
        done = _run([sys.executable, *words[1:]], cwd=checks.workspace,
                    env={**os.environ, **env, 'PYTHONPATH': ROOT})
    finally:
        for path in reversed(made):  # the images, then the folders made for them
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.exists(path):
                os.remove(path)
    if done.returncode != 0:
        return f'run in {checks.workspace}: {(done.stderr or done.stdout).strip()[-400:]}'
    return None


def _dist_script(checks, where, command, env, words):
    script = words[1]
    syntax = _run(['bash', '-n', script])
    if syntax.returncode != 0:
        return f'{script}: {syntax.stderr.strip()}'
    tool = 'tools/train.py' if 'train' in os.path.basename(script) else 'tools/test.py'
    args = words[2:]
    if 'slurm' in script:  # PARTITION JOB_NAME CONFIG WORK_DIR [train.py args]
        args = [args[2], '--work-dir', args[3], *args[4:]]
    elif 'dist_test' in script:  # CONFIG CHECKPOINT NUM_DEVICES [test.py args]
        args = [args[0], args[1], *args[3:]]
    else:  # CONFIG NUM_DEVICES [train.py args]
        args = [args[0], *args[2:]]
    checks.parse(where, command, tool, args)
    return None


def _make(checks, where, command, env, words):
    done = _run(['make', '-n', *words[1:]])
    return None if done.returncode == 0 else f'make -n {words[1:]}: {done.stderr.strip()}'


def _packaging(checks, where, command, env, words):
    test = os.path.join(ROOT, 'tests', 'test_packaging.py')
    return None if os.path.isfile(test) and 'mim' in open(test).read() else \
        'tests/test_packaging.py no longer covers pip install / mim'


RULES = [
    (r'^python tools/\S+\.py( |$)', _python_tool),
    (r'^bash tools/(dist_train|dist_test|slurm_train)\.sh ', _dist_script),
    (r'^make \w', _make),
    (r'^(pip install \.|mim (train|test|search) )', _packaging),
]


def check_commands(commands, workspace, example_image):
    """The problems of ``commands`` (``(where, command)``): uncovered, not parsing, failing."""
    checks = Checks(workspace)
    checks.example_image = example_image
    problems = []
    for where, command in commands:
        env, words = _words(command)
        plain = ' '.join(words)
        rule = next((check for pattern, check in RULES if re.search(pattern, plain)), None)
        if rule is None:
            problems.append(f'{where}: {command!r} is covered by no rule of '
                            'tests/test_docs_commands.py')
            continue
        why = rule(checks, where, command, env, words)
        if why:
            problems.append(f'{where}: {command!r}: {why}')
    return problems + checks.finish()


@pytest.fixture(scope='module')
def workspace(tiny_run, tmp_path_factory):
    """A folder where the docs' paths exist: configs/ and tools/ of the checkout,
    data/digits/ a copy of the tiny run's images, work_dirs/demo/epoch_10.pth its last
    checkpoint."""
    root = tmp_path_factory.mktemp('docs_workspace')
    for name in ('configs', 'tools'):
        os.symlink(os.path.join(ROOT, name), root / name)
    os.makedirs(root / 'data')
    # a copy: the session's tiny run is shared, and the commands here add example images
    shutil.copytree(tiny_run['data_root'], root / 'data' / 'digits')
    os.makedirs(root / 'work_dirs' / 'demo')
    for suffix in ('', '.sha256'):
        if os.path.exists(tiny_run['checkpoint'] + suffix):
            shutil.copy(tiny_run['checkpoint'] + suffix,
                        root / 'work_dirs' / 'demo' / f'epoch_10.pth{suffix}')
    return str(root)


def test_the_harness_reads_commands_and_refuses_what_it_cannot_cover(workspace, tiny_run):
    commands = doc_commands()
    assert any(c.startswith('python tools/') for _, c in commands), commands
    problems = check_commands([
        ('x.md:1', 'frobnicate --all'),
        ('x.md:2', 'python tools/train.py configs/resnest50_1xb32_digits.py --bogus'),
        ('x.md:3', 'python tools/infer.py data/digits/val/x.jpg --config '
                   'configs/resnest50_1xb32_digits.py --checkpoint work_dirs/demo/nothing.pth'),
        ('y.md:9', 'python tools/infer.py data/digits/val/x.jpg --config '
                   'configs/resnest50_1xb32_digits.py --checkpoint work_dirs/demo/nothing.pth'),
    ], workspace, tiny_run['images'][0])
    assert len(problems) == 4, problems
    assert "x.md:1: 'frobnicate --all' is covered by no rule" in problems[0]
    # the same command in two places runs once and is reported at both
    assert 'x.md:3' in problems[1] and 'nothing.pth' in problems[1]
    assert problems[2] == problems[1].replace('x.md:3', 'y.md:9', 1)
    assert 'x.md:2' in problems[3] and 'unrecognized arguments: --bogus' in problems[3]


def test_every_documented_command_is_covered_and_works(workspace, tiny_run):
    problems = check_commands(doc_commands(), workspace, tiny_run['images'][0])
    assert not problems, '\n'.join(problems)
