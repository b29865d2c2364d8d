"""Read throughput of ``undersr generate`` pairs: LMDB against a folder of PNGs, through BasicSR's FileClient.

The same pairs are made once with ``undersr generate --format lmdb`` and once with ``--format folder`` (photo
patches, a tiny reconstruction network: the network does not matter here), then every pair is read as BasicSR's
``PairedImageDataset`` reads it: ``FileClient.get`` of the HR and the LR bytes, then ``imfrombytes`` (PNG decode to
float32). Files were just written, so both are read from the page cache (dropping it needs root); the figures are
the CPU cost of reading, not of a cold disk. Prints pairs/s for bytes only and for bytes + decode, and the ratio.

``--fsync`` measures the writing side instead: the wall time of ``undersr generate`` (same pairs, both formats,
in this process) with its fsync calls on (the default) and off (``UNDERSR_FSYNC=0``, which exists for this
measurement only), alternating on/off ``--repeats`` times per format into new folders under ``--dir``. Prints the
fastest and the median wall time, pairs/s of the fastest run, the ``os.fsync`` calls of one run and the seconds
spent in them (median; LMDB syncs its file itself, outside these), the cost of fsync in % of the fastest wall time
(the least disturbed by other processes), and whether both settings wrote the same bytes.

Usage::

    python benchmarks/bench_io.py                  # 64 pairs of 512² HR / 128² LR, 5 passes
    python benchmarks/bench_io.py --count 256 --size 1024
    python benchmarks/bench_io.py --fsync --count 32 --size 256 --repeats 5 --dir /data   # what fsync costs there
    python benchmarks/bench_io.py --smoke
"""
import argparse
import contextlib
import hashlib
import io
import os
import statistics
import sys
import tempfile
import threading
import time
from unittest import mock

from common import fmt_rate, machine_info, save_recon_checkpoint, seconds_per_call, write_hr_images


def make_pairs(tmp, count, size, fmt, out=None):
    """Runs ``undersr generate`` into ``out`` (default ``tmp/pairs_<fmt>``); returns the output folder."""
    from undersr.generate import main as generate
    hr = os.path.join(tmp, 'hr')
    if not os.path.isdir(hr):
        write_hr_images(hr, count, size)
    recon = os.path.join(tmp, 'VQVAE2.pth')
    if not os.path.isfile(recon):
        save_recon_checkpoint(tmp, 'VQVAE2', tiny=True)
    out = out or os.path.join(tmp, f'pairs_{fmt}')
    generate(['--hr', hr, '--recon', recon, '--out', out, '--format', fmt, '--device', 'cpu', '--workers', '0',
              '--delta-e-every', '0'])
    return out


def readers(out, fmt):
    """A FileClient for the pairs in ``out`` and the (gt, lq) locations of every pair, as BasicSR addresses them."""
    from basicsr.utils import FileClient
    if fmt == 'lmdb':
        client = FileClient('lmdb', db_paths=[os.path.join(out, 'gt.lmdb'), os.path.join(out, 'lq.lmdb')],
                            client_keys=['gt', 'lq'])
        with open(os.path.join(out, 'gt.lmdb', 'meta_info.txt')) as f:
            keys = [line.split('.')[0] for line in f]
        return client, [(k, k) for k in keys]
    client = FileClient('disk')
    names = sorted(os.listdir(os.path.join(out, 'gt')))
    return client, [(os.path.join(out, 'gt', n), os.path.join(out, 'lq', n)) for n in names]


def read_all(client, pairs, decode):
    """Reads (and decodes) every pair once; returns the bytes read."""
    from basicsr.utils import imfrombytes
    total = 0
    for gt_path, lq_path in pairs:
        gt_bytes, lq_bytes = client.get(gt_path, 'gt'), client.get(lq_path, 'lq')
        total += len(gt_bytes) + len(lq_bytes)
        if decode:
            imfrombytes(gt_bytes, float32=True)
            imfrombytes(lq_bytes, float32=True)
    return total


def output_digests(out):
    """SHA-256 of every file under ``out``, by relative path."""
    digests = {}
    for folder, _, names in os.walk(out):
        for name in names:
            with open(os.path.join(folder, name), 'rb') as f:
                digests[os.path.relpath(os.path.join(folder, name), out)] = hashlib.sha256(f.read()).hexdigest()
    return digests


class FsyncTimer:
    """Stands in for ``os.fsync``: calls it, counting the calls and the seconds spent in them (thread-safe)."""

    def __init__(self, fsync):
        self.fsync, self.calls, self.seconds, self.lock = fsync, 0, 0.0, threading.Lock()

    def __call__(self, fd):
        start = time.perf_counter()
        self.fsync(fd)
        with self.lock:
            self.calls += 1
            self.seconds += time.perf_counter() - start


def timed_generate(tmp, args, fmt, fsync, out):
    """One ``undersr generate`` into the new folder ``out``: wall seconds and the :class:`FsyncTimer`."""
    from undersr.fileio import FSYNC_ENV
    timer = FsyncTimer(os.fsync)
    with mock.patch.dict(os.environ, {FSYNC_ENV: '1' if fsync else '0'}), mock.patch('os.fsync', timer), \
            contextlib.redirect_stdout(io.StringIO()):
        start = time.perf_counter()
        make_pairs(tmp, args.count, args.size, fmt, out)
        return time.perf_counter() - start, timer


def write_cost(args, tmp):
    """Times ``undersr generate`` with fsync on and off (see the module docstring); prints the table and summary."""
    make_pairs(tmp, args.count, args.size, 'lmdb', os.path.join(tmp, 'warm-up'))  # inputs, imports, page cache
    print(f'{"format":<8}{"fsync":<7}{"min s":>7}{"median s":>10}{"pairs/s":>9}{"fsync calls":>13}'
          f'{"s in fsync":>12}  all runs (s)')
    overhead, identical = {}, True
    for fmt in ('lmdb', 'folder'):
        runs = {True: [], False: []}
        for run in range(args.repeats):
            for fsync in (True, False):
                runs[fsync].append(timed_generate(tmp, args, fmt, fsync, os.path.join(tmp, f'{fmt}_{fsync}_{run}')))
        identical &= output_digests(os.path.join(tmp, f'{fmt}_True_0')) == output_digests(
            os.path.join(tmp, f'{fmt}_False_0'))
        fastest = {fsync: min(took for took, _ in results) for fsync, results in runs.items()}
        overhead[fmt] = fastest[True] / fastest[False] - 1
        for fsync, results in runs.items():
            times = [took for took, _ in results]
            print(f'{fmt:<8}{"on" if fsync else "off":<7}{fastest[fsync]:>7.2f}{statistics.median(times):>10.2f}'
                  f'{fmt_rate(args.count / fastest[fsync]):>9}{results[0][1].calls:>13}'
                  f'{statistics.median(t.seconds for _, t in results):>12.3f}  {" ".join(f"{t:.2f}" for t in times)}',
                  flush=True)
    print(f'summary ({args.count} pairs of {args.size}² HR, {args.repeats} runs each, fastest runs): fsync adds '
          f'{overhead["lmdb"]:+.1%} (lmdb) and {overhead["folder"]:+.1%} (folder) to the wall time of undersr '
          f'generate; same bytes with and without: {identical}')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--count', type=int, default=64, help='pairs (default: %(default)s)')
    parser.add_argument('--size', type=int, default=512, help='HR side (default: %(default)s)')
    parser.add_argument('--repeats', type=int, default=5, help='timed passes over all pairs (--fsync: runs)')
    parser.add_argument('--fsync', action='store_true', help='time writing with fsync on and off instead of reading')
    parser.add_argument('--dir', help='where the temporary files go (default: the system temporary folder)')
    parser.add_argument('--smoke', action='store_true', help='8 pairs of 64²: seconds')
    args = parser.parse_args(argv)
    if args.smoke:
        args.count, args.size, args.repeats = 8, 64, 1
    import cv2
    cv2.setNumThreads(1)  # as in BasicSR's DataLoader workers: one decode per process

    print(machine_info('cpu'))
    if args.fsync:
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            print(f'workload: undersr generate of {args.count} pairs of {args.size}² HR / {args.size // 4}² LR PNG '
                  f'into {tmp}, fsync on and off alternating, {args.repeats} runs each per format')
            write_cost(args, tmp)
        return 0
    print(f'workload: {args.count} pairs of {args.size}² HR / {args.size // 4}² LR PNG, read {args.repeats} times '
          '(page cache warm)')
    rates = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for fmt in ('lmdb', 'folder'):
            out = make_pairs(tmp, args.count, args.size, fmt)
            client, pairs = readers(out, fmt)
            nbytes = read_all(client, pairs, decode=False)  # warm-up, and opens the LMDB environments
            raw = seconds_per_call(lambda: read_all(client, pairs, False), 'cpu', repeats=args.repeats)
            decoded = seconds_per_call(lambda: read_all(client, pairs, True), 'cpu', repeats=args.repeats)
            rates[fmt] = (len(pairs) / raw, len(pairs) / decoded)
            print(f'  {fmt:<7} {len(pairs)} pairs, {nbytes / 2 ** 20:.1f} MiB: bytes only {fmt_rate(rates[fmt][0]):>8} '
                  f'pairs/s ({nbytes / raw / 2 ** 20:.0f} MiB/s), bytes + decode {fmt_rate(rates[fmt][1]):>7} pairs/s',
                  flush=True)
    raw_ratio = rates['lmdb'][0] / rates['folder'][0]
    ratio = rates['lmdb'][1] / rates['folder'][1]
    print(f'summary ({args.size}² HR pairs): LMDB {fmt_rate(rates["lmdb"][1])} pairs/s, folder '
          f'{fmt_rate(rates["folder"][1])} pairs/s with decode (LMDB/folder {ratio:.2f}x); bytes only LMDB/folder '
          f'{raw_ratio:.2f}x')
    return 0


if __name__ == '__main__':
    sys.exit(main())
