"""Names from disk are data: escape_name makes any name one printable, unambiguous line."""
import pytest

from resnest_mm.utils.escape import escape_name


@pytest.mark.parametrize('name, shown', [
    ('n01440764_10026.JPEG', 'n01440764_10026.JPEG'),
    ('été 写真 фото.jpg', 'été 写真 фото.jpg'),  # printable in any script: unchanged
    ('a\nb.JPEG', 'a\\nb.JPEG'),
    ('a\tb\r.JPEG', 'a\\tb\\r.JPEG'),
    ('\x1b[31mred\x1b[0m.JPEG', '\\x1b[31mred\\x1b[0m.JPEG'),
    ('del\x7f c1\x85 nul\x00', 'del\\x7f c1\\x85 nul\\x00'),
    ('rtl\u202egpj.exe', 'rtl\\u202egpj.exe'),
    ('line\u2028sep', 'line\\u2028sep'),
    ('back\\slash', 'back\\\\slash'),  # so that 'a\\nb' and 'a\nb' stay different
    (b'not-utf8-\xff.jpg'.decode('utf-8', 'surrogateescape'), 'not-utf8-\\xff.jpg'),
])
def test_every_unprintable_character_is_escaped_and_nothing_else(name, shown):
    assert escape_name(name) == shown
    assert escape_name(name).isprintable() and '\n' not in escape_name(name)


def test_different_names_stay_different():
    names = ['a\nb', 'a\\nb', 'a\\\nb', 'a\x0ab', 'a\u000ab']
    assert len({escape_name(n) for n in set(names)}) == len(set(names))
