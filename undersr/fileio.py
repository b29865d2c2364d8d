"""Crash-safe file writing: a file either has its old content or its complete new content, never half of it."""
import contextlib
import os


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside ``path`` to write to; renames it onto ``path`` when the block succeeds.

    The temporary file is removed if the block fails, so an error or interruption leaves ``path`` untouched.
    """
    tmp = f'{path}.tmp{os.getpid()}'
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_atomic(path, data):
    """Writes the bytes ``data`` to ``path`` through :func:`atomic_path`; raises ``OSError``."""
    with atomic_path(path) as tmp, open(tmp, 'wb') as f:
        f.write(data)
