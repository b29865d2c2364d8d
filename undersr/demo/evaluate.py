"""Scores the SR images that the demo's test runs wrote: PSNR-Y and SSIM-Y against HR, NIQE without HR."""
import os
from os import path as osp

from undersr.degrade import Degrader, blend
from undersr.demo.degradations import DEGRADATIONS, REALISTIC, SCALE
from undersr.image_io import read_rgb, to_uint8
from undersr.progress import progress

import cv2
import numpy as np
import torch
from basicsr.metrics import calculate_niqe, calculate_psnr, calculate_ssim

NIQE_SET = 'lr-photos'


def niqe(rgb):
    """BasicSR's NIQE on Y (border 4), or NaN where it is undefined (a flat image from a barely trained network)."""
    try:
        return float(calculate_niqe(np.ascontiguousarray(rgb[..., ::-1]), SCALE, input_order='HWC', convert_to='y'))
    except np.linalg.LinAlgError:
        return float('nan')


def bicubic_upsample(lr):
    """The baseline: OpenCV bicubic ×4 of an (h, w, 3) uint8 image."""
    return cv2.resize(lr, (lr.shape[1] * SCALE, lr.shape[0] * SCALE), interpolation=cv2.INTER_CUBIC)


def score(sr, hr):
    """PSNR-Y and SSIM-Y (border 4, BasicSR's functions) of two (H, W, 3) uint8 RGB images."""
    sr_bgr, hr_bgr = np.ascontiguousarray(sr[..., ::-1]), np.ascontiguousarray(hr[..., ::-1])
    return {'psnr_y': float(calculate_psnr(sr_bgr, hr_bgr, SCALE, test_y_channel=True)),
            'ssim_y': float(calculate_ssim(sr_bgr, hr_bgr, SCALE, test_y_channel=True))}


def split_name(model_name):
    """``'sr_finetuned_seed2'`` -> ``('sr_finetuned', 2)``; ``'bicubic'`` -> ``('bicubic', None)``."""
    method, _, seed = model_name.rpartition('_seed')
    return (method, int(seed)) if method else (model_name, None)


def evaluate(demo, model_names, splits=('test', 'val'), niqe_set=True):
    """Scores bicubic upsampling and every model on every set.

    Args:
        demo (undersr.demo.pipeline.Demo): The run (its data and its test runs' SR images).
        model_names (list[str]): ``models/<name>.pth`` names whose test runs have finished.
        splits (Sequence[str]): ``'test'`` (held-aside photos) and/or ``'val'`` (validation parts).
        niqe_set (bool): Also score the no-ground-truth LR photos with NIQE.

    Returns:
        list[dict]: One row per (split, set, image, model): ``split``, ``set``, ``image``, ``method``, ``seed``,
        ``psnr_y``, ``ssim_y``, ``niqe`` (NaN where not measured).
    """
    rows = []
    nan = float('nan')
    for split in splits:
        images = sorted(osp.splitext(f)[0] for f in os.listdir(osp.join(demo.data, split, 'gt')))
        for degradation in progress(list(DEGRADATIONS), desc=f'scoring {split} sets'):
            for image in images:
                hr = read_rgb(osp.join(demo.data, split, 'gt', f'{image}.png'))
                lr = read_rgb(osp.join(demo.data, split, 'lq', degradation, f'{image}.png'))
                outputs = {'bicubic': bicubic_upsample(lr)}
                outputs.update({m: read_rgb(demo.sr_image(m, f'{split}_{degradation}', image)) for m in model_names})
                for model_name, sr in outputs.items():
                    method, seed = split_name(model_name)
                    rows.append({'split': split, 'set': degradation, 'image': image, 'method': method, 'seed': seed,
                                 **score(sr, hr), 'niqe': nan})
    if niqe_set:
        folder = osp.join(demo.data, 'test', 'lr_photos')
        for image in progress(sorted(osp.splitext(f)[0] for f in os.listdir(folder)), desc='NIQE'):
            outputs = {'bicubic': bicubic_upsample(read_rgb(osp.join(folder, f'{image}.png')))}
            outputs.update({m: read_rgb(demo.sr_image(m, f'test_{NIQE_SET}', image)) for m in model_names})
            for model_name, sr in outputs.items():
                method, seed = split_name(model_name)
                rows.append({'split': 'test', 'set': NIQE_SET, 'image': image, 'method': method, 'seed': seed,
                             'psnr_y': nan, 'ssim_y': nan, 'niqe': niqe(sr)})
    return rows


def degradation_strength(demo, recon_paths, color_correct, strength=None):
    """How each degradation changes the validation parts' LR against their bicubic LR.

    Two numbers per degradation, means over the validation parts: PSNR to the bicubic LR (dB, RGB; higher: milder)
    and the high-frequency ratio, the energy of the Laplacian of Y of the degraded LR over that of the bicubic LR
    (below 1: detail removed, blur; above 1: detail added, noise). The undertrained reconstructions the fine-tune
    learns from are compared with the realistic test degradations (made on the validation parts, whose HR the demo
    owns); a fine-tune learns to undo what it sees.

    Args:
        demo (undersr.demo.pipeline.Demo): The run.
        recon_paths (list[str]): Reconstruction checkpoints (``models/recon_ep<N>.pth``).
        color_correct (str): The fine-tune's colour correction.
        strength (float | None): The fine-tune's ``strength`` (:class:`undersr.degrade.Degrader`): also measured,
            per checkpoint, at the strongest blend it draws (a PSNR averaged over s in [0, strength] would be
            dominated by the nearly clean samples); at strength 1 that blend is the reconstruction itself.

    Returns:
        dict[str, tuple[float, float]]: Degradation label -> (mean PSNR to the bicubic LR, high-frequency ratio).
    """
    folder = osp.join(demo.data, 'val', 'lq')
    names = sorted(os.listdir(osp.join(folder, 'bicubic')))
    clean = [read_rgb(osp.join(folder, 'bicubic', n)) for n in names]
    result = {}
    for subset in REALISTIC:
        result[f'test degradation: {subset}'] = _compare([read_rgb(osp.join(folder, subset, n)) for n in names], clean)
    strength = strength if strength and strength < 1 else None  # s = 1: the reconstruction, measured anyway
    for path in recon_paths:
        degrader = Degrader([path], scale=SCALE, color_correct=color_correct)
        full, blended = [], []
        for seed, lr in enumerate(clean):
            x = torch.from_numpy(lr).permute(2, 0, 1)[None].float().div(255)
            lq = degrader.degrade_lr(x, [seed])['lq']
            full.append(to_uint8(lq[0].permute(1, 2, 0)).numpy())
            if strength:  # the strongest blend the fine-tune sees (s = strength; its samples range down to clean)
                blended.append(to_uint8(blend(x, lq, strength)[0].permute(1, 2, 0)).numpy())
        name = f'training: {degrader.sources[0].name} ({color_correct})'
        result[name] = _compare(full, clean)
        if strength:
            result[f'{name}, blended at s = strength = {strength:g}'] = _compare(blended, clean)
    return result


def _compare(degraded, clean):
    """(mean PSNR in dB over all channels, mean high-frequency ratio) of uint8 RGB images to their clean LR."""
    def energy(rgb):
        y = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)[..., 0].astype(np.float64)
        return float(np.square(cv2.Laplacian(y, cv2.CV_64F)).mean())
    return (float(np.mean([calculate_psnr(d, c, 0) for d, c in zip(degraded, clean)])),
            float(np.mean([energy(d) / energy(c) for d, c in zip(degraded, clean)])))
