"""Degraded-LR throughput: undertrained reconstruction (ours) against Real-ESRGAN's second-order pipeline.

All methods turn the same HR patches (photos, 256² by default, batches of 16) into ×4 LR on the same device:

* ours: each reconstruction network through :class:`undersr.degrade.Degrader` with its defaults (bicubic ×4, then
  the network; paper-scale configurations with random weights, saved and loaded as checkpoints);
* shipped: Real-ESRGAN as BasicSR 1.4.2 ships it, with the options of the official ``train_realesrgan_x4plus.yml``:
  the per-sample kernels of ``RealESRGANDataset`` plus ``RealESRGANModel.feed_data`` (training-pair pool full, as
  in steady state). Decoding and cropping are left out on both sides;
* tuned: the same pipeline with the faster, equivalent parts of ``benchmarks/realesrgan_pipeline.py``; the
  outputs of all five tunings together are compared with the shipped ones from the same seeds and the difference
  is printed. ``--breakdown`` adds the tunings one at a time.

Throughput is HR patches per second (median of ``--repeats`` calls after a warm-up; a network slower than 10 s per
batch is timed once). Nothing is asserted about speed.

Usage::

    python benchmarks/bench_generate.py                       # all five networks, shipped and tuned Real-ESRGAN
    python benchmarks/bench_generate.py --models VQVAE2 --variants --breakdown
    python benchmarks/bench_generate.py --device cuda --batch-size 64
    python benchmarks/bench_generate.py --smoke               # tiny networks, a few patches: seconds
"""
import argparse
import contextlib
import sys
import tempfile
import time

import torch
from common import (
    RECON_MODELS,
    default_device,
    fmt_rate,
    hr_batch,
    machine_info,
    save_recon_checkpoint,
    seconds_per_call,
)

SLOW_CALL_S = 10.0  # a first call slower than this is the measurement (no further repeats)


def patches_per_second(fn, batch, device, repeats):
    """HR patches per second of ``fn`` (one call degrades ``batch`` patches), and the number of timed calls."""
    start = time.perf_counter()
    fn()  # warm-up, and the measurement for very slow methods
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)
    first = time.perf_counter() - start
    if first > SLOW_CALL_S:
        return batch / first, 1
    return batch / seconds_per_call(fn, device, repeats=repeats, warmup=0), repeats


def degrader_rate(path, hr, args, **options):
    """Patches/s of a :class:`Degrader` on ``hr`` (bicubic step included)."""
    from undersr.degrade import Degrader
    degrader = Degrader([path], scale=args.scale, device=args.device, **options)
    seeds = list(range(len(hr)))
    return patches_per_second(lambda: degrader(hr, seeds), len(hr), args.device, args.repeats)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default=default_device())
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--size', type=int, default=256, help='HR patch size (default: %(default)s)')
    parser.add_argument('--scale', type=int, default=4)
    parser.add_argument('--repeats', type=int, default=5, help='timed calls per method (default: %(default)s)')
    parser.add_argument('--models', nargs='+', default=RECON_MODELS, choices=RECON_MODELS)
    parser.add_argument('--variants', action='store_true',
                        help='also time the first model with channels_last off/on, bf16 autocast and torch.compile')
    parser.add_argument('--breakdown', action='store_true', help='time the tuned pipeline one tuning at a time')
    parser.add_argument('--smoke', action='store_true', help='tiny networks, 2 patches of 64²: seconds')
    args = parser.parse_args(argv)
    if args.smoke:
        args.batch_size, args.size, args.repeats = 2, 64, 1

    import realesrgan_pipeline as rp

    print(machine_info(args.device))
    print(f'workload: {args.batch_size} HR patches of {args.size}² -> {args.size // args.scale}² LR per call, '
          f'{args.repeats} timed calls after a warm-up')
    hr = hr_batch(args.batch_size, args.size, args.device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            path = save_recon_checkpoint(tmp, name, tiny=args.smoke)
            rate, calls = degrader_rate(path, hr, args)
            rows.append((f'ours: {name} (Degrader defaults)', rate, calls))
            print(f'  {rows[-1][0]:<48} {fmt_rate(rate):>9} patches/s', flush=True)

        if args.variants:
            name = args.models[0]
            path = save_recon_checkpoint(tmp, name, tiny=args.smoke)
            variants = [('channels_last=False', dict(channels_last=False)),
                        ('channels_last=True', dict(channels_last=True)), ('amp=bf16', dict(amp='bf16'))]
            if torch.device(args.device).type == 'cuda':
                variants.append(('amp=fp16', dict(amp='fp16')))
            variants.append(('compile=True', dict(compile=True)))
            for label, options in variants:
                try:
                    rate, calls = degrader_rate(path, hr, args, **options)
                except Exception as err:  # e.g. no C++ compiler for torch.compile on the CPU
                    print(f'  variant {name} {label}: failed ({type(err).__name__}: {err})')
                    continue
                print(f'  variant {name} {label:<28} {fmt_rate(rate):>9} patches/s', flush=True)

        shipped = rp.build_model(args.device, args.batch_size, tmp, gt_size=args.size)
        tuned_model = rp.build_model(args.device, args.batch_size, tmp, gt_size=args.size)
        equivalence = rp.compare_pipelines(shipped, tuned_model, hr, steps=1 if args.smoke else 2)
        sampler = rp.KernelSampler()
        default = rp.DEFAULT_TUNINGS
        configurations = [('Real-ESRGAN shipped (BasicSR 1.4.2)', shipped, ())]
        if args.breakdown:
            configurations += [(f'  shipped + {"+".join(default[:i])}', tuned_model, default[:i])
                               for i in range(1, len(default))]
        configurations.append((f'Real-ESRGAN tuned ({"+".join(default)})', tuned_model, default))
        if args.breakdown:
            configurations += [(f'  tuned + {part}', tuned_model, default + (part,))
                               for part in rp.TUNINGS if part not in default]
        for label, model, parts in configurations:
            rp.fill_pool(model, hr.shape)
            rp.seed_everything(0)
            with rp.tuned(model, parts) if parts else contextlib.nullcontext():
                rate, calls = patches_per_second(lambda: rp.shipped_step(model, sampler, hr), len(hr), args.device,
                                                 args.repeats)
            rows.append((label, rate, calls))
            print(f'  {label:<48} {fmt_rate(rate):>9} patches/s', flush=True)

    ours = rows[0][1]
    shipped_rate = next(r for label, r, _ in rows if label.startswith('Real-ESRGAN shipped'))
    tuned_rate = next(r for label, r, _ in rows if label.startswith('Real-ESRGAN tuned'))
    print()
    print(f'{"method":<50}{"patches/s":>11}{"ms/patch":>10}{"calls":>7}{"ours/this":>11}')
    for label, rate, calls in rows:
        print(f'{label:<50}{fmt_rate(rate):>11}{1e3 / rate:>10.2f}{calls:>7}{ours / rate:>10.1f}x')
    print(f'tuned vs shipped output (same seeds, {args.batch_size} patches x {1 if args.smoke else 2} steps): '
          f'max |diff| {equivalence["max_abs"]:.3g} ({equivalence["max_levels"]} levels of 1/255, '
          f'{equivalence["fraction_changed"]:.2%} of values differ); pairs handed to training identical: '
          f'{equivalence["pool_identical"]}')
    print(f'summary ({args.device}, {args.size}² HR, batch {args.batch_size}): {args.models[0]} {fmt_rate(ours)} '
          f'patches/s, Real-ESRGAN shipped {fmt_rate(shipped_rate)}, tuned {fmt_rate(tuned_rate)}; '
          f'ours/shipped {ours / shipped_rate:.1f}x, ours/tuned {ours / tuned_rate:.1f}x')
    return 0


if __name__ == '__main__':
    sys.exit(main())
