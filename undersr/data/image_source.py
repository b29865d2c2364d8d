"""A read-only collection of images: a folder tree, an LMDB (BasicSR layout), or a folder plus meta_info file."""
import os
from os import path as osp

from undersr.image_io import IMAGE_EXTENSIONS, BadImageError

from basicsr.data.data_util import paths_from_lmdb
from basicsr.utils import FileClient


def is_lmdb(root):
    """True for a BasicSR LMDB folder (``data.mdb`` inside)."""
    return osp.isfile(osp.join(root, 'data.mdb'))


def list_folder(root):
    """Relative paths of all images under ``root``, recursively and sorted (Tiny-ImageNet's layout works)."""
    found = []
    for folder, _, files in os.walk(root, followlinks=True):
        found += [osp.relpath(osp.join(folder, f), root) for f in files if f.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(found)


def read_meta_info(path):
    """Keys listed in a BasicSR ``meta_info`` file: the first token of each non-empty line."""
    with open(path) as f:
        return [line.split()[0] for line in f if line.strip()]


class ImageSource:
    """Images addressed by key, read as encoded bytes.

    Args:
        root (str): A folder tree, or an LMDB folder made by BasicSR or ``undersr generate``.
        meta_info (str | None): For a folder, a BasicSR meta_info file whose first column lists the images to use
            (relative to ``root``). An LMDB always uses its own ``meta_info.txt``.
    """

    def __init__(self, root, meta_info=None):
        if not osp.exists(root):
            raise FileNotFoundError(f'image source not found: {root}')
        self.root = root
        self.lmdb = is_lmdb(root)
        if self.lmdb:
            self.keys = paths_from_lmdb(root)
        elif meta_info:
            self.keys = read_meta_info(meta_info)
        else:
            self.keys = list_folder(root)
        if not self.keys:
            raise FileNotFoundError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) found under {root}')
        self._client = None  # opened lazily, once per DataLoader worker

    def __len__(self):
        return len(self.keys)

    def name(self, index):
        """Human-readable location of image ``index`` for messages."""
        return f'{self.root}[{self.keys[index]}]' if self.lmdb else osp.join(self.root, self.keys[index])

    def read(self, index):
        """Encoded bytes of image ``index``.

        Raises:
            BadImageError: the file or LMDB entry cannot be read.
        """
        if self._client is None:
            self._client = FileClient('lmdb', db_paths=[self.root], client_keys=['gt']) if self.lmdb \
                else FileClient('disk')
        try:
            if self.lmdb:
                data = self._client.get(self.keys[index], 'gt')
            else:
                data = self._client.get(osp.join(self.root, self.keys[index]))
        except OSError as err:
            raise BadImageError(self.name(index), f'{type(err).__name__}: {err}') from err
        if data is None:
            raise BadImageError(self.name(index), 'key missing from the LMDB')
        return data
