"""Which samples ``undersr generate`` makes: the ``--hr`` source, sample slots, output keys, crop boxes and seeds.

Everything here depends only on the arguments and the image keys, never on the processing order, so sharding,
resumption and batch composition do not change a sample (see "Samples" and "Output keys" in docs/generate.md).
"""
import hashlib
import re
import warnings
from dataclasses import dataclass
from os import path as osp

from undersr.generate.errors import GenerateError


def derive_seed(*parts):
    """A 63-bit integer from a SHA-256 of ``parts``: the same parts always give the same number."""
    digest = hashlib.sha256('\x1f'.join(map(str, parts)).encode('utf-8')).digest()
    return int.from_bytes(digest[:8], 'big') >> 1


def sample_seed(seed, source_key, crop_index):
    """The seed of one sample (its checkpoint choice and any randomness of the reconstruction)."""
    return derive_seed('sample', seed, source_key, crop_index)


def output_keys(rel_paths):
    """Unique, dot-free output keys for relative image paths (see "Output keys" in docs/generate.md).

    Args:
        rel_paths (Sequence[str]): Distinct relative paths (or LMDB keys).

    Returns:
        list[str]: One key per path, in the same order.

    Raises:
        GenerateError: Two paths cannot be told apart even with their hashes.
    """
    base = []
    for rel in rel_paths:
        stem = osp.splitext(rel.replace('\\', '/'))[0]
        base.append(re.sub(r'[^A-Za-z0-9_-]', '_', stem.replace('/', '__')))
    counts = {}
    for key in base:
        counts[key] = counts.get(key, 0) + 1
    keys = [key if counts[key] == 1 else f'{key}-{hashlib.sha256(rel.encode("utf-8")).hexdigest()[:8]}'
            for key, rel in zip(base, rel_paths)]
    if len(set(keys)) != len(keys):
        clash = sorted(rel for rel, key in zip(rel_paths, keys) if keys.count(key) > 1)
        raise GenerateError(f'cannot give these images distinct output keys: {clash[:6]}; rename them')
    return keys


@dataclass(frozen=True)
class Slot:
    """One potential sample: crop ``crop_index`` of image ``source_index`` of the :class:`ImageSource`."""
    index: int
    source_index: int
    source_key: str
    key: str
    crop_index: int


def build_slots(source, crop, crops_per_image):
    """All sample slots in order: images sorted by key, then crop index.

    Args:
        source (ImageSource): The ``--hr`` images; a key listed twice is used once, with a warning.
        crop (int | None): ``--crop``; without it each image has one slot.
        crops_per_image (int): ``--crops-per-image``.

    Returns:
        list[Slot]
    """
    order, seen = [], set()
    for index in sorted(range(len(source)), key=lambda i: source.keys[i]):
        if source.keys[index] in seen:
            warnings.warn(f'{source.name(index)} is listed twice; using it once')
            continue
        seen.add(source.keys[index])
        order.append(index)
    keys = output_keys([source.keys[i] for i in order])
    slots = []
    for index, key in zip(order, keys):
        for j in range(crops_per_image if crop else 1):
            slots.append(Slot(len(slots), index, source.keys[index], f'{key}_s{j:03d}' if crop else key, j))
    return slots


def count_chunks(slots, batch_size):
    """The number of chunks of ``batch_size`` consecutive slots (the last may be shorter)."""
    return -(-len(slots) // batch_size)


def chunk_slots(slots, chunk, batch_size):
    """The slots of chunk ``chunk``: ``batch_size`` consecutive slots (fewer in the last chunk)."""
    return slots[chunk * batch_size:(chunk + 1) * batch_size]


def crop_box(height, width, crop, scale, seed, source_key, crop_index):
    """The HR box ``[top, left, h, w]`` of a slot, or ``None`` if the slot stays empty.

    Whole images (no ``crop``, or an image smaller than ``crop``) are trimmed at the bottom and right to a
    multiple of ``scale`` and fill only slot 0.
    """
    if crop is None or height < crop or width < crop:
        if crop_index > 0:
            return None
        return [0, 0, height - height % scale, width - width % scale]
    top = derive_seed('top', seed, source_key, crop_index) % (height - crop + 1)
    left = derive_seed('left', seed, source_key, crop_index) % (width - crop + 1)
    return [top, left, crop, crop]


def open_source(hr, hr_root=None):
    """The :class:`ImageSource` of ``--hr`` (and ``--hr-root``).

    Raises:
        GenerateError: ``hr`` is missing or not an image folder, LMDB or meta_info file, or ``hr_root`` is wrong.
    """
    from undersr.data.image_source import ImageSource

    if not osp.exists(hr):
        raise GenerateError(f'--hr not found: {hr}')
    try:
        if osp.isfile(hr):
            root = hr_root or osp.dirname(osp.abspath(hr))
            if not osp.isdir(root):
                raise GenerateError(f'--hr-root is not a folder: {root}')
            return ImageSource(root, meta_info=hr)
        if hr_root:
            raise GenerateError('--hr-root only applies when --hr is a meta_info file')
        return ImageSource(hr)
    except UnicodeDecodeError as err:
        raise GenerateError(f'--hr {hr} is a file but not a BasicSR meta_info text file') from err
    except FileNotFoundError as err:
        raise GenerateError(f'--hr: {err}') from err
