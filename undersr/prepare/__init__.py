"""``undersr prepare``: the official downloads a user has turned into the layouts that our options read.

* :mod:`undersr.prepare.sources`: the official place of every input, and :class:`PrepareError`;
* :mod:`undersr.prepare.files`: folders and archives read alike, resumable crash-safe copies, image checks;
* :mod:`undersr.prepare.datasets`: one function per dataset, the layouts and their verification;
* :mod:`undersr.prepare.miniature`: a miniature of every download from offline photos (``reproduce --tiny``).

Nothing here downloads anything. See docs/reproduce.md.
"""
from undersr.prepare.sources import SOURCES, PrepareError, how_to_get

__all__ = ['SOURCES', 'PrepareError', 'how_to_get']
