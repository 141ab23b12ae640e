"""The README is a newcomer's page that leads into docs/, and every link of both resolves."""
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINK = re.compile(r'\[[^\]]*\]\(([^)\s]+)\)')


def _pages() -> list:
    docs = os.path.join(ROOT, 'docs')
    return ['README.md'] + sorted(os.path.join('docs', name) for name in os.listdir(docs)
                                  if name.endswith('.md'))


def test_readme_is_short_and_links_every_docs_page():
    with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as f:
        text = f.read()
    assert len(text.splitlines()) <= 200, 'README.md is a five-minute page: move detail to docs/'
    linked = set(re.findall(r'\(docs/([\w.-]+\.md)', text))
    pages = {name for name in os.listdir(os.path.join(ROOT, 'docs')) if name.endswith('.md')}
    assert pages - linked == set(), f'docs pages the README does not lead to: {pages - linked}'


@pytest.mark.parametrize('page', _pages())
def test_every_relative_link_resolves(page):
    with open(os.path.join(ROOT, page), encoding='utf-8') as f:
        text = f.read()
    broken = []
    for target in LINK.findall(text):
        if re.match(r'[a-z]+:', target) or target.startswith('#'):
            continue  # a URL or an anchor in the same page
        path = os.path.normpath(os.path.join(ROOT, os.path.dirname(page), target.split('#')[0]))
        if not os.path.exists(path):
            broken.append(target)
    assert broken == [], f'{page}: links to missing files: {broken}'


def test_no_file_describes_a_tool_outside_the_project():
    """The GPU check is plain shell commands: no file speaks another tool's call syntax."""
    files = subprocess.run(['git', 'ls-files'], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    needle = 'carry' + '='  # split so that this file does not match itself
    found = []
    for name in files:
        path = os.path.join(ROOT, name)
        if not os.path.isfile(path):
            continue
        with open(path, 'rb') as f:
            if needle.encode() in f.read():
                found.append(name)
    assert found == []
