"""``ends_within``: a test fails, instead of hanging the suite, when its body does not end."""
import contextlib
import signal


class DidNotEndError(Exception):
    """Not an OSError (``TimeoutError`` is one): the code under test catches those."""


@contextlib.contextmanager
def ends_within(seconds: float):
    """Raise :class:`DidNotEndError` in the body once it has run ``seconds`` (SIGALRM)."""
    def stop(*_):
        raise DidNotEndError(f'did not end within {seconds} s')

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
