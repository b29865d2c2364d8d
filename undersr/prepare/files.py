"""Reading what a user downloaded: a folder, a ``.zip`` or a ``.tar[.gz|.bz2|.xz]``, all the same way.

:class:`Download` lists the files of an input and copies chosen ones into our layouts. Copies are resumable and
crash-safe: an output that already exists with the member's size is skipped, every file is written to a temporary
name and renamed (:func:`undersr.fileio.atomic_path`), and files of a folder are hard-linked when the file system
allows (no second copy of DF2K's 12 GB). :func:`check_image_file` catches empty, foreign and truncated images
cheaply (signature and end marker) without decoding them.
"""
import os
import shutil
import tarfile
import zipfile
from os import path as osp

from undersr.fileio import atomic_path
from undersr.image_io import IMAGE_EXTENSIONS
from undersr.prepare.sources import PrepareError, how_to_get
from undersr.progress import progress

_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_PNG_END = b'IEND\xaeB`\x82'
_JPEG_START, _JPEG_END = b'\xff\xd8\xff', b'\xff\xd9'


def is_image_name(name):
    """True for a file name with one of :data:`undersr.image_io.IMAGE_EXTENSIONS`."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def check_image_file(path, name=None):
    """Why an image file is malformed (empty, not a PNG/JPEG it claims to be, truncated), or ``None`` if it looks
    whole. Reads only its first and last bytes; the type comes from the extension of ``name`` (default ``path``)."""
    size = osp.getsize(path)
    if size == 0:
        return 'the file is empty'
    with open(path, 'rb') as f:
        head = f.read(8)
        f.seek(max(0, size - 32))
        tail = f.read()
    lower = (name or path).lower()
    if lower.endswith('.png'):
        if head != _PNG_SIGNATURE:
            return 'not a PNG file'
        if _PNG_END not in tail:
            return 'truncated PNG (no IEND chunk at the end)'
    elif lower.endswith(('.jpg', '.jpeg')):
        if not head.startswith(_JPEG_START):
            return 'not a JPEG file'
        if _JPEG_END not in tail:
            return 'truncated JPEG (no end-of-image marker)'
    return None


class Download:
    """A downloaded input (folder or archive) whose files are addressed by relative POSIX paths.

    Args:
        path (str): The folder or archive.
        source (str): Key of :data:`undersr.prepare.sources.SOURCES`, named in errors.

    Raises:
        PrepareError: ``path`` is missing or an unreadable archive; the message says where to get it.
    """

    def __init__(self, path, source):
        self.path, self.source = path, source
        if not osp.exists(path):
            raise PrepareError(f'{path} not found. Get {how_to_get(source)}.')
        try:
            if osp.isdir(path):
                self.kind = 'folder'
                self._sizes = {}
                for folder, _, files in os.walk(path, followlinks=True):
                    for name in files:
                        full = osp.join(folder, name)
                        self._sizes[osp.relpath(full, path).replace(os.sep, '/')] = osp.getsize(full)
            elif zipfile.is_zipfile(path):
                self.kind = 'zip'
                with zipfile.ZipFile(path) as archive:
                    self._sizes = {i.filename: i.file_size for i in archive.infolist() if not i.is_dir()}
            elif tarfile.is_tarfile(path):
                self.kind = 'tar'
                with tarfile.open(path) as archive:
                    self._sizes = {m.name: m.size for m in archive.getmembers() if m.isfile()}
            else:
                raise PrepareError(f'{path} is neither a folder nor a zip or tar archive. Get {how_to_get(source)}.')
        except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
            raise PrepareError(f'{path} cannot be read ({type(err).__name__}: {err}); re-download it: '
                               f'{how_to_get(source)}.') from err

    def members(self):
        """Relative paths of every file, sorted."""
        return sorted(self._sizes)

    def read(self, member):
        """The bytes of one member (for small inputs that are converted, not copied).

        Raises:
            PrepareError: the member cannot be read.
        """
        try:
            if self.kind == 'folder':
                with open(osp.join(self.path, member), 'rb') as f:
                    return f.read()
            if self.kind == 'zip':
                with zipfile.ZipFile(self.path) as archive:
                    return archive.read(member)
            with tarfile.open(self.path) as archive:
                return archive.extractfile(member).read()
        except (OSError, KeyError, zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
            raise PrepareError(f'{self.path}: cannot read {member} ({type(err).__name__}: {err}); re-download it: '
                               f'{how_to_get(self.source)}.') from err

    def extract(self, mapping, desc='copy'):
        """Copies members to destination paths, skipping those already there with the right size.

        Args:
            mapping (dict[str, str]): member → destination file.
            desc (str): Label of the progress bar.

        Returns:
            int: Files written (the others were already complete).

        Raises:
            PrepareError: a member is corrupt in the archive (CRC error, truncated archive) or not a whole image.
        """
        todo = {m: d for m, d in mapping.items()
                if not (osp.isfile(d) and osp.getsize(d) == self._sizes[m] and check_image_file(d) is None)}
        if not todo:
            return 0
        bar = progress(total=len(todo), desc=desc, unit='file')
        try:
            if self.kind == 'folder':
                for member, dest in todo.items():
                    self._write(member, dest, lambda tmp, m=member: _link_or_copy(osp.join(self.path, m), tmp))
                    bar.update(1)
            elif self.kind == 'zip':
                with zipfile.ZipFile(self.path) as archive:
                    for member, dest in todo.items():
                        self._write(member, dest, lambda tmp, m=member: _copy_stream(archive.open(m), tmp))
                        bar.update(1)
            else:  # tar: one pass in archive order (a compressed tar cannot seek)
                with tarfile.open(self.path) as archive:
                    for info in archive:
                        if info.name in todo:
                            self._write(info.name, todo[info.name],
                                        lambda tmp, i=info: _copy_stream(archive.extractfile(i), tmp))
                            bar.update(1)
        except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
            raise PrepareError(f'{self.path} is damaged ({type(err).__name__}: {err}); re-download it: '
                               f'{how_to_get(self.source)}. Files copied so far are kept; rerun to resume.') from err
        finally:
            bar.close()
        return len(todo)

    def _write(self, member, dest, fill):
        os.makedirs(osp.dirname(osp.abspath(dest)), exist_ok=True)
        with atomic_path(dest) as tmp:
            fill(tmp)
            reason = check_image_file(tmp, dest)
            if reason:
                raise PrepareError(f'{self.path}: {member} is malformed ({reason}); re-download it: '
                                   f'{how_to_get(self.source)}.')


def _copy_stream(stream, dest):
    with stream, open(dest, 'wb') as out:
        shutil.copyfileobj(stream, out, 1 << 20)


def _link_or_copy(src, dest):
    """Hard-links ``src`` to ``dest`` where the file system allows, else copies it."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)
