"""Inference engine of ``undersr upscale``: our tiled path against ``realesrgan``'s ``RealESRGANer``, in one run.

Both engines super-resolve the same LR photo with the same network (Real-ESRGAN's SRVGGNetCompact in the size of
``realesr-general-x4v3``, random weights: speed, memory and tiling do not depend on them) and the same tiles
(``--tile``, each of ``--tile-pads``, ``pre_pad`` 0), from uint8 BGR in to uint8 BGR out:

- ``untiled``: our :class:`~undersr.upscale.engine.Upscaler` without tiles (the reference output);
- ``ours``: :func:`undersr.upscale.images.upscale_image` with an ``Upscaler`` (``tiled_forward``);
- ``realesrgan``: ``RealESRGANer(...).enhance``.

Each run is a fresh subprocess (so that its peak memory is its own), in the order untiled, then ours and
realesrgan for each tile pad, repeated ``--repeats`` times, each after a warm-up call on a 32² crop; times and peak
memory (growth of the process's peak RSS during the timed call) are medians over the repeats. Then two behaviours
of the two engines are checked with tiny networks: a dark 16-bit image, and a tile whose forward pass fails.

``realesrgan`` is not a dependency of undersr. Install it beside the environment, without its dependencies
(facexlib, gfpgan, numba are for face restoration and not used here)::

    pip install --no-deps --target /tmp/rgan_pkgs realesrgan==0.3.0
    python benchmarks/bench_upscale_engine.py --realesrgan-path /tmp/rgan_pkgs            # 256² LR, tiles of 128
    python benchmarks/bench_upscale_engine.py --realesrgan-path /tmp/rgan_pkgs --smoke    # seconds
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from undersr.upscale.engine import Upscaler
from undersr.upscale.images import upscale_image

import cv2
import numpy as np
import torch
from common import machine_info, photo_patches

ENGINES = ('untiled', 'ours', 'realesrgan')
RECEPTIVE_RADIUS = 34  # LR pixels: SRVGGNetCompact's 34 3×3 convolutions (32 + first + last) at LR resolution


def network(smoke):
    """Real-ESRGAN's SRVGGNetCompact ×4: 64 features, 32 convolutions (``realesr-general-x4v3``), or a tiny one."""
    from basicsr.archs.srvgg_arch import SRVGGNetCompact
    torch.manual_seed(0)
    return SRVGGNetCompact(num_feat=8 if smoke else 64, num_conv=2 if smoke else 32, upscale=4).eval()


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def realesrganer(net, path, tile, tile_pad):
    from realesrgan import RealESRGANer
    return RealESRGANer(scale=4, model_path=path, model=net, tile=tile, tile_pad=tile_pad, pre_pad=0, half=False,
                        device=torch.device('cpu'))


def child(args):
    """One timed run of one engine; prints a JSON line and writes its output image."""
    net = network(args.smoke)
    net.load_state_dict(torch.load(os.path.join(args.workdir, 'model.pth'))['params'])
    bgr = cv2.imread(os.path.join(args.workdir, 'lr.png'))
    if args.child == 'realesrgan':
        engine = realesrganer(net, os.path.join(args.workdir, 'model.pth'), args.tile, args.tile_pad)
        run = lambda image: engine.enhance(image)[0]  # noqa: E731
    else:
        tile = None if args.child == 'untiled' else args.tile
        engine = Upscaler(net, 4, 'bench', torch.device('cpu'), tile_size=tile, tile_pad=args.tile_pad, pre_pad=0)
        run = lambda image: upscale_image(image, engine, 4)  # noqa: E731
    run(bgr[:32, :32])  # warm-up: first-call costs of torch and OpenCV
    before = peak_rss_mb()
    start = time.perf_counter()
    out = run(bgr)
    seconds = time.perf_counter() - start
    cv2.imwrite(os.path.join(args.workdir, f'out_{run_name(args.child, args.tile_pad)}_{args.rep}.png'), out)
    print(json.dumps({'seconds': seconds, 'peak_extra_mb': peak_rss_mb() - before}))


def run_name(engine, tile_pad):
    return engine if engine == 'untiled' else f'{engine}@pad{tile_pad}'


class FailsOnce(torch.nn.Module):
    """Wraps a network; its ``n``-th forward pass raises as an out-of-memory error would."""

    def __init__(self, net, n):
        super().__init__()
        self.net, self.n, self.calls = net, n, 0

    def forward(self, x):
        self.calls += 1
        if self.calls == self.n:
            raise RuntimeError('simulated: CUDA out of memory')
        return self.net(x)


def behaviours(workdir):
    """Dark 16-bit input and a failing tile, in both engines; returns lines of text."""
    import contextlib
    import io
    net = network(smoke=True)
    path = os.path.join(workdir, 'tiny.pth')
    torch.save({'params': net.state_dict()}, path)
    dark = np.full((16, 16, 3), 200, np.uint16)  # a dark 16-bit photo: every value below 256 of 65535
    with contextlib.redirect_stdout(io.StringIO()):
        theirs = realesrganer(net, path, 0, 0).enhance(dark)[0]
    ours = upscale_image(dark, Upscaler(net, 4, 'bench', torch.device('cpu'), pre_pad=0), 4)
    lines = [f'dark 16-bit input (all values 200 of 65535): realesrgan returns {theirs.dtype} (max {theirs.max()}), '
             f'ours {ours.dtype} (max {ours.max()})']
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8)
    printed = io.StringIO()
    engine = realesrganer(net, path, 16, 4)
    engine.model = FailsOnce(net, 2)  # after RealESRGANer loaded the weights into net
    with contextlib.redirect_stdout(printed):
        theirs = engine.enhance(image)[0]
    reference = upscale_image(image, Upscaler(net, 4, 'bench', torch.device('cpu'), pre_pad=0), 4)
    wrong = int(np.any(theirs != reference, axis=2).sum())
    error = next(line for line in printed.getvalue().splitlines() if line.startswith('Error'))
    try:
        upscale_image(image, Upscaler(FailsOnce(net, 2), 4, 'bench', torch.device('cpu'), tile_size=16, tile_pad=4,
                                      pre_pad=0), 4)
        ours = 'returns an image'
    except RuntimeError as err:
        ours = f'raises RuntimeError ({err})'
    lines.append(f'2nd of 4 tiles fails: realesrgan prints "{error[:60]}" and returns '
                 f'an image with {wrong} of {reference.shape[0] * reference.shape[1]} pixels wrong; ours {ours}')
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--smoke', action='store_true', help='tiny network and image: finishes in seconds')
    parser.add_argument('--size', type=int, default=256, help='LR side (default 256: a 1024² output)')
    parser.add_argument('--tile', type=int, default=128, help='tile side in LR pixels')
    parser.add_argument('--tile-pads', type=int, nargs='+', default=[10, RECEPTIVE_RADIUS],
                        help='contexts around each tile to measure (default: 10, the default of both engines, and '
                        f'{RECEPTIVE_RADIUS}, the network\'s receptive radius, where tiles must equal untiled)')
    parser.add_argument('--tile-pad', type=int, default=10, help=argparse.SUPPRESS)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--realesrgan-path', help='folder where realesrgan is installed (pip install --target)')
    parser.add_argument('--child', choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument('--workdir', help=argparse.SUPPRESS)
    parser.add_argument('--rep', type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.realesrgan_path:
        sys.path.insert(0, args.realesrgan_path)
    if args.child:
        return child(args)
    if args.smoke:
        args.size, args.tile, args.repeats, args.tile_pads = 32, 16, 1, [10, 4]
    try:
        import realesrgan  # noqa: F401
    except ImportError:
        raise SystemExit('realesrgan is not importable: pip install --no-deps --target /tmp/rgan_pkgs '
                         'realesrgan==0.3.0, then give --realesrgan-path /tmp/rgan_pkgs')
    with tempfile.TemporaryDirectory() as workdir:
        torch.save({'params': network(args.smoke).state_dict()}, os.path.join(workdir, 'model.pth'))
        cv2.imwrite(os.path.join(workdir, 'lr.png'), photo_patches(1, args.size)[0][..., ::-1])
        plan = [('untiled', 0)] + [(engine, pad) for pad in args.tile_pads for engine in ENGINES[1:]]
        runs = {run_name(*item): [] for item in plan}
        common = ['--workdir', workdir, '--tile', str(args.tile)]
        common += ['--smoke'] * args.smoke + ['--realesrgan-path', args.realesrgan_path] * bool(args.realesrgan_path)
        for rep in range(args.repeats):
            for engine, pad in plan:
                proc = subprocess.run([sys.executable, __file__, '--child', engine, '--tile-pad', str(pad), '--rep',
                                       str(rep), *common], capture_output=True, text=True, check=True)
                runs[run_name(engine, pad)].append(json.loads(proc.stdout.strip().splitlines()[-1]))
        outputs = {name: cv2.imread(os.path.join(workdir, f'out_{name}_0.png')).astype(int) for name in runs}
        checks = behaviours(workdir)
    n_params = sum(p.numel() for p in network(args.smoke).parameters())
    print(machine_info('cpu'))
    print(f'workload: SRVGGNetCompact x4 ({n_params / 1e6:.3f} M parameters, random weights), {args.size}² LR -> '
          f'{4 * args.size}² uint8, tiles of {args.tile} with tile_pad {args.tile_pads}, pre_pad 0, '
          f'{args.repeats} repeats (one subprocess each, engines interleaved)')
    seconds = {name: statistics.median(r['seconds'] for r in times) for name, times in runs.items()}
    for name, times in runs.items():
        diff = np.abs(outputs[name] - outputs['untiled'])
        each = ', '.join(f'{r["seconds"]:.3f}' for r in times)
        print(f'{name:>16}: median {seconds[name]:7.3f} s (all: {each}), peak extra memory '
              f'{statistics.median(r["peak_extra_mb"] for r in times):7.1f} MB, vs untiled: max '
              f'{diff.max()} levels, {np.any(diff > 0, axis=2).mean():.2%} of pixels differ')
    same = {pad: int(np.abs(outputs[f'ours@pad{pad}'] - outputs[f'realesrgan@pad{pad}']).max())
            for pad in args.tile_pads}
    print('ours vs realesrgan: ' + ', '.join(f'tile_pad {pad}: max {d} levels' for pad, d in same.items()))
    for line in checks:
        print(line)
    ratio = statistics.median(seconds[f'realesrgan@pad{pad}'] / seconds[f'ours@pad{pad}'] for pad in args.tile_pads)
    print(f'summary (cpu, {args.size}² -> {4 * args.size}², tile {args.tile}): time realesrgan / ours {ratio:.2f}, '
          f'outputs identical: {not any(same.values())}')


if __name__ == '__main__':
    main()
