"""The errors of ``undersr generate``: problems the user can fix, reported as one line without a traceback."""
import errno


class GenerateError(Exception):
    """A problem the user can fix; reported as one line without a traceback."""


class WriteError(GenerateError):
    """Writing ``path`` failed; finished chunks are kept and a rerun resumes.

    Args:
        path (str): The file or folder that could not be written.
        err (Exception): The ``OSError`` (or LMDB error) raised.
        staging (str): The staging folder that keeps the finished chunks.
    """

    def __init__(self, path, err, staging):
        reason = 'the disk is full' if getattr(err, 'errno', None) == errno.ENOSPC else f'{type(err).__name__}: {err}'
        super().__init__(f'cannot write {path}: {reason}. Finished chunks are kept in {staging}; free some space '
                         'and rerun the same command to resume.')
        self.path, self.err = path, err
