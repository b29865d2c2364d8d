"""Images per second of ``reconstruct`` for each reconstruction network at several sizes.

    python benchmarks/recon_speed.py [--device cuda] [--sizes 64 256 512] [--smoke]

Networks use their default (paper-scale) configuration; ``--smoke`` uses tiny ones and one small size, to check
that the script runs.
"""
import argparse
import sys

import undersr  # noqa: F401  (registers with BasicSR; first: the torchvision shim)

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from common import RECON_MODELS as MODELS
from common import TINY_CONFIGS as TINY
from common import default_device, machine_info, seconds_per_call


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default=default_device())
    parser.add_argument('--sizes', type=int, nargs='+', default=[64, 256, 512])
    parser.add_argument('--models', nargs='+', default=MODELS, choices=MODELS)
    parser.add_argument('--smoke', action='store_true', help='tiny networks, one 32² size: seconds')
    args = parser.parse_args(argv)
    sizes = [32] if args.smoke else args.sizes
    print(machine_info(args.device))
    print(f'{"model":<12}{"params":>10}' + ''.join(f'{f"{s}² img/s":>14}' for s in sizes))
    summary = []
    for name in args.models:
        net = ARCH_REGISTRY.get(name)(**(TINY[name] if args.smoke else {})).to(args.device).eval()
        params = sum(p.numel() for p in net.parameters())
        rates = []
        for size in sizes:
            x = torch.rand(1, 3, size, size, device=args.device)
            rates.append(1 / seconds_per_call(lambda: net.reconstruct(x), args.device, repeats=1 if args.smoke else 3))
        print(f'{name:<12}{params:>10,}' + ''.join(f'{r:>14.2f}' for r in rates))
        summary.append(f'{name} {rates[-1]:.2f}')
    print(f'summary ({args.device}, img/s at {sizes[-1]}²): ' + ', '.join(summary))


if __name__ == '__main__':
    sys.exit(main())
