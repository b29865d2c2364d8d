"""SR training step time with undertrained degradation made on the fly, against precomputed LMDB pairs.

Three ways to feed the same SR model, built with BasicSR's own ``build_dataset``, ``build_dataloader`` (with its
``EnlargedSampler``, as ``train.py`` does) and ``build_model``:

* ``workers``: ``UndertrainedDegradationDataset`` degrades every HR crop in the DataLoader workers (CPU, one thread
  each), the model is BasicSR's ``SRModel``;
* ``feed_data``: ``ReconImageDataset`` gives HR crops and ``UndertrainedSRModel.feed_data`` degrades the batch on
  the training device;
* ``lmdb``: ``PairedImageDataset`` over LMDB pairs made once, before timing, with ``undersr generate``.

The degradation uses the default (paper-scale) VQ-VAE-2 with random weights. The HR images are photo patches
(``--image-size``) from which the datasets crop ``--gt-size`` patches. A step is one batch: waiting for the loader,
``feed_data`` and ``optimize_parameters``; the median step of ``--iters`` steps after ``--warmup`` steps is
reported, with the overhead of each on-the-fly setting against ``lmdb``. The SR models are small enough for a CPU:
an EDSR with 32 features and 8 blocks, and a HAT-S shrunk to 48 channels and two groups of two blocks.

Usage::

    python benchmarks/bench_train_overhead.py                  # EDSR and HAT small, batch 8, 64² HR crops
    python benchmarks/bench_train_overhead.py --models EDSR --batch-size 16 --workers 4 --device cuda
    python benchmarks/bench_train_overhead.py --smoke
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

from common import default_device, machine_info, save_recon_checkpoint, write_hr_images

SR_NETWORKS = {
    'EDSR': {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 32, 'num_block': 8, 'upscale': 4,
             'res_scale': 1, 'img_range': 255., 'rgb_mean': [0.4488, 0.4371, 0.4040]},
    'HAT': {'type': 'HAT', 'upscale': 4, 'in_chans': 3, 'img_size': 16, 'window_size': 8, 'compress_ratio': 24,
            'squeeze_factor': 24, 'conv_scale': 0.01, 'overlap_ratio': 0.5, 'img_range': 1., 'depths': [2, 2],
            'embed_dim': 48, 'num_heads': [2, 2], 'mlp_ratio': 2, 'upsampler': 'pixelshuffle',
            'resi_connection': '1conv'},
}
TINY_NETWORKS = {
    'EDSR': dict(SR_NETWORKS['EDSR'], num_feat=8, num_block=1),
    'HAT': dict(SR_NETWORKS['HAT'], embed_dim=16, depths=[1], num_heads=[2], window_size=4, compress_ratio=4,
                squeeze_factor=4),
}
SETTINGS = ('lmdb', 'workers', 'feed_data')


def dataset_options(setting, data, args):
    """The ``datasets.train`` options of one setting."""
    common = {'name': setting, 'phase': 'train', 'scale': 4, 'gt_size': args.gt_size, 'use_hflip': True,
              'use_rot': False, 'batch_size_per_gpu': args.batch_size, 'num_worker_per_gpu': args.workers,
              'dataset_enlarge_ratio': 1}
    if setting == 'lmdb':
        return dict(common, type='PairedImageDataset', dataroot_gt=os.path.join(data['pairs'], 'gt.lmdb'),
                    dataroot_lq=os.path.join(data['pairs'], 'lq.lmdb'), io_backend={'type': 'lmdb'})
    if setting == 'workers':
        return dict(common, type='UndertrainedDegradationDataset', dataroot_gt=data['hr'],
                    io_backend={'type': 'disk'}, degradation={'recon': [data['recon']]})
    return dict(common, type='ReconImageDataset', dataroot_gt=data['hr'], io_backend={'type': 'disk'})


def model_options(setting, network, data, args, tmp):
    """The model options of one setting (``UndertrainedSRModel`` for ``feed_data``, else ``SRModel``)."""
    import torch
    opt = {'model_type': 'UndertrainedSRModel' if setting == 'feed_data' else 'SRModel', 'scale': 4,
           'num_gpu': 1 if torch.device(args.device).type == 'cuda' else 0, 'dist': False, 'is_train': True,
           'rank': 0, 'world_size': 1, 'network_g': dict(network),
           'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None,
                    'visualization': tmp, 'models': tmp, 'training_states': tmp},
           'train': {'ema_decay': 0, 'optim_g': {'type': 'Adam', 'lr': 1e-4},
                     'scheduler': {'type': 'MultiStepLR', 'milestones': [10 ** 6], 'gamma': 0.5},
                     'total_iter': 10 ** 6, 'pixel_opt': {'type': 'L1Loss'}}}
    if setting == 'feed_data':
        opt['degradation'] = {'recon': [data['recon']]}
    return opt


def step_times(setting, network, data, args, tmp):
    """Seconds of each timed training step of one setting."""
    import torch
    from basicsr.data import build_dataloader, build_dataset
    from basicsr.data.data_sampler import EnlargedSampler
    from basicsr.models import build_model

    dataset_opt = dataset_options(setting, data, args)
    dataset = build_dataset(dataset_opt)
    steps = args.warmup + args.iters
    ratio = -(-steps * args.batch_size // len(dataset)) + 1
    sampler = EnlargedSampler(dataset, 1, 0, ratio)
    loader = build_dataloader(dataset, dataset_opt, num_gpu=0, dist=False, sampler=sampler, seed=0)
    if torch.device(args.device).type == 'cuda' and torch.device(args.device).index is not None:
        torch.cuda.set_device(torch.device(args.device))  # BasicSR uses the current CUDA device
    model = build_model(model_options(setting, network, data, args, tmp))
    times = []
    iterator = iter(loader)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        batch = next(iterator)
        model.feed_data(batch)
        model.optimize_parameters(step)
        if model.device.type == 'cuda':
            torch.cuda.synchronize(model.device)
        now = time.perf_counter()
        if step > args.warmup:
            times.append(now - start)
        start = now
    del iterator
    return times


def degradation_cost(data, args):
    """Milliseconds per batch of the degradation alone: per-sample with one thread (as in a worker, minus the HR
    loading that ``ReconImageDataset`` also does) and batched with the training process's threads (``feed_data``).
    """
    from undersr.degrade import Degrader

    import torch
    from basicsr.data import build_dataset
    from common import hr_batch, seconds_per_call

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        otf = build_dataset(dataset_options('workers', data, args))
        plain = build_dataset(dataset_options('feed_data', data, args))
        items = range(args.batch_size)
        otf[0]  # builds the Degrader
        per_sample = (seconds_per_call(lambda: [otf[i] for i in items], 'cpu', repeats=5)
                      - seconds_per_call(lambda: [plain[i] for i in items], 'cpu', repeats=5))
    finally:
        torch.set_num_threads(threads)
    degrader = Degrader([data['recon']], device=args.device)
    hr = hr_batch(args.batch_size, args.gt_size, args.device)
    seeds = list(range(args.batch_size))
    batched = seconds_per_call(lambda: degrader(hr, seeds), args.device, repeats=10)
    return per_sample * 1e3, batched * 1e3


def prepare(tmp, args):
    """HR photos, the reconstruction checkpoint and the LMDB pairs made with ``undersr generate``."""
    from undersr.generate import main as generate

    import torch
    hr = write_hr_images(os.path.join(tmp, 'hr'), args.images, args.image_size)
    recon = save_recon_checkpoint(tmp, 'VQVAE2', tiny=args.smoke)
    pairs = os.path.join(tmp, 'pairs')
    device = torch.device(args.device).type  # generate takes cpu or cuda
    generate(['--hr', hr, '--recon', recon, '--out', pairs, '--format', 'lmdb', '--device', device,
              '--delta-e-every', '0', '--workers', '0'])
    return {'hr': hr, 'recon': recon, 'pairs': pairs}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default=default_device())
    parser.add_argument('--models', nargs='+', default=list(SR_NETWORKS), choices=list(SR_NETWORKS))
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--gt-size', type=int, default=64, help='HR crop side (default: %(default)s)')
    parser.add_argument('--image-size', type=int, default=128, help='side of the HR images (default: %(default)s)')
    parser.add_argument('--images', type=int, default=32, help='HR images (default: %(default)s)')
    parser.add_argument('--workers', type=int, default=2, help='DataLoader workers in every setting')
    parser.add_argument('--iters', type=int, default=30, help='timed steps per setting (default: %(default)s)')
    parser.add_argument('--warmup', type=int, default=5, help='untimed steps first (worker start-up)')
    parser.add_argument('--threads', type=int, help="torch threads of the training process (default: torch's)")
    parser.add_argument('--smoke', action='store_true', help='tiny networks, few steps: seconds')
    args = parser.parse_args(argv)
    if args.smoke:
        args.batch_size, args.gt_size, args.image_size, args.images = 2, 32, 32, 4
        args.iters, args.warmup, args.workers, args.models = 2, 1, 1, ['EDSR']

    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    print(machine_info(args.device))
    print(f'workload: batch {args.batch_size} of {args.gt_size}² HR crops from {args.images} photos of '
          f'{args.image_size}², {args.workers} DataLoader workers, {args.iters} timed steps after {args.warmup}')
    networks = TINY_NETWORKS if args.smoke else SR_NETWORKS
    summary = []
    with tempfile.TemporaryDirectory() as tmp:
        data = prepare(tmp, args)
        worker_ms, feed_ms = degradation_cost(data, args)
        print(f'degradation alone per batch: {worker_ms:.1f} ms of CPU in the workers (one sample at a time, 1 '
              f'thread), {feed_ms:.1f} ms in feed_data (the whole batch, {torch.get_num_threads()} threads)')
        print(f'{"model":<8}{"setting":<12}{"ms/step":>10}{"min ms":>9}{"overhead vs lmdb":>18}')
        for name in args.models:
            medians = {}
            for setting in SETTINGS:
                times = step_times(setting, networks[name], data, args, tmp)
                medians[setting] = statistics.median(times)
                overhead = (medians[setting] / medians['lmdb'] - 1) * 100
                print(f'{name:<8}{setting:<12}{medians[setting] * 1e3:>10.1f}{min(times) * 1e3:>9.1f}'
                      f'{overhead:>17.1f}%', flush=True)
            summary.append(f'{name} workers {(medians["workers"] / medians["lmdb"] - 1) * 100:+.1f}%, feed_data '
                           f'{(medians["feed_data"] / medians["lmdb"] - 1) * 100:+.1f}% '
                           f'(lmdb {medians["lmdb"] * 1e3:.0f} ms/step)')
    print(f'summary ({args.device}, overhead of on-the-fly degradation vs LMDB pairs): ' + '; '.join(summary))
    return 0


if __name__ == '__main__':
    sys.exit(main())
