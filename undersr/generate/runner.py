"""The main loop of ``undersr generate``: set up the processes, degrade and stage every chunk, finalise.

Chunk ``k`` (``--batch-size`` consecutive sample slots) is computed by rank ``k % world_size``; within a chunk,
samples of equal size are batched together. See "Determinism, sharding and resumption" and "Performance" in
docs/generate.md.
"""
import contextlib
import os
import shutil
import threading
import time
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from os import path as osp

from undersr.basicsr_fixes import destroy_dist, init_dist
from undersr.degrade import Degrader
from undersr.device import resolve_device
from undersr.fileio import durable_makedirs
from undersr.generate.compute import compute_chunk
from undersr.generate.errors import GenerateError
from undersr.generate.reader import ChunkReader, prefetch
from undersr.generate.samples import build_slots, chunk_slots, count_chunks, open_source
from undersr.generate.staging import MANIFEST, Staging, check_out, inspect_out, json_bytes, output_spec, read_json
from undersr.generate.writers import finalise, summary_line
from undersr.progress import progress

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Process:
    """This process's part in the run: its rank, the number of processes and its device."""
    rank: int
    world: int
    device: torch.device

    @classmethod
    def start(cls, device_choice):
        """Resolves ``--device`` and joins the process group when torchrun set ``WORLD_SIZE`` > 1.

        The group is initialised by :func:`undersr.basicsr_fixes.init_dist`: NCCL on ``cuda:LOCAL_RANK``, or
        gloo on the CPU.

        Raises:
            GenerateError: CUDA was asked for and is not available.
        """
        try:
            device = resolve_device(device_choice)
        except RuntimeError as err:
            raise GenerateError(str(err)) from err
        world = int(os.environ.get('WORLD_SIZE', '1'))
        if world <= 1:
            return cls(0, 1, device)
        if device.type == 'cuda':
            device = torch.device('cuda', int(os.environ.get('LOCAL_RANK', '0')))
        if not dist.is_initialized():
            init_dist('pytorch', 'nccl' if device.type == 'cuda' else 'gloo')
        return cls(dist.get_rank(), dist.get_world_size(), device)

    def barrier(self):
        """Waits for every process (nothing to wait for with one)."""
        if self.world > 1:
            if self.device.type == 'cuda':
                dist.barrier(device_ids=[self.device.index])
            else:
                dist.barrier()


def run(args):
    """Runs the command for parsed ``args`` (see :func:`undersr.cli.generate.parse_args`).

    Returns:
        dict | None: The manifest on rank 0; other ranks return ``None``.

    Raises:
        GenerateError: A problem the user can fix (bad arguments or inputs, a full disk).
    """
    proc = Process.start(args.device)
    try:
        return _run(args, proc)
    finally:
        if proc.world > 1:
            destroy_dist()


def _run(args, proc):
    source = open_source(args.hr, args.hr_root)
    check_out(args.out)
    spec = output_spec(args, source)
    staging = Staging(args.out)
    state = inspect_out(args.out, spec, staging)
    proc.barrier()  # every rank has looked before rank 0 changes anything
    if state == 'done':
        return _already_done(args.out, staging, proc.rank)
    try:
        degrader = Degrader(args.recon, args.recon_weights, args.scale, args.color_correct, proc.device,
                            amp=None if args.amp == 'none' else args.amp, strength=args.strength)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        raise GenerateError(str(err)) from err
    if proc.rank == 0:
        _start_staging(args.out, staging, spec, state)
    proc.barrier()

    slots = build_slots(source, args.crop, args.crops_per_image)
    with cpu_threads(proc, args.workers):
        made, elapsed = compute_chunks(args, proc, source, slots, staging, degrader)
    proc.barrier()
    if proc.rank != 0:
        return None
    manifest = finalise(args.out, staging, spec, degrader, count_chunks(slots, args.batch_size))
    rate = f'; {made} samples computed here in {elapsed:.1f} s ({made / max(elapsed, 1e-9):.1f} img/s)'
    print(summary_line(args.out, manifest, rate))
    return manifest


def _already_done(out, staging, rank):
    """Rerun of a finished command: the saved manifest on rank 0 (leftover staging removed), ``None`` elsewhere."""
    if rank != 0:
        return None
    manifest = read_json(osp.join(out, MANIFEST))
    shutil.rmtree(staging.root, ignore_errors=True)  # leftovers of a kill after the manifest
    print(summary_line(out, manifest, '; already complete, nothing to do'))
    return manifest


def _start_staging(out, staging, spec, state):
    """Creates ``.staging/chunks`` and records the arguments of a new run (rank 0 only)."""
    try:
        durable_makedirs(osp.join(staging.root, 'chunks'))
    except OSError as err:
        raise GenerateError(f'--out {out} cannot be created: {err}') from err
    if state == 'new' or not osp.isfile(staging.args_file):
        staging.save(staging.args_file, json_bytes(spec))


@contextlib.contextmanager
def cpu_threads(proc, workers):
    """On the CPU, unless ``OMP_NUM_THREADS`` is set, gives torch ``cores // processes - workers`` threads (>= 1).

    Oversubscribed OpenMP threads slow convolutions down many times, so each decode worker keeps a core.
    """
    threads = torch.get_num_threads()
    if proc.device.type == 'cpu' and 'OMP_NUM_THREADS' not in os.environ:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1
        torch.set_num_threads(max(1, cores // proc.world - workers))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class StagingWriter:
    """Writes computed chunks in threads, so a chunk is written while the next is computed.

    At most two chunks wait; :meth:`submit` raises the error of a failed write. Once a write has failed (e.g. a
    full disk) the run is ending: queued chunks are not written, so what is on disk does not depend on how far
    the other writer threads got. Leaving the ``with`` block waits for the queued writes (or cancels them after an
    error).

    Args:
        staging (Staging): Where to write.
        threads (int): Writer threads.
    """

    def __init__(self, staging, threads):
        self.staging = staging
        self.pool = ThreadPoolExecutor(max_workers=threads)
        self.pending = deque()
        self.failed = threading.Event()

    def submit(self, chunk, pairs, record):
        """Queues :meth:`Staging.write_chunk` of one chunk; raises the error of any finished, failed write."""
        self.pending.append(self.pool.submit(self._write, chunk, pairs, record))
        while len(self.pending) > 2 or (self.pending and self.pending[0].done()):
            self.pending.popleft().result()

    def _write(self, chunk, pairs, record):
        if self.failed.is_set():
            return
        try:
            self.staging.write_chunk(chunk, pairs, record)
        except BaseException:
            self.failed.set()
            raise

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        try:
            while exc_type is None and self.pending:
                self.pending.popleft().result()
        finally:
            for future in self.pending:
                future.cancel()
            self.pool.shutdown(wait=True)


def compute_chunks(args, proc, source, slots, staging, degrader):
    """Decodes, degrades and stages this rank's unfinished chunks (``k % world == rank``).

    Returns:
        tuple[int, float]: Samples computed and seconds taken.
    """
    todo = [k for k in range(proc.rank, count_chunks(slots, args.batch_size), proc.world)
            if not osp.isfile(staging.record_file(k))]
    reader = ChunkReader(source, todo, slots, args.batch_size, args.crop, args.scale, args.seed)
    bar = progress(total=sum(len(chunk_slots(slots, k, args.batch_size)) for k in todo), unit='img',
               desc=f'generate (rank 0 of {proc.world})' if proc.world > 1 else 'generate',
               disable=proc.rank != 0, dynamic_ncols=True)
    shown, start, made = set(), time.time(), 0
    try:
        with StagingWriter(staging, max(1, min(4, args.workers or 1))) as writer:
            for item in prefetch(reader.__getitem__, range(len(reader)), args.workers):
                for message in item['warnings'] + [f'skipping {s["file"]} (in {args.hr}): {s["reason"]}'
                                                   for s in item['skipped']]:
                    if message not in shown:
                        shown.add(message)
                        warnings.warn_explicit(message, UserWarning, 'undersr generate', 0)
                pairs, record = compute_chunk(degrader, item, proc.device, args.delta_e_every)
                writer.submit(item['chunk'], pairs, record)
                made += len(pairs)
                bar.update(len(chunk_slots(slots, item['chunk'], args.batch_size)))
    finally:
        bar.close()
    return made, time.time() - start
