"""Time and peak memory of ``undersr generate`` over HR sizes and batch sizes, against network-only throughput.

Each setting runs in its own Python process (so peak memory is that setting's alone) on a few photo patches
written as PNGs (``2 x batch``, at least 4), with the default VQ-VAE-2 (random weights) and the default options
of ``undersr generate`` (2 decode threads, LMDB output, ΔE on every 10th sample). The process reports:

* ``gen img/s``: the rate ``undersr generate`` prints for its compute loop (decode in its threads, bicubic +
  network, PNG encode and staging writes, overlapped), and ``total s``, the whole command (model loading, worker
  start-up and the LMDB build included);
* ``net img/s``: the :class:`undersr.degrade.Degrader` alone (bicubic + network) on decoded tensors of the same size
  and batch, in the same process after the command, with torch's default thread count;
* ``gen/net``: the first over the second (target: at least 50 %);
* peak memory: the maximum resident set size of the process (``getrusage``; decoding runs in its threads), on
  CUDA also ``torch.cuda.max_memory_allocated``.

Usage::

    python benchmarks/bench_scaling.py                                  # sizes 256 512 1024 x batches 1..32
    python benchmarks/bench_scaling.py --sizes 1024 --batches 8 --device cuda
    python benchmarks/bench_scaling.py --smoke                          # 2 small settings
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

from common import ROOT, default_device, machine_info

# Runs in a fresh interpreter per setting: argv = [json options]; prints one JSON line prefixed by RESULT.
RUNNER = r'''
import json, os, re, resource, sys, time, contextlib, io
opt = json.loads(sys.argv[1])
sys.path.insert(0, opt['bench_dir'])
import common  # noqa: F401  (undersr importable)
import torch
from undersr.generate import main as generate
device = torch.device(opt['device'])
args = ['--hr', opt['hr'], '--recon', opt['recon'], '--out', opt['out'], '--batch-size', str(opt['batch']),
        '--device', device.type]
if device.type == 'cuda' and device.index is not None:
    torch.cuda.set_device(device)
buffer = io.StringIO()
start = time.perf_counter()
with contextlib.redirect_stdout(buffer):
    generate(args)
total = time.perf_counter() - start
text = buffer.getvalue()
match = re.search(r'\(([0-9.]+) img/s\)', text)
result = {'total_s': total, 'gen_rate': float(match.group(1)) if match else None,
          'rss_self_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
if device.type == 'cuda':
    result['cuda_peak_mb'] = torch.cuda.max_memory_allocated(device) / 2 ** 20
if opt['network']:
    from common import hr_batch, seconds_per_call
    from undersr.degrade import Degrader
    degrader = Degrader([opt['recon']], device=device)
    hr = hr_batch(opt['batch'], opt['size'], device)
    seeds = list(range(opt['batch']))
    seconds = seconds_per_call(lambda: degrader(hr, seeds), device, repeats=opt['repeats'])
    result['net_rate'] = opt['batch'] / seconds
print('RESULT ' + json.dumps(result))
'''


def run_setting(tmp, size, batch, args, recon):
    """Runs one setting in a subprocess; returns its result dict."""
    from common import write_hr_images
    count = args.images or max(4, 2 * batch)
    hr = os.path.join(tmp, f'hr_{size}_{count}')
    if not os.path.isdir(hr):
        write_hr_images(hr, count, size)
    opt = {'bench_dir': os.path.dirname(os.path.abspath(__file__)), 'hr': hr, 'recon': recon, 'size': size,
           'batch': batch, 'device': args.device, 'out': os.path.join(tmp, f'out_{size}_{batch}'),
           'network': not args.no_network, 'repeats': args.repeats}
    proc = subprocess.run([sys.executable, '-c', RUNNER, json.dumps(opt)], capture_output=True, text=True,
                          cwd=ROOT, env=dict(os.environ, PYTHONUNBUFFERED='1'))
    lines = [line for line in proc.stdout.splitlines() if line.startswith('RESULT ')]
    if proc.returncode or not lines:
        raise RuntimeError(f'setting {size}² batch {batch} failed ({proc.returncode}):\n{proc.stderr[-3000:]}')
    result = json.loads(lines[-1][len('RESULT '):])
    result['count'] = count
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default=default_device())
    parser.add_argument('--sizes', type=int, nargs='+', default=[256, 512, 1024], help='HR sides')
    parser.add_argument('--batches', type=int, nargs='+', default=[1, 2, 4, 8, 16, 32])
    parser.add_argument('--images', type=int, help='images per setting (default: 2 x batch, at least 4)')
    parser.add_argument('--repeats', type=int, default=3, help='timed calls of the network-only measurement')
    parser.add_argument('--no-network', action='store_true', help='skip the network-only measurement')
    parser.add_argument('--tiny', action='store_true',
                        help='a tiny VQ-VAE-2 (almost free): what decoding, encoding and writing alone allow')
    parser.add_argument('--smoke', action='store_true', help='tiny network, 2 settings of 64²: seconds')
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes, args.batches, args.repeats = [64], [1, 2], 1

    from common import save_recon_checkpoint
    print(machine_info(args.device))
    print('each setting: a fresh process running `undersr generate` (defaults: 2 decode threads, LMDB) on '
          '2 x batch photos (at least 4), then the Degrader alone on the same batch')
    header = (f'{"HR":>6}{"batch":>7}{"images":>8}{"total s":>9}{"gen img/s":>11}{"net img/s":>11}{"gen/net":>9}'
              f'{"RSS MiB":>9}')
    if args.device.startswith('cuda'):
        header += f'{"CUDA MiB":>10}'
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        recon = save_recon_checkpoint(tmp, 'VQVAE2', tiny=args.smoke or args.tiny)
        print(header)
        for size in args.sizes:
            for batch in args.batches:
                r = run_setting(tmp, size, batch, args, recon)
                ratio = r['gen_rate'] / r['net_rate'] if r.get('net_rate') and r['gen_rate'] else None
                line = (f'{size:>6}{batch:>7}{r["count"]:>8}{r["total_s"]:>9.2f}{r["gen_rate"] or 0:>11.2f}'
                        f'{r.get("net_rate", 0):>11.2f}{(f"{ratio:.0%}" if ratio else "-"):>9}'
                        f'{r["rss_self_mb"]:>9.0f}')
                if 'cuda_peak_mb' in r:
                    line += f'{r["cuda_peak_mb"]:>10.0f}'
                print(line, flush=True)
                rows.append((size, batch, r, ratio))
    ratios = [ratio for *_, ratio in rows if ratio]
    best = max(rows, key=lambda row: row[2]['gen_rate'] or 0)
    peak = max(rows, key=lambda row: row[2]['rss_self_mb'])
    print(f'summary ({args.device}): best generate rate {best[2]["gen_rate"]:.2f} img/s at {best[0]}² batch '
          f'{best[1]}; gen/net {min(ratios):.0%}..{max(ratios):.0%}' if ratios else
          f'summary ({args.device}): best generate rate {best[2]["gen_rate"]:.2f} img/s at {best[0]}² batch {best[1]}',
          end='')
    print(f'; peak RSS {peak[2]["rss_self_mb"]:.0f} MiB at {peak[0]}² batch {peak[1]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
