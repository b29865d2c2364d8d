"""``undersr demo``: the paper's experiment in miniature, on photos that ship with scikit-image.

Steps (each a real run of the project's own pieces through BasicSR):

1. train VQ-VAE-2 on 64² patches of six training photos for a few epochs, keeping epoch checkpoints (§3.2);
2. ``undersr generate``: HR crops → bicubic ×4 → the last VQ-VAE-2 checkpoint → degraded LR (§3);
3. pre-train a small EDSR ×4 on plain bicubic pairs: a stand-in for official pre-trained weights;
4. from it, fine-tune (a) on the undertrained pairs and (b), the control, on bicubic LR of the *same* HR crops for
   the same number of iterations;
5. evaluate bicubic upsampling and the three networks on two held-aside photos degraded with a realistic pipeline
   that no training step saw (Gaussian blur, bicubic ×4, Gaussian noise, JPEG): PSNR/SSIM on Y and NIQE;
6. write ``DIR/report.md``, ``DIR/metrics.csv`` and ``DIR/comparison.png``.

Weights land in ``DIR/models/{recon_epN,sr_pretrained,sr_control,sr_finetuned}.pth`` (``params`` layout that
``test.py`` loads). The numbers are whatever this run measures; the held-aside images are fixed, never tuned.
"""
import csv
import os
import shutil
import time
from os import path as osp

from undersr import generate
from undersr.basicsr_fixes import run_pipeline
from undersr.device import resolve_device
from undersr.image_io import read_rgb, to_uint8
from undersr.resize import bicubic_downsample
from undersr.sample_data import center_crop, load
from undersr.visualize import image_grid, save_image
from undersr.weights import atomic_save, load_weights, read_checkpoint

import cv2
import numpy as np
import torch
import yaml
from basicsr.archs import build_network
from basicsr.metrics import calculate_niqe, calculate_psnr, calculate_ssim
from basicsr.train import train_pipeline

TRAIN_IMAGES = ('astronaut', 'coffee', 'rocket', 'immunohistochemistry', 'hubble_deep_field', 'retina')
TEST_IMAGES = ('chelsea', 'stereo_motorcycle')  # held aside: never seen by any training step
SCALE = 4

# Sizes of the full run (about 10 minutes on 2 CPU cores) and of --quick (under a minute, for tests).
FULL = dict(patches=2048, recon_epochs=8, recon_batch=16, recon_net={}, gen_crop=192, gen_crops=16,
            sr_net=dict(num_feat=32, num_block=4), pretrain_iters=1500, finetune_iters=500, sr_batch=8,
            sr_patch=96, test_crop=384)
QUICK = dict(patches=32, recon_epochs=2, recon_batch=8, recon_net=dict(hidden_channels=16, res_channels=8,
             num_res_blocks=1, num_embeddings=32, embedding_dim=8), gen_crop=96, gen_crops=2,
             sr_net=dict(num_feat=8, num_block=1), pretrain_iters=6, finetune_iters=4, sr_batch=4, sr_patch=48,
             test_crop=256)  # BasicSR's NIQE needs images of at least 256²


def to_bgr(rgb):
    return np.ascontiguousarray(rgb[..., ::-1])


def realistic_degradation(hr, seed):
    """Blur, bicubic ×4, noise and JPEG: a degradation unlike anything the demo trains on.

    Args:
        hr (ndarray): (H, W, 3) uint8 RGB, H and W divisible by 4.
        seed (int): Noise seed.

    Returns:
        ndarray: (H/4, W/4, 3) uint8 RGB.
    """
    blurred = cv2.GaussianBlur(hr, (0, 0), sigmaX=1.2)
    lr = bicubic_downsample(blurred, SCALE).astype(np.float32)
    lr += np.random.default_rng(seed).normal(0, 4, lr.shape)  # sigma 4 of 255
    ok, data = cv2.imencode('.jpg', to_bgr(to_uint8(lr / 255)),
                            [cv2.IMWRITE_JPEG_QUALITY, 70])
    return np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1])


def write_png(path, rgb):
    save_image(path, to_bgr(rgb))


def prepare_data(root, size):
    """Writes training patches, training HR photos and the held-aside test pairs under ``root``."""
    rng = np.random.default_rng(0)
    photos = {name: center_crop(load(name), 512, multiple=SCALE) for name in TRAIN_IMAGES}
    for name, image in photos.items():
        write_png(osp.join(root, 'train_hr', f'{name}.png'), image)
    # Tiny-ImageNet-like collection of small patches for the reconstruction network (paper §3.2).
    for i in range(size['patches']):
        image = photos[TRAIN_IMAGES[i % len(TRAIN_IMAGES)]]
        top, left = rng.integers(0, image.shape[0] - 64), rng.integers(0, image.shape[1] - 64)
        write_png(osp.join(root, 'patches', f'{i:05d}.png'), image[top:top + 64, left:left + 64])
    for i, name in enumerate(TEST_IMAGES):
        hr = center_crop(load(name), size['test_crop'], multiple=SCALE)
        write_png(osp.join(root, 'test', 'gt', f'{name}.png'), hr)
        write_png(osp.join(root, 'test', 'lq', f'{name}.png'), realistic_degradation(hr, seed=i))


def run_basicsr(out, opt):
    """Runs BasicSR's training pipeline on an option dict; experiments go to ``out/experiments/<name>``."""
    path = osp.join(out, 'options', f'{opt["name"]}.yml')
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    run_pipeline(train_pipeline, out, ['-opt', path])
    return osp.join(out, 'experiments', opt['name'], 'models')


def base_opt(name, model_type, num_gpu, network, train, datasets):
    return {'name': name, 'model_type': model_type, 'scale': SCALE if model_type != 'ReconstructionModel' else 1,
            'num_gpu': num_gpu, 'manual_seed': 0, 'datasets': datasets, 'network_g': network,
            'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None}, 'train': train,
            'logger': {'print_freq': 50, 'save_checkpoint_freq': 100000, 'use_tb_logger': False,
                       'wandb': {'project': None}},
            'dist_params': {'backend': 'nccl', 'port': 29500}}


def train_dataset(name, kind, **paths):
    return {'name': name, 'type': kind, 'io_backend': {'type': 'disk'}, 'use_hflip': True, 'use_rot': True,
            'num_worker_per_gpu': 0, 'dataset_enlarge_ratio': 1, 'prefetch_mode': None, **paths}


def sr_train(iters, lr):
    return {'ema_decay': 0, 'optim_g': {'type': 'Adam', 'lr': lr, 'weight_decay': 0, 'betas': [0.9, 0.99]},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [int(iters * 0.8)], 'gamma': 0.5},
            'total_iter': iters, 'warmup_iter': -1, 'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0}}


def export(src, dst):
    """Copies BasicSR's net_g file to ``dst`` with only the ``params`` layout."""
    atomic_save({'params': read_checkpoint(src)['params']}, dst)


def super_resolve(weights, network, lr, device):
    """Runs an SR network on one (H, W, 3) uint8 RGB image; returns (H*4, W*4, 3) uint8 RGB."""
    net = load_weights(build_network(dict(network)), weights).to(device).eval()
    x = torch.from_numpy(lr).permute(2, 0, 1)[None].float().div(255).to(device)
    with torch.inference_mode():
        y = net(x).clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy()
    return to_uint8(y)


def niqe(bgr):
    """BasicSR's NIQE on Y, or NaN where it is undefined (a flat image from a barely trained network)."""
    try:
        return float(calculate_niqe(bgr, SCALE, input_order='HWC', convert_to='y'))
    except np.linalg.LinAlgError:
        return float('nan')


def evaluate(root, models, network, device):
    """PSNR/SSIM (Y, crop 4) and NIQE of each method on the held-aside pairs; returns rows and output images."""
    rows, outputs = [], {}
    for name in TEST_IMAGES:
        hr = read_rgb(osp.join(root, 'test', 'gt', f'{name}.png'))
        lr = read_rgb(osp.join(root, 'test', 'lq', f'{name}.png'))
        results = {'bicubic': cv2.resize(lr, hr.shape[1::-1], interpolation=cv2.INTER_CUBIC)}
        results.update({label: super_resolve(path, network, lr, device) for label, path in models.items()})
        outputs[name] = (lr, results, hr)
        for method, sr in results.items():
            sr_bgr, hr_bgr = to_bgr(sr), to_bgr(hr)
            rows.append({'image': name, 'method': method,
                         'psnr_y': calculate_psnr(sr_bgr, hr_bgr, SCALE, test_y_channel=True),
                         'ssim_y': calculate_ssim(sr_bgr, hr_bgr, SCALE, test_y_channel=True),
                         'niqe': niqe(sr_bgr)})
    return rows, outputs


def summarise(rows):
    methods = list(dict.fromkeys(r['method'] for r in rows))
    return {m: {k: float(np.mean([r[k] for r in rows if r['method'] == m])) for k in ('psnr_y', 'ssim_y', 'niqe')}
            for m in methods}


def write_report(out, rows, outputs, recon_epochs, seconds, quick):
    with open(osp.join(out, 'metrics.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=['image', 'method', 'psnr_y', 'ssim_y', 'niqe'])
        writer.writeheader()
        writer.writerows(rows)
    grid = []
    for lr, results, hr in outputs.values():
        h, w = hr.shape[:2]
        top, left, size = h // 4, w // 4, min(h, w) // 2  # the same central crop of every column
        crop = (slice(top, top + size), slice(left, left + size))
        lr_crop = lr[top // SCALE:(top + size) // SCALE, left // SCALE:(left + size) // SCALE]
        grid.append([to_bgr(lr_crop)] + [to_bgr(results[m][crop]) for m in ('sr_pretrained', 'sr_control',
                                                                            'sr_finetuned')] + [to_bgr(hr[crop])])
    save_image(osp.join(out, 'comparison.png'),
               image_grid(grid, cell=192, labels=['LR (unseen degr.)', 'pre-trained', 'control', 'fine-tuned',
                                                  'HR']))
    means = summarise(rows)
    table = '\n'.join(f'| {m} | {v["psnr_y"]:.2f} | {v["ssim_y"]:.4f} | {v["niqe"]:.2f} |' for m, v in means.items())
    ft, ctrl = means['sr_finetuned'], means['sr_control']
    text = f"""# undersr demo{' (--quick)' if quick else ''}

The paper's experiment in miniature (arXiv 2503.02767), on photos bundled with scikit-image; {seconds / 60:.1f} min.

- Reconstruction network: VQ-VAE-2 trained {recon_epochs} epochs on 64² patches of {', '.join(TRAIN_IMAGES)}.
- Degraded pairs: `undersr generate` with its last checkpoint (`models/recon_ep{recon_epochs}.pth`).
- SR network: EDSR ×4 (small), pre-trained on bicubic pairs of the same photos (`models/sr_pretrained.pth`).
- Fine-tuned on the undertrained pairs (`models/sr_finetuned.pth`) and, as the control, on bicubic LR of the same
  HR crops for the same number of iterations (`models/sr_control.pth`).
- Test: {', '.join(TEST_IMAGES)}, never used for training, degraded by Gaussian blur (σ 1.2), bicubic ×4, Gaussian
  noise (σ 4/255) and JPEG (quality 70).

| method | PSNR-Y ↑ | SSIM-Y ↑ | NIQE ↓ |
|---|---|---|---|
{table}

Fine-tuned minus control: PSNR {ft['psnr_y'] - ctrl['psnr_y']:+.2f} dB, SSIM {ft['ssim_y'] - ctrl['ssim_y']:+.4f},
NIQE {ft['niqe'] - ctrl['niqe']:+.2f}. These are two small test images and a few minutes of CPU training: read
them as a check that the pipeline works end to end, not as a benchmark. Per-image values: `metrics.csv`.
Visual comparison: `comparison.png` (LR | pre-trained | control | fine-tuned | HR).
"""
    with open(osp.join(out, 'report.md'), 'w') as f:
        f.write(text)
    return means


def run(out, device='auto', quick=False):
    """Runs the whole demo into ``out``; returns the mean metrics per method."""
    start = time.time()
    size = QUICK if quick else FULL
    device = resolve_device(device)
    num_gpu = 1 if device.type == 'cuda' else 0
    out = osp.abspath(out)
    data, models = osp.join(out, 'data'), osp.join(out, 'models')
    os.makedirs(models, exist_ok=True)
    stage = lambda i, text: print(f'\n[{i}/6] {text}', flush=True)  # noqa: E731

    stage(1, 'preparing data and training VQ-VAE-2')
    prepare_data(data, size)
    epochs = size['recon_epochs']
    recon_epochs = sorted({max(1, epochs // 4), max(1, epochs // 2), epochs})
    recon_dir = run_basicsr(out, base_opt(
        'demo_recon_VQVAE2', 'ReconstructionModel', num_gpu, {'type': 'VQVAE2', **size['recon_net']},
        {'total_epochs': epochs, 'save_checkpoint_epochs': recon_epochs,
         'optim_g': {'type': 'Adam', 'lr': 1e-3, 'weight_decay': 0, 'betas': [0.9, 0.99]},
         'scheduler': {'type': 'MultiStepLR', 'milestones': [10 ** 8], 'gamma': 1.0}, 'warmup_iter': -1,
         },
        {'train': train_dataset('patches', 'ReconImageDataset', dataroot_gt=osp.join(data, 'patches'), gt_size=64,
                                batch_size_per_gpu=size['recon_batch'])}))
    for epoch in recon_epochs:
        shutil.copy(osp.join(recon_dir, f'net_g_ep{epoch}.pth'), osp.join(models, f'recon_ep{epoch}.pth'))

    stage(2, 'undersr generate: degraded pairs from the last VQ-VAE-2 checkpoint')
    pairs = osp.join(data, 'undertrained')
    generate.main(['--hr', osp.join(data, 'train_hr'), '--recon', osp.join(models, f'recon_ep{epochs}.pth'),
                   '--scale', str(SCALE), '--out', pairs, '--crop', str(size['gen_crop']), '--crops-per-image',
                   str(size['gen_crops']), '--format', 'folder', '--device', device.type, '--workers', '0'])
    control = osp.join(data, 'control')  # bicubic LR of exactly the same HR crops
    for name in sorted(os.listdir(osp.join(pairs, 'gt'))):
        hr = read_rgb(osp.join(pairs, 'gt', name))
        write_png(osp.join(control, 'gt', name), hr)
        write_png(osp.join(control, 'lq', name), bicubic_downsample(hr, SCALE))

    network = {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': SCALE, 'res_scale': 1,
               'img_range': 255., 'rgb_mean': [0.4488, 0.4371, 0.4040], **size['sr_net']}

    def sr_run(name, folder, iters, lr, pretrained=None):
        opt = base_opt(name, 'SRModel', num_gpu, network, sr_train(iters, lr), {
            'train': train_dataset(name, 'PairedImageDataset', dataroot_gt=osp.join(folder, 'gt'),
                                   dataroot_lq=osp.join(folder, 'lq'), gt_size=size['sr_patch'],
                                   batch_size_per_gpu=size['sr_batch'])})
        opt['path']['pretrain_network_g'] = pretrained
        return osp.join(run_basicsr(out, opt), 'net_g_latest.pth')

    stage(3, 'pre-training EDSR on bicubic pairs (stand-in for official weights)')
    export(sr_run('demo_sr_pretrain', control, size['pretrain_iters'], 2e-4), osp.join(models, 'sr_pretrained.pth'))
    pretrained = osp.join(models, 'sr_pretrained.pth')

    stage(4, 'fine-tuning on undertrained pairs, and the bicubic control')
    export(sr_run('demo_sr_finetune', pairs, size['finetune_iters'], 1e-4, pretrained),
           osp.join(models, 'sr_finetuned.pth'))
    export(sr_run('demo_sr_control', control, size['finetune_iters'], 1e-4, pretrained),
           osp.join(models, 'sr_control.pth'))

    stage(5, 'evaluating on held-aside photos with an unseen realistic degradation')
    rows, outputs = evaluate(data, {m: osp.join(models, f'{m}.pth') for m in ('sr_pretrained', 'sr_control',
                                                                             'sr_finetuned')}, network, device)
    stage(6, 'writing report.md, metrics.csv and comparison.png')
    means = write_report(out, rows, outputs, epochs, time.time() - start, quick)
    for method, values in means.items():
        print(f'{method:>14}: PSNR-Y {values["psnr_y"]:.2f}  SSIM-Y {values["ssim_y"]:.4f}  NIQE {values["niqe"]:.2f}')
    print(f'\nDone in {(time.time() - start) / 60:.1f} min: {osp.join(out, "report.md")}')
    return means
