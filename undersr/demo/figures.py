"""The demo's pictures: training pairs per reconstruction epoch, comparison crops, and the metrics plot."""
import os
from os import path as osp

from undersr.degrade import Degrader
from undersr.demo.degradations import DEGRADATIONS, REALISTIC, SCALE
from undersr.demo.evaluate import NIQE_SET, bicubic_upsample
from undersr.demo.summary import METHODS, SHORT_LABELS, difference
from undersr.image_io import read_rgb, to_uint8
from undersr.visualize import image_grid, new_figure, save_image

import numpy as np
import torch


def _bgr(rgb):
    return np.ascontiguousarray(rgb[..., ::-1])


def training_pairs(demo, recon_paths, color_correct, path, count=4, crop=128, strength=None):
    """HR | bicubic LR | degraded LR of each reconstruction checkpoint, for ``count`` training tiles.

    Args:
        demo (undersr.demo.pipeline.Demo): The run.
        recon_paths (list[str]): ``models/recon_ep<N>.pth``, one column each.
        color_correct (str): The fine-tune's colour correction, applied as in training.
        strength (float | None): The fine-tune's ``strength`` (:class:`undersr.degrade.Degrader`), applied too.
        path (str): PNG to write.
    """
    folder = osp.join(demo.data, 'train', 'gt')
    names = sorted(os.listdir(folder))
    names = [names[i * len(names) // count] for i in range(count)]
    hr = np.stack([read_rgb(osp.join(folder, n))[:crop, :crop] for n in names])
    hr = torch.from_numpy(hr).permute(0, 3, 1, 2).float().div(255)
    columns, labels = [], ['HR', 'bicubic LR']
    for recon in recon_paths:
        degrader = Degrader([recon], scale=SCALE, color_correct=color_correct, strength=strength)
        out = degrader(hr, seeds=list(range(count)))
        if not columns:
            columns += [hr, out['lq_clean']]
        columns.append(out['lq'])
        labels.append(degrader.sources[0].name.replace('VQVAE2', 'VQ-VAE-2 '))
    rows = [[_bgr(to_uint8(c[i].permute(1, 2, 0)).numpy()) for c in columns] for i in range(count)]
    save_image(path, image_grid(rows, cell=128, labels=labels))


def comparison(demo, model_names, subset, path, crop=96):
    """LR | bicubic | each model | HR: the centre ``crop`` HR pixels of every test photo under one degradation.

    Args:
        model_names (dict[str, str]): Column label -> ``models/<name>.pth`` name (seed 0 of each method).
        subset (str): A test degradation, or :data:`NIQE_SET` (no HR column then).
    """
    split = f'test_{subset}'
    gt = osp.join(demo.data, 'test', 'gt')
    lq = osp.join(demo.data, 'test', 'lr_photos' if subset == NIQE_SET else osp.join('lq', subset))
    rows = []
    for name in sorted(os.listdir(lq)):
        image = osp.splitext(name)[0]
        lr = read_rgb(osp.join(lq, name))
        outputs = [bicubic_upsample(lr)] + [read_rgb(demo.sr_image(m, split, image)) for m in model_names.values()]
        if subset != NIQE_SET:
            outputs.append(read_rgb(osp.join(gt, name)))
        h, w = outputs[0].shape[:2]
        top, left = (h - crop) // 2 // SCALE * SCALE, (w - crop) // 2 // SCALE * SCALE
        row = [lr[top // SCALE:(top + crop) // SCALE, left // SCALE:(left + crop) // SCALE]]
        row += [o[top:top + crop, left:left + crop] for o in outputs]
        rows.append([_bgr(c) for c in row])
    labels = ['LR', 'bicubic', *model_names] + ([] if subset == NIQE_SET else ['HR'])
    save_image(path, image_grid(rows, cell=128, labels=labels))


def metrics_plot(table, path, split='test'):
    """Dots per seed and mean ± std bars of PSNR-Y and SSIM-Y, per method and set (``new_figure``)."""
    subsets = list(DEGRADATIONS)
    methods = [m for m in METHODS if (split, 'bicubic', m) in table]
    fig = new_figure(width=3.2 * len(subsets), height=6)
    axes = fig.subplots(2, len(subsets), squeeze=False)
    colors = {'bicubic': '0.5', 'sr_pretrained': 'tab:blue', 'sr_control': 'tab:orange',
              'sr_finetuned': 'tab:green', 'sr_ceiling': 'tab:purple'}
    for col, subset in enumerate(subsets):
        for row, (metric, label) in enumerate((('psnr_y', 'PSNR-Y (dB)'), ('ssim_y', 'SSIM-Y'))):
            ax = axes[row][col]
            for x, method in enumerate(methods):
                values = [v[metric] for v in table[(split, subset, method)].values()]
                std = np.std(values, ddof=1) if len(values) > 1 else 0
                ax.errorbar([x], [np.mean(values)], yerr=[std], fmt='_', color=colors[method], markersize=18,
                            capsize=6, lw=1.5)
                ax.scatter(np.full(len(values), x) + np.linspace(-0.12, 0.12, len(values)), values, s=14,
                           color=colors[method], zorder=3)
            ax.set_xticks(range(len(methods)))
            ax.set_xticklabels([SHORT_LABELS[m] for m in methods], rotation=30, fontsize=8)
            ax.set_title(f'{subset}' + (' (realistic)' if subset in REALISTIC else ''), fontsize=9)
            ax.set_ylabel(label, fontsize=8)
            ax.grid(axis='y', alpha=0.3)
    fig.suptitle('Held-aside photos: mean ± std over seeds (bars), one dot per seed', fontsize=10)
    fig.tight_layout()
    fig.savefig(path)


def ablation_plot(table, variants, path):
    """Fine-tune variant minus control (mean ± std over seeds) per realistic set, validation and held-aside."""
    fig = new_figure(width=11, height=6.5)
    axes = fig.subplots(2, 2, squeeze=False)
    names = list(variants)
    for row, split in enumerate(('val', 'test')):
        for col, (metric, label) in enumerate((('ssim_y', 'Δ SSIM-Y vs control'), ('psnr_y', 'Δ PSNR-Y vs control'))):
            ax = axes[row][col]
            for k, subset in enumerate(REALISTIC):
                stats = [difference(table, split, subset, f'sr_{v}', 'sr_control', metric)[:2] for v in names]
                ax.errorbar(np.arange(len(names)) + 0.08 * (k - 1), [m for m, _ in stats], yerr=[s for _, s in stats],
                            fmt='o', capsize=4, label=subset)
            ax.axhline(0, color='0.6', lw=0.8)
            ax.set_xticks(range(len(names)))
            ax.set_xticklabels(names, rotation=20, fontsize=8)
            ax.set_title(f'{"validation parts" if split == "val" else "held-aside photos"}: {label}', fontsize=9)
            ax.grid(axis='y', alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
