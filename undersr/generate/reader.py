"""Decoding and cropping the HR images of ``undersr generate`` in threads, ahead of the network."""
import itertools
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from undersr.generate.samples import chunk_slots, crop_box, sample_seed
from undersr.image_io import BadImageError, decode_image_noted

import numpy as np
import torch


class ChunkReader:
    """Decodes and crops the HR images of one chunk per item (runs in decode threads).

    Each item is a dict: ``chunk`` (its number), ``samples`` (dicts with the :class:`Slot`, ``crop_box``,
    ``seed`` and ``hr``, a (3, h, w) RGB tensor: uint8 for 8-bit images, which keeps their HR output exact without
    a round trip through float, else float32 in [0, 1]), ``skipped`` (``{file, reason}``) and
    ``warnings`` (conversion messages of :func:`decode_image_noted`, issued by the main thread).

    Args:
        source (ImageSource): The ``--hr`` images.
        chunks (list[int]): The chunks to read, one per item.
        slots (list[Slot]): All sample slots; chunk ``k`` is ``slots[k * batch_size:(k + 1) * batch_size]``.
        batch_size (int): Slots per chunk.
        crop (int | None): ``--crop``.
        scale (int): ``--scale``.
        seed (int): ``--seed``.
    """

    def __init__(self, source, chunks, slots, batch_size, crop, scale, seed):
        self.source, self.chunks, self.slots = source, chunks, slots
        self.batch_size, self.crop, self.scale, self.seed = batch_size, crop, scale, seed

    def __len__(self):
        return len(self.chunks)

    def __getitem__(self, item):
        chunk = self.chunks[item]
        samples, skipped, notes, images = [], [], [], {}
        for slot in chunk_slots(self.slots, chunk, self.batch_size):
            if slot.source_index not in images:
                images[slot.source_index] = self._decode(slot, skipped, notes)
            image = images[slot.source_index]
            if image is None:
                continue
            height, width = image.shape[:2]
            if height < self.scale or width < self.scale:
                if slot.crop_index == 0:
                    skipped.append({'file': slot.source_key,
                                    'reason': f'{height}x{width} is smaller than the scale {self.scale}'})
                continue
            box = crop_box(height, width, self.crop, self.scale, self.seed, slot.source_key, slot.crop_index)
            if box is None:
                continue
            top, left, h, w = box
            rgb = image[top:top + h, left:left + w, ::-1].transpose(2, 0, 1)
            samples.append({'slot': slot, 'crop_box': box, 'seed': sample_seed(self.seed, slot.source_key,
                                                                                  slot.crop_index),
                            'hr': torch.from_numpy(np.ascontiguousarray(rgb))})
        return {'chunk': chunk, 'samples': samples, 'skipped': skipped, 'warnings': notes}

    def _decode(self, slot, skipped, notes):
        """The (H, W, 3) BGR image of ``slot``, or ``None`` (then added to ``skipped``) if it cannot be read."""
        try:
            name = self.source.name(slot.source_index)
            image, found = decode_image_noted(self.source.read(slot.source_index), name, keep_8bit=True)
        except BadImageError as err:
            skipped.append({'file': slot.source_key, 'reason': err.reason})
            return None
        notes += found
        return image


def prefetch(fn, items, workers):
    """Yields ``fn(item)`` for each item in order, computing up to ``2 * workers`` ahead in threads.

    Threads, not processes: OpenCV's decoders release the GIL, and nothing is forked from a process whose
    OpenMP threads could leave a child deadlocked. ``workers=0`` runs inline.
    """
    if not workers:
        yield from map(fn, items)
        return
    items = iter(items)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        ahead = deque(pool.submit(fn, item) for item in itertools.islice(items, 2 * workers))
        while ahead:
            result = ahead.popleft().result()
            for item in itertools.islice(items, 1):
                ahead.append(pool.submit(fn, item))
            yield result
