"""Crash-safe file writing: a file either has its old content or its complete new content, never half of it.

Writes are also durable: the data is fsync'ed before the rename that makes it visible and the folder after it,
so a power cut loses at most the file being written. ``UNDERSR_FSYNC=0`` turns the fsync calls off; it exists
only so that ``benchmarks/bench_io.py --fsync`` can measure what they cost.
"""
import contextlib
import errno
import os

FSYNC_ENV = 'UNDERSR_FSYNC'
# fsync of a folder is refused by some file systems and platforms; the data is then as safe as they allow.
_DIR_FSYNC_UNSUPPORTED = (errno.EINVAL, errno.ENOTSUP, errno.EBADF, errno.EACCES, errno.EISDIR)


def fsync_enabled():
    """Whether :func:`fsync` and :func:`fsync_dir` sync (always, unless ``UNDERSR_FSYNC=0``)."""
    return os.environ.get(FSYNC_ENV, '1') != '0'


def fsync(path):
    """Flushes the file ``path`` to the disk; raises ``OSError``."""
    if not fsync_enabled():
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path):
    """Flushes the entries of the folder ``path`` (created, renamed or removed files) to the disk."""
    try:
        fsync(path)
    except OSError as err:
        if err.errno not in _DIR_FSYNC_UNSUPPORTED:
            raise


def durable_makedirs(path):
    """``os.makedirs(path, exist_ok=True)``, durably: the parent of each folder it creates is fsync'ed."""
    path = os.path.abspath(path)
    created = []
    while not os.path.isdir(path):
        created.append(path)
        path = os.path.dirname(path)
    for folder in reversed(created):
        os.makedirs(folder, exist_ok=True)
        fsync_dir(os.path.dirname(folder))


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside ``path`` to write to; renames it onto ``path`` when the block succeeds.

    The temporary file is removed if the block fails, so an error or interruption leaves ``path`` untouched. The
    block must close the file; it is then fsync'ed before the rename, and the folder after it.
    """
    tmp = f'{path}.tmp{os.getpid()}'
    try:
        yield tmp
        fsync(tmp)
        os.replace(tmp, path)
        fsync_dir(os.path.dirname(os.path.abspath(path)))
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_atomic(path, data):
    """Writes the bytes ``data`` to ``path`` through :func:`atomic_path`; raises ``OSError``."""
    with atomic_path(path) as tmp, open(tmp, 'wb') as f:
        f.write(data)
