"""Speed of :func:`undersr.resize.imresize` against BasicSR's NumPy ``imresize`` looped over a batch.

The workload is the paper's clean-LR step (§3: HR → bicubic ×4): a batch of HR crops downscaled by 4 with
MATLAB's bicubic. Prints machine information, timings (best and median of several repeats) and the speed-up, and
checks that both give the same numbers. Nothing is asserted about speed.

Usage::

    python benchmarks/bench_resize.py            # batch of 16 256×256 → 64×64, 20 repeats
    python benchmarks/bench_resize.py --smoke    # a few seconds: 3 repeats
    python benchmarks/bench_resize.py --device cuda --batch 64
"""
import argparse
import statistics
import sys

from undersr.resize import imresize

import numpy as np
import torch
from common import machine_info, timings


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--smoke', action='store_true', help='few repeats, finishes in a few seconds')
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--size', type=int, default=256, help='HR height and width')
    parser.add_argument('--scale', type=int, default=4, help='downscale factor')
    parser.add_argument('--repeats', type=int, default=None, help='timed runs (default 20, 3 with --smoke)')
    parser.add_argument('--device', default='cpu', help='device of the torch batch, e.g. cpu or cuda')
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.smoke else 20)
    device = torch.device(args.device)

    # BasicSR's package import is slow (it registers every dataset and model), so it is not timed.
    from basicsr.utils.matlab_functions import imresize as numpy_imresize

    rng = np.random.default_rng(0)
    images = rng.random((args.batch, args.size, args.size, 3), dtype=np.float32)  # (N, H, W, C) in [0, 1]
    batch = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device)  # (N, C, H, W)
    scale = 1 / args.scale
    numpy_times = timings(lambda: [numpy_imresize(img, scale) for img in images], 'cpu', repeats)
    torch_times = timings(lambda: imresize(batch, scale), device, repeats)

    reference = np.stack([numpy_imresize(img, scale) for img in images])  # (N, h, w, C)
    ours = imresize(batch, scale).permute(0, 2, 3, 1).cpu().numpy()
    max_diff = float(np.abs(reference - ours).max())

    out = args.size // args.scale
    print(f'{machine_info(device)}, numpy {np.__version__}')
    print(f'workload: {args.batch} × 3 × {args.size}² → {out}² (bicubic ×1/{args.scale}), {repeats} repeats')
    for name, times in (('numpy imresize loop', numpy_times), ('torch imresize batch', torch_times)):
        print(f'{name:>22}: best {times[0] * 1e3:8.2f} ms, median {statistics.median(times) * 1e3:8.2f} ms, '
              f'{args.batch / times[0]:9.1f} images/s')
    print(f'speed-up (best / best): {numpy_times[0] / torch_times[0]:.1f}×, '
          f'(median / median): {statistics.median(numpy_times) / statistics.median(torch_times):.1f}×')
    print(f'max |torch - numpy|: {max_diff:.2e}')
    print(f'summary ({device}, {args.batch} x {args.size}² -> {out}²): torch batch '
          f'{args.batch / statistics.median(torch_times):.1f} images/s, numpy loop '
          f'{args.batch / statistics.median(numpy_times):.1f} images/s, speed-up '
          f'{statistics.median(numpy_times) / statistics.median(torch_times):.1f}x')
    return 0


if __name__ == '__main__':
    sys.exit(main())
