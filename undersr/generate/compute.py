"""Degrading one decoded chunk of ``undersr generate``: batches of equal-size samples through the :class:`Degrader`.

The chunk's record lists each sample's key, source image, crop box, checkpoint and seed, and on every
``--delta-e-every``-th slot the colour shift (see "Output layout" in docs/generate.md).
"""
from undersr.image_io import to_uint8

import numpy as np
import torch


def to_bgr_uint8(batch):
    """(N, 3, H, W) RGB float in [0, 1] → (N, H, W, 3) uint8 BGR NumPy (rounded, clipped)."""
    array = to_uint8(batch.cpu())
    return np.ascontiguousarray(array.permute(0, 2, 3, 1).numpy()[..., ::-1])


def delta_e_scores(degrader, out, indices):
    """``{i: {before, after}}``: mean CIEDE2000 between clean and degraded LR of the samples ``indices``.

    Args:
        degrader (Degrader): What made ``out``.
        out (dict): The :class:`Degrader`'s output; ``lq_clean``, ``lq_raw`` and ``lq`` are (N, 3, h, w).
        indices (list[int]): The samples to measure (may be empty).
    """
    from undersr.color import delta_e

    if not indices:
        return {}
    clean = out['lq_clean'][indices]
    before = delta_e(clean, out['lq_raw'][indices])
    after = delta_e(clean, out['lq'][indices]) if degrader.color_correct != 'none' else before
    return {i: {'before': round(float(b), 4), 'after': round(float(a), 4)} for i, b, a in zip(indices, before, after)}


def compute_chunk(degrader, item, device, delta_e_every):
    """Degrades the samples of one decoded chunk (an item of :class:`ChunkReader`).

    Returns:
        tuple[list, dict]: ``(key, gt, lq)`` with (H, W, 3) and (H/scale, W/scale, 3) uint8 BGR images, and the
        chunk's record (``chunk``, ``samples`` in slot order, ``skipped``).
    """
    groups = {}
    for sample in item['samples']:
        groups.setdefault((tuple(sample['hr'].shape), sample['hr'].dtype), []).append(sample)
    pairs, records = [], []
    for members in groups.values():
        hr = torch.stack([m['hr'] for m in members])
        if hr.dtype == torch.uint8:  # 8-bit images: the HR output is the decoded pixels, converted on the device
            gt_u8 = np.ascontiguousarray(hr.permute(0, 2, 3, 1).numpy()[..., ::-1])
            hr = hr.to(device).float().div_(255)
        else:
            gt_u8 = to_bgr_uint8(hr)
        out = degrader(hr.to(device), [m['seed'] for m in members])
        lq_u8 = to_bgr_uint8(out['lq'])
        scores = delta_e_scores(degrader, out, [i for i, m in enumerate(members)
                                                if delta_e_every and m['slot'].index % delta_e_every == 0])
        for i, member in enumerate(members):
            slot, choice = member['slot'], int(out['source'][i])
            record = {'key': slot.key, 'source_file': slot.source_key, 'crop_box': member['crop_box'],
                      'recon': degrader.sources[choice].name, 'recon_index': choice, 'seed': member['seed']}
            if i in scores:
                record['delta_e'] = scores[i]
            records.append((slot.index, record))
            pairs.append((slot.key, gt_u8[i], lq_u8[i]))
    records.sort(key=lambda r: r[0])
    return pairs, {'chunk': item['chunk'], 'samples': [r for _, r in records], 'skipped': item['skipped']}
