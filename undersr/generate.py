"""``undersr generate``: (HR, degraded LR) training pairs made offline with undertrained reconstruction networks.

This is the data-generation step of arXiv 2503.02767: every HR image (or random crop of it) is downscaled with
MATLAB-compatible bicubic ×``scale`` and passed through an undertrained image-reconstruction network; the
imperfect reconstruction is the degraded LR that an SR model is fine-tuned on. All of the degradation is done by
:class:`undersr.degrade.Degrader`; this module reads, crops, shards, writes and resumes.

Usage:
    .. code-block:: bash

        undersr generate --hr datasets/DF2K/HR --recon experiments/.../net_g_ep2.pth --out datasets/DF2K_under
        python -m undersr.generate --hr ... --recon a.pth b.pth --recon-weights 3 1 --crop 1024 --out ...
        torchrun --nproc_per_node 4 -m undersr.generate --hr ... --recon ... --out ...   # 4 GPUs or processes

Arguments:
    ``--hr``: a folder tree of images, a BasicSR LMDB (``*.lmdb`` folder with ``data.mdb``) or a BasicSR
    meta_info file; the images of a meta_info file are found under ``--hr-root`` (default: its folder).
    ``--recon``: one or more reconstruction checkpoints (``net_g_ep<N>.pth`` of ``ReconstructionModel``); the
    option may be repeated. ``--recon-weights``: the probability of each checkpoint (normalised, default
    uniform); each sample draws its checkpoint from its own seed. ``--scale`` (4), ``--crop SIZE``,
    ``--crops-per-image N`` (1), ``--color-correct none|lab-stats``, ``--batch-size`` (8),
    ``--device auto|cpu|cuda``, ``--seed`` (0), ``--format lmdb|folder`` (lmdb), ``--workers`` (2 decode
    workers), ``--delta-e-every K`` (10; 0 disables ΔE), ``--amp none|auto|bf16|fp16`` (none: autocast of the
    networks, see :class:`~undersr.degrade.Degrader`; it changes the outputs slightly, so it is recorded).

    ``--color-correct`` defaults to ``none`` because that is the paper's recipe: the degraded LR is the
    reconstruction as it comes out of the network. ``lab-stats`` is our addition: the paper (§4.3) finds that
    undertrained reconstructions shift colours and that this colour shift hurts the fine-tuned SR model, so
    ``lab-stats`` gives each degraded LR the per-image CIELAB mean and standard deviation of its clean bicubic LR
    (spatial artefacts stay, the global cast goes).

Samples:
    Images are taken in sorted key order (duplicate keys of a meta_info file are dropped with a warning). Without
    ``--crop`` each image is one sample, trimmed at the bottom and right to a multiple of ``--scale`` (at most
    ``scale - 1`` rows and columns are lost) so that HR and LR sizes match exactly. With ``--crop`` each image
    has ``--crops-per-image`` sample slots, each a ``crop`` × ``crop`` box at a random position; an image
    smaller than ``--crop`` in either dimension is used whole instead (trimmed to a multiple of the scale) and
    fills only its first slot. Crop positions and the per-sample seed (which picks the checkpoint and seeds a
    stochastic reconstruction) come from a SHA-256 hash of (``--seed``, image key, crop index), never from the
    processing order, so they do not change with sharding, resumption or batch composition.

Output keys:
    The image's relative path without extension, ``/`` replaced by ``__`` and every character outside
    ``[A-Za-z0-9_-]`` by ``_``, plus ``_s{j:03d}`` (crop index) when ``--crop`` is given. Keys never contain
    ``.`` (BasicSR's ``paths_from_lmdb`` cuts keys at the first dot). Paths that would map to the same key
    (``a/b.png`` and ``a__b.png``, or ``x.png`` and ``x.jpg``) get ``-`` and 8 hex digits of the path's
    SHA-256 appended, so keys are unique.

Output layout:
    .. code-block:: text

        OUT/manifest.json            what was made and how (below)
        OUT/gt.lmdb, OUT/lq.lmdb     --format lmdb: BasicSR LMDBs (data.mdb + meta_info.txt), or
        OUT/gt/<key>.png,            --format folder: HR crops and degraded LRs with identical file names
        OUT/lq/<key>.png

    Images are 8-bit RGB PNGs (rounded and clipped), compression level 1 as in BasicSR's LMDB tools; LMDB
    entries are the PNG bytes under the key, and ``meta_info.txt`` has one line ``<key>.png (h,w,c) 1`` per
    entry, in sorted key order (there is no ``lock.mdb``: BasicSR opens LMDBs read-only with ``lock=False``).
    ``lq`` is the degraded LR after the optional colour correction.

    ``manifest.json`` (sorted keys, no timestamps: identical for identical runs) holds ``source``, ``hr_root``,
    ``scale``, ``crop``, ``crops_per_image``, ``seed``, ``color_correct``, ``format``, ``batch_size``,
    ``delta_e_every``, ``weights``, ``recon`` (paths and SHA-256 of the checkpoints), ``checkpoints``
    (``ReconSource.describe()``: name, type, epoch, path, SHA-256), ``samples`` (per sample: ``key``,
    ``source_file`` (the key in ``--hr``), ``crop_box`` ``[top, left, height, width]`` in the HR image,
    ``recon`` (e.g. ``VQVAE@ep2``), ``recon_index``, ``seed``, and on every ``--delta-e-every``-th sample slot
    ``delta_e`` ``{before, after}``: mean CIEDE2000 between the clean bicubic LR and the degraded LR before and
    after colour correction, equal when there is none), ``skipped`` (unreadable files with the reason) and
    ``summary`` (counts, mean ΔE before and after).

Reading the pairs with BasicSR:
    .. code-block:: yaml

        type: PairedImageDataset
        dataroot_gt: OUT/gt.lmdb    # or OUT/gt with io_backend: {type: disk}
        dataroot_lq: OUT/lq.lmdb    # or OUT/lq
        io_backend: {type: lmdb}
        scale: 4

Determinism, sharding and resumption:
    The sample slots are split into fixed chunks of ``--batch-size`` consecutive slots; chunk ``k`` is computed by
    rank ``k % world_size`` (``torchrun`` sets ``WORLD_SIZE``; then ``torch.distributed`` is initialised with gloo
    on the CPU or NCCL on ``cuda:LOCAL_RANK``). Within a chunk, samples of equal size are batched together. A chunk
    is always computed the same way, so 1 or N processes and interrupted-then-resumed runs give the same bytes (on
    the same kind of device and the same software; in principle the number of CPU threads could change the last bits
    of a convolution, though we have not seen it). Each finished chunk is staged in ``OUT/.staging/chunks/`` as PNGs
    plus a JSON record written last; a chunk with a record is done and is skipped on a rerun. Every file is written
    to a temporary name and renamed, so a killed process (even SIGKILL) never leaves a half-written file in use.
    After all chunks are done, rank 0 builds the final outputs from the staged files in one pass, in sorted key
    order, from scratch (a half-finished previous finalisation is discarded), moves them into place, writes
    ``manifest.json`` and removes ``.staging``. LMDB files are byte-identical too: LMDB writes the same ``data.mdb``
    for the same sequence of transactions and the same map size, and both are derived from the staged files only
    (map size: twice the staged bytes plus 16 MiB, doubled on ``MapFullError``). Files are not fsync'ed: a kill is
    survived, a power cut may not be.

    ``OUT/.staging/args.json`` records the arguments that decide the outputs (everything except ``--device``
    and ``--workers``; checkpoints by path and SHA-256); rerunning into the same ``--out`` with other arguments
    is an error. Rerunning a finished command only hashes the checkpoints, compares with ``manifest.json`` and
    returns.

Performance:
    Decoding and cropping run in ``--workers`` threads beside the network (OpenCV releases the GIL; threads
    avoid forking a process whose OpenMP pool can deadlock the child), and PNG
    encoding and writing in a few threads, so a chunk is written while the next is computed. On the CPU, unless
    ``OMP_NUM_THREADS`` is set, torch gets ``cores // processes - workers`` threads (at least 1): oversubscribed
    OpenMP threads can make convolutions many times slower. ΔE uses scikit-image on the CPU; raise
    ``--delta-e-every`` if it shows.

Errors:
    An unreadable or corrupt image is skipped with a warning naming it and listed in the manifest's ``skipped``;
    grey, RGBA and 16-bit images are converted with a warning. A missing ``--hr``, a missing or wrong
    ``--recon``, an ``--out`` that is a file or not writable, and changed arguments stop the command before any
    work with a message and a non-zero exit code. A full disk stops it with a message naming the file; finished
    chunks are kept and rerunning the same command resumes.

Test hook:
    ``UNDERSR_GENERATE_CRASH_AT`` (tests only) makes the process SIGKILL itself at one point: ``files:K`` (chunk
    ``K``'s PNGs written, its record not), ``record:K`` (after chunk ``K``'s record) or ``finalize`` (the first
    final output moved into place, the second and the manifest not).
"""
import argparse
import errno
import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import sys
import threading
import time
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from os import path as osp

from undersr.degrade import COLOR_CORRECTIONS, Degrader, file_sha256
from undersr.fileio import atomic_path
from undersr.image_io import BadImageError, decode_image_noted, to_uint8

import cv2
import numpy as np
import torch

PNG_COMPRESSION = 1  # BasicSR's LMDB tools use level 1
STAGING = '.staging'
MANIFEST = 'manifest.json'
FINAL_OUTPUTS = {'folder': ('gt', 'lq'), 'lmdb': ('gt.lmdb', 'lq.lmdb')}
CRASH_ENV = 'UNDERSR_GENERATE_CRASH_AT'
LMDB_COMMIT_EVERY = 1000


class GenerateError(Exception):
    """A problem the user can fix; reported as one line without a traceback."""


class WriteError(GenerateError):
    """Writing ``path`` failed; finished chunks are kept and a rerun resumes."""

    def __init__(self, path, err, staging):
        reason = 'the disk is full' if getattr(err, 'errno', None) == errno.ENOSPC else f'{type(err).__name__}: {err}'
        super().__init__(f'cannot write {path}: {reason}. Finished chunks are kept in {staging}; free some space '
                         'and rerun the same command to resume.')
        self.path, self.err = path, err


# ----------------------------------------------------------------------------------------------------- arguments

def build_parser():
    """The argument parser of ``undersr generate``."""
    parser = argparse.ArgumentParser(
        prog='undersr generate',
        description='Make (HR, degraded LR) pairs: HR -> bicubic xscale -> undertrained reconstruction network. '
        'See the module docstring of undersr.generate for the output layout.')
    parser.add_argument('--hr', required=True, help='HR images: folder tree, BasicSR LMDB or meta_info file')
    parser.add_argument('--hr-root', help='image root for a meta_info --hr (default: its folder)')
    parser.add_argument('--recon', required=True, nargs='+', action='extend', metavar='CKPT',
                        help='reconstruction checkpoint(s); repeatable')
    parser.add_argument('--recon-weights', nargs='+', type=float, metavar='W',
                        help='probability of each checkpoint (normalised; default uniform)')
    parser.add_argument('--scale', type=int, default=4, help='bicubic downscaling factor (default: %(default)s)')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--crop', type=int, help='HR crop size (e.g. 1024 as in the paper); default whole images')
    parser.add_argument('--crops-per-image', type=int, default=1, help='random crops per image (default: 1)')
    parser.add_argument('--color-correct', choices=COLOR_CORRECTIONS, default='none',
                        help="'none' (the paper's recipe, default) or 'lab-stats' (match the clean LR's Lab "
                             'mean/std, against the colour shift of paper §4.3)')
    parser.add_argument('--batch-size', type=int, default=8, help='samples per chunk and batch (default: 8)')
    parser.add_argument('--device', choices=('auto', 'cpu', 'cuda'), default='auto',
                        help='auto: CUDA when available (default)')
    parser.add_argument('--seed', type=int, default=0, help='seed of crops and sources (default: 0)')
    parser.add_argument('--format', choices=tuple(FINAL_OUTPUTS), default='lmdb', help='default: lmdb')
    parser.add_argument('--workers', type=int, default=2, help='decode threads (default: 2; 0: inline)')
    parser.add_argument('--delta-e-every', type=int, default=10, metavar='K',
                        help='CIEDE2000 on every K-th sample (default: 10; 0 disables)')
    parser.add_argument('--amp', choices=('none', 'auto', 'bf16', 'fp16'), default='none',
                        help='autocast of the networks (default: none, float32; auto: bf16 on CUDA if supported)')
    return parser


def parse_args(argv=None):
    """Parses and checks the arguments; argparse exits with a usage message on errors."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.scale < 1:
        parser.error('--scale must be at least 1')
    if args.crop is not None and (args.crop < args.scale or args.crop % args.scale):
        parser.error(f'--crop {args.crop} must be a positive multiple of --scale {args.scale}')
    for name in ('crops_per_image', 'batch_size'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be at least 1')
    if args.workers < 0 or args.delta_e_every < 0:
        parser.error('--workers and --delta-e-every must not be negative')
    if args.recon_weights is not None and len(args.recon_weights) != len(args.recon):
        parser.error(f'--recon-weights needs one weight per checkpoint ({len(args.recon)}), '
                     f'got {len(args.recon_weights)}')
    return args


# ----------------------------------------------------------------------------------------------- sample list

def derive_seed(*parts):
    """A 63-bit integer from a SHA-256 of ``parts``: the same parts always give the same number."""
    digest = hashlib.sha256('\x1f'.join(map(str, parts)).encode('utf-8')).digest()
    return int.from_bytes(digest[:8], 'big') >> 1


def output_keys(rel_paths):
    """Unique, dot-free output keys for relative image paths (see "Output keys" in the module docstring).

    Args:
        rel_paths (Sequence[str]): Distinct relative paths (or LMDB keys).

    Returns:
        list[str]: One key per path, in the same order.
    """
    base = []
    for rel in rel_paths:
        stem = osp.splitext(rel.replace('\\', '/'))[0]
        base.append(re.sub(r'[^A-Za-z0-9_-]', '_', stem.replace('/', '__')))
    counts = {}
    for key in base:
        counts[key] = counts.get(key, 0) + 1
    keys = [key if counts[key] == 1 else f'{key}-{hashlib.sha256(rel.encode("utf-8")).hexdigest()[:8]}'
            for key, rel in zip(base, rel_paths)]
    if len(set(keys)) != len(keys):
        clash = sorted(rel for rel, key in zip(rel_paths, keys) if keys.count(key) > 1)
        raise GenerateError(f'cannot give these images distinct output keys: {clash[:6]}; rename them')
    return keys


@dataclass(frozen=True)
class Slot:
    """One potential sample: crop ``crop_index`` of image ``source_index`` of the :class:`ImageSource`."""
    index: int
    source_index: int
    source_key: str
    key: str
    crop_index: int


def build_slots(source, crop, crops_per_image):
    """All sample slots in order: images sorted by key, then crop index.

    Returns:
        list[Slot]
    """
    order, seen = [], set()
    for index in sorted(range(len(source)), key=lambda i: source.keys[i]):
        if source.keys[index] in seen:
            warnings.warn(f'{source.name(index)} is listed twice; using it once')
            continue
        seen.add(source.keys[index])
        order.append(index)
    keys = output_keys([source.keys[i] for i in order])
    slots = []
    for index, key in zip(order, keys):
        for j in range(crops_per_image if crop else 1):
            slots.append(Slot(len(slots), index, source.keys[index], f'{key}_s{j:03d}' if crop else key, j))
    return slots


def crop_box(height, width, crop, scale, seed, source_key, crop_index):
    """The HR box ``[top, left, h, w]`` of a slot, or ``None`` if the slot stays empty.

    Whole images (no ``crop``, or an image smaller than ``crop``) are trimmed at the bottom and right to a
    multiple of ``scale`` and fill only slot 0.
    """
    if crop is None or height < crop or width < crop:
        if crop_index > 0:
            return None
        return [0, 0, height - height % scale, width - width % scale]
    top = derive_seed('top', seed, source_key, crop_index) % (height - crop + 1)
    left = derive_seed('left', seed, source_key, crop_index) % (width - crop + 1)
    return [top, left, crop, crop]


def sample_seed(seed, source_key, crop_index):
    """The seed of one sample (its checkpoint choice and any randomness of the reconstruction)."""
    return derive_seed('sample', seed, source_key, crop_index)


class ChunkReader:
    """Decodes and crops the HR images of one chunk per item (runs in decode threads).

    Each item is a dict: ``chunk`` (its number), ``samples`` (dicts with the :class:`Slot`, ``crop_box``,
    ``seed`` and ``hr``, a (3, h, w) RGB tensor: uint8 for 8-bit images, which keeps their HR output exact without
    a round trip through float, else float32 in [0, 1]), ``skipped`` (``{file, reason}``) and
    ``warnings`` (conversion messages of :func:`decode_image_noted`, issued by the main thread).
    """

    def __init__(self, source, chunks, slots, batch_size, crop, scale, seed):
        self.source, self.chunks, self.slots = source, chunks, slots
        self.batch_size, self.crop, self.scale, self.seed = batch_size, crop, scale, seed

    def __len__(self):
        return len(self.chunks)

    def __getitem__(self, item):
        chunk = self.chunks[item]
        samples, skipped, notes, images = [], [], [], {}
        for slot in self.slots[chunk * self.batch_size:(chunk + 1) * self.batch_size]:
            if slot.source_index not in images:
                try:
                    name = self.source.name(slot.source_index)
                    images[slot.source_index], found = decode_image_noted(self.source.read(slot.source_index), name,
                                                                              keep_8bit=True)
                    notes += found
                except BadImageError as err:
                    images[slot.source_index] = None
                    skipped.append({'file': slot.source_key, 'reason': err.reason})
            image = images[slot.source_index]
            if image is None:
                continue
            height, width = image.shape[:2]
            if height < self.scale or width < self.scale:
                if slot.crop_index == 0:
                    skipped.append({'file': slot.source_key,
                                    'reason': f'{height}x{width} is smaller than the scale {self.scale}'})
                continue
            box = crop_box(height, width, self.crop, self.scale, self.seed, slot.source_key, slot.crop_index)
            if box is None:
                continue
            top, left, h, w = box
            rgb = image[top:top + h, left:left + w, ::-1].transpose(2, 0, 1)
            samples.append({'slot': slot, 'crop_box': box, 'seed': sample_seed(self.seed, slot.source_key,
                                                                                  slot.crop_index),
                            'hr': torch.from_numpy(np.ascontiguousarray(rgb))})
        return {'chunk': chunk, 'samples': samples, 'skipped': skipped, 'warnings': notes}


def prefetch(fn, items, workers):
    """Yields ``fn(item)`` for each item in order, computing up to ``2 * workers`` ahead in threads.

    Threads, not processes: OpenCV's decoders release the GIL, and nothing is forked from a process whose
    OpenMP threads could leave a child deadlocked. ``workers=0`` runs inline.
    """
    if not workers:
        yield from map(fn, items)
        return
    items = iter(items)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        ahead = deque(pool.submit(fn, item) for item in itertools.islice(items, 2 * workers))
        while ahead:
            result = ahead.popleft().result()
            for item in itertools.islice(items, 1):
                ahead.append(pool.submit(fn, item))
            yield result


# ------------------------------------------------------------------------------------------------------ files

def write_atomic(path, data):
    """Writes ``data`` to ``path`` through a temporary file and a rename; raises ``OSError``."""
    with atomic_path(path) as tmp, open(tmp, 'wb') as f:
        f.write(data)


def json_bytes(obj):
    """Deterministic JSON: sorted keys, fixed indentation, trailing newline."""
    return (json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + '\n').encode('utf-8')


def encode_png(image):
    """PNG bytes of an (H, W, 3) uint8 BGR image at :data:`PNG_COMPRESSION`."""
    ok, buf = cv2.imencode('.png', image, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    if not ok:
        raise GenerateError(f'OpenCV could not encode a {image.shape} image as PNG')
    return buf.tobytes()


def to_bgr_uint8(batch):
    """(N, 3, H, W) RGB float in [0, 1] → (N, H, W, 3) uint8 BGR NumPy (rounded, clipped)."""
    array = to_uint8(batch.cpu())
    return np.ascontiguousarray(array.permute(0, 2, 3, 1).numpy()[..., ::-1])


def _crash_point(name):
    """Test hook: SIGKILL this process at ``name`` if ``UNDERSR_GENERATE_CRASH_AT`` says so."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


class Staging:
    """The ``OUT/.staging`` folder: arguments, per-chunk PNGs and records."""

    def __init__(self, out):
        self.out = out
        self.root = osp.join(out, STAGING)
        self.args_file = osp.join(self.root, 'args.json')

    def chunk_dir(self, chunk):
        return osp.join(self.root, 'chunks', f'c{chunk:07d}')

    def record_file(self, chunk):
        return osp.join(self.root, 'chunks', f'c{chunk:07d}.json')

    def image_file(self, chunk, kind, key):
        return osp.join(self.chunk_dir(chunk), kind, f'{key}.png')

    def save(self, path, data):
        """:func:`write_atomic`, turning ``OSError`` into a :class:`WriteError` that says how to resume."""
        try:
            write_atomic(path, data)
        except OSError as err:
            raise WriteError(path, err, self.root) from err

    def write_chunk(self, chunk, pairs, record):
        """Encodes and writes one chunk's PNGs, then its record (which marks the chunk done)."""
        folder = self.chunk_dir(chunk)
        shutil.rmtree(folder, ignore_errors=True)  # leftovers of a killed attempt
        try:
            for kind in ('gt', 'lq'):
                os.makedirs(osp.join(folder, kind))
        except OSError as err:
            raise WriteError(folder, err, self.root) from err
        for key, gt, lq in pairs:
            self.save(self.image_file(chunk, 'gt', key), encode_png(gt))
            self.save(self.image_file(chunk, 'lq', key), encode_png(lq))
        _crash_point(f'files:{chunk}')
        self.save(self.record_file(chunk), json_bytes(record))
        _crash_point(f'record:{chunk}')

    def load_record(self, chunk):
        with open(self.record_file(chunk), 'rb') as f:
            return json.loads(f.read())


# ------------------------------------------------------------------------------------------------ distributed

def init_distributed(device_choice):
    """Initialises ``torch.distributed`` when launched by torchrun with ``WORLD_SIZE`` > 1.

    Returns:
        tuple[int, int, torch.device]: rank, world size and this process's device.
    """
    world = int(os.environ.get('WORLD_SIZE', '1'))
    use_cuda = device_choice == 'cuda' or (device_choice == 'auto' and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise GenerateError('--device cuda: CUDA is not available here; use --device cpu or auto')
    if world <= 1:
        return 0, 1, torch.device('cuda' if use_cuda else 'cpu')
    import torch.distributed as dist
    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device('cuda', local_rank)
    else:
        device = torch.device('cpu')
    if not dist.is_initialized():
        dist.init_process_group('nccl' if use_cuda else 'gloo')
    return dist.get_rank(), dist.get_world_size(), device


def barrier(world, device):
    if world > 1:
        import torch.distributed as dist
        if device.type == 'cuda':
            dist.barrier(device_ids=[device.index])
        else:
            dist.barrier()


# ------------------------------------------------------------------------------------------------------- setup

def open_source(args):
    """The :class:`ImageSource` of ``--hr``, or a :class:`GenerateError` naming what is wrong."""
    from undersr.data.image_source import ImageSource

    hr = args.hr
    if not osp.exists(hr):
        raise GenerateError(f'--hr not found: {hr}')
    try:
        if osp.isfile(hr):
            root = args.hr_root or osp.dirname(osp.abspath(hr))
            if not osp.isdir(root):
                raise GenerateError(f'--hr-root is not a folder: {root}')
            return ImageSource(root, meta_info=hr)
        if args.hr_root:
            raise GenerateError('--hr-root only applies when --hr is a meta_info file')
        return ImageSource(hr)
    except UnicodeDecodeError as err:
        raise GenerateError(f'--hr {hr} is a file but not a BasicSR meta_info text file') from err
    except FileNotFoundError as err:
        raise GenerateError(f'--hr: {err}') from err


def check_out(out):
    """Fails early if ``out`` is a file or cannot be created or written."""
    if osp.exists(out) and not osp.isdir(out):
        raise GenerateError(f'--out {out} exists and is not a folder; give a folder path')
    probe = osp.abspath(out)
    while not osp.exists(probe):
        probe = osp.dirname(probe)
    if not osp.isdir(probe):
        raise GenerateError(f'--out {out} cannot be created: {probe} is a file')
    if not os.access(probe, os.W_OK | os.X_OK):
        raise GenerateError(f'--out {out} is not writable ({probe} does not allow writing)')


def checkpoint_ids(paths):
    """Path and SHA-256 of each checkpoint: how a changed checkpoint is recognised."""
    from undersr.weights import missing_file_message

    ids = []
    for path in paths:
        if not osp.isfile(path):
            raise GenerateError(f'--recon: {missing_file_message(path, "reconstruction checkpoint")}')
        ids.append({'path': osp.abspath(path), 'sha256': file_sha256(path)})
    return ids


def output_spec(args, source):
    """The arguments that decide the outputs, as saved in ``args.json`` and the manifest."""
    return {'source': osp.abspath(args.hr), 'hr_root': osp.abspath(source.root), 'scale': args.scale,
            'crop': args.crop, 'crops_per_image': args.crops_per_image if args.crop else 1, 'seed': args.seed,
            'color_correct': args.color_correct, 'format': args.format, 'batch_size': args.batch_size,
            'delta_e_every': args.delta_e_every, 'recon': checkpoint_ids(args.recon),
            'weights': [float(w) for w in args.recon_weights] if args.recon_weights else [1.0] * len(args.recon),
            # Only recorded when used, so that outputs of earlier versions (float32 only) still resume.
            **({'amp': args.amp} if args.amp != 'none' else {})}


def _read_json(path):
    with open(path, 'rb') as f:
        return json.loads(f.read())


# Keys of output_spec that are present only when set (absent means the default of earlier versions).
OPTIONAL_SPEC_KEYS = ('amp',)


def _changed(saved, spec):
    return sorted(k for k in {*spec, *OPTIONAL_SPEC_KEYS} if saved.get(k) != spec.get(k))


def _diff(saved, spec):
    return ', '.join(f'{k}: {saved.get(k)!r} -> {spec.get(k)!r}' for k in _changed(saved, spec))


def inspect_out(out, spec, staging):
    """Decides what to do with an existing ``--out``.

    Returns:
        str: ``'done'`` (finished with these arguments), ``'resume'`` or ``'new'``.

    Raises:
        GenerateError: ``out`` holds outputs made with other arguments or not by this command.
    """
    manifest = osp.join(out, MANIFEST)
    hint = 'Use a new --out, or delete the old one to start over.'
    if osp.isfile(manifest):
        saved = _read_json(manifest)
        if _changed(saved, spec):
            raise GenerateError(f'{out} holds outputs made with other arguments ({_diff(saved, spec)}). {hint}')
        missing = [name for name in FINAL_OUTPUTS[spec['format']] if not osp.exists(osp.join(out, name))]
        if missing:
            raise GenerateError(f'{out}/{MANIFEST} exists but {", ".join(missing)} is missing. {hint}')
        return 'done'
    if osp.isfile(staging.args_file):
        saved = _read_json(staging.args_file)
        if saved != spec:
            raise GenerateError(f'{out} holds an unfinished run with other arguments ({_diff(saved, spec)}). {hint}')
        return 'resume'
    if osp.isdir(out):
        foreign = [n for n in (*FINAL_OUTPUTS['folder'], *FINAL_OUTPUTS['lmdb']) if osp.exists(osp.join(out, n))]
        if foreign:
            raise GenerateError(f'{out} already holds {", ".join(foreign)} but no {MANIFEST} or unfinished run of '
                                f'undersr generate. {hint}')
    return 'new'


# ---------------------------------------------------------------------------------------------------- compute

def compute_chunk(degrader, item, device, delta_e_every):
    """Degrades the samples of one decoded chunk.

    Returns:
        tuple[list, dict]: ``(key, gt, lq)`` uint8 BGR images, and the chunk's record.
    """
    from undersr.color import delta_e

    groups = {}
    for sample in item['samples']:
        groups.setdefault((tuple(sample['hr'].shape), sample['hr'].dtype), []).append(sample)
    pairs, records = [], []
    for members in groups.values():
        hr = torch.stack([m['hr'] for m in members])
        if hr.dtype == torch.uint8:  # 8-bit images: the HR output is the decoded pixels, converted on the device
            gt_u8 = np.ascontiguousarray(hr.permute(0, 2, 3, 1).numpy()[..., ::-1])
            hr = hr.to(device).float().div_(255)
        else:
            gt_u8 = to_bgr_uint8(hr)
        out = degrader(hr.to(device), [m['seed'] for m in members])
        lq_u8 = to_bgr_uint8(out['lq'])
        measured = [i for i, m in enumerate(members) if delta_e_every and m['slot'].index % delta_e_every == 0]
        scores = {}
        if measured:
            clean = out['lq_clean'][measured]
            before = delta_e(clean, out['lq_raw'][measured])
            after = delta_e(clean, out['lq'][measured]) if degrader.color_correct != 'none' else before
            scores = {i: {'before': round(float(b), 4), 'after': round(float(a), 4)}
                      for i, b, a in zip(measured, before, after)}
        for i, member in enumerate(members):
            slot, choice = member['slot'], int(out['source'][i])
            record = {'key': slot.key, 'source_file': slot.source_key, 'crop_box': member['crop_box'],
                      'recon': degrader.sources[choice].name, 'recon_index': choice, 'seed': member['seed']}
            if i in scores:
                record['delta_e'] = scores[i]
            records.append((slot.index, record))
            pairs.append((slot.key, gt_u8[i], lq_u8[i]))
    records.sort(key=lambda r: r[0])
    return pairs, {'chunk': item['chunk'], 'samples': [r for _, r in records], 'skipped': item['skipped']}


# ------------------------------------------------------------------------------------------------- finalising

def write_lmdb(path, entries, map_size=None):
    """Writes a BasicSR LMDB folder from staged PNG files, in the given order.

    Args:
        path (str): New ``*.lmdb`` folder (must not exist).
        entries (list[tuple[str, str, tuple]]): ``(key, png_file, (h, w, c))``.
        map_size (int | None): Initial LMDB map size; default twice the bytes plus 16 MiB. Doubled whenever
            LMDB reports ``MapFullError``.
    """
    import lmdb

    total = sum(osp.getsize(f) for _, f, _ in entries)
    map_size = map_size or 2 * total + (16 << 20)
    env = lmdb.open(path, map_size=map_size, lock=False)  # we are the only user until it is moved into place
    try:
        done = 0
        while done < len(entries):
            batch = entries[done:done + LMDB_COMMIT_EVERY]
            try:
                with env.begin(write=True) as txn:
                    for key, file, _ in batch:
                        with open(file, 'rb') as f:
                            txn.put(key.encode('ascii'), f.read())
            except lmdb.MapFullError:
                map_size *= 2
                env.set_mapsize(map_size)
                continue
            done += len(batch)
    finally:
        env.close()
    lines = ''.join(f'{key}.png ({h},{w},{c}) {PNG_COMPRESSION}\n' for key, _, (h, w, c) in entries)
    write_atomic(osp.join(path, 'meta_info.txt'), lines.encode('ascii'))


def _link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def finalise(out, staging, spec, degrader, num_chunks):
    """Builds the final outputs and the manifest from the staged chunks, then removes the staging folder.

    Returns:
        dict: The manifest.
    """
    import lmdb

    samples, skipped = [], {}
    for chunk in range(num_chunks):
        try:
            record = staging.load_record(chunk)
        except OSError as err:
            raise GenerateError(f'chunk {chunk} has no record ({err}); rerun the same command') from err
        samples += [(s, chunk) for s in record['samples']]
        for entry in record['skipped']:
            skipped.setdefault(entry['file'], entry['reason'])
    samples.sort(key=lambda s: s[0]['key'])
    scale = spec['scale']
    files = {'gt': [], 'lq': []}
    for sample, chunk in samples:
        _, _, height, width = sample['crop_box']
        for kind, factor in (('gt', 1), ('lq', scale)):
            files[kind].append((sample['key'], staging.image_file(chunk, kind, sample['key']),
                                (height // factor, width // factor, 3)))

    build = osp.join(staging.root, 'final')
    shutil.rmtree(build, ignore_errors=True)  # a previous, interrupted finalisation
    names = FINAL_OUTPUTS[spec['format']]
    try:
        os.makedirs(build)
        for kind, name in zip(('gt', 'lq'), names):
            target = osp.join(build, name)
            if spec['format'] == 'folder':
                os.makedirs(target)
                for key, file, _ in files[kind]:
                    _link_or_copy(file, osp.join(target, f'{key}.png'))
            else:
                write_lmdb(target, files[kind])
        for name in names:
            final = osp.join(out, name)
            if osp.isdir(final):
                shutil.rmtree(final)
            os.replace(osp.join(build, name), final)
            _crash_point('finalize')
    except OSError as err:
        raise WriteError(getattr(err, 'filename', None) or out, err, staging.root) from err
    except lmdb.Error as err:  # e.g. a full disk inside LMDB; not an OSError
        raise WriteError(build, err, staging.root) from err

    scored = [s['delta_e'] for s, _ in samples if 'delta_e' in s]

    def mean(which):
        return round(sum(d[which] for d in scored) / len(scored), 4) if scored else None

    manifest = {**spec, 'checkpoints': [s.describe() for s in degrader.sources],
                'samples': [s for s, _ in samples],
                'skipped': [{'file': f, 'reason': r} for f, r in sorted(skipped.items())],
                'summary': {'samples': len(samples), 'skipped': len(skipped), 'delta_e_samples': len(scored),
                            'mean_delta_e_before': mean('before'), 'mean_delta_e_after': mean('after')}}
    staging.save(osp.join(out, MANIFEST), json_bytes(manifest))
    shutil.rmtree(staging.root, ignore_errors=True)
    return manifest


def _summary_line(out, manifest, extra=''):
    s = manifest['summary']
    delta = ('ΔE (CIEDE2000, clean vs degraded LR) not measured' if not s['delta_e_samples'] else
             f'mean ΔE before correction {s["mean_delta_e_before"]:.3f}, after {s["mean_delta_e_after"]:.3f} '
             f'({s["delta_e_samples"]} samples)')
    return (f'undersr generate: {s["samples"]} pairs ({manifest["format"]}) in {out}, {s["skipped"]} skipped '
            f'files; {delta}{extra}')


# ------------------------------------------------------------------------------------------------------- main

def run(args):
    """Runs the command for parsed ``args`` (see :func:`parse_args`).

    Returns:
        dict: The manifest (also on rank 0 only; other ranks return ``None``).
    """
    rank, world, device = init_distributed(args.device)
    try:
        return _run(args, rank, world, device)
    finally:
        if world > 1:
            import torch.distributed as dist
            if dist.is_initialized():
                dist.destroy_process_group()


def _run(args, rank, world, device):
    source = open_source(args)
    check_out(args.out)
    spec = output_spec(args, source)
    staging = Staging(args.out)
    state = inspect_out(args.out, spec, staging)
    barrier(world, device)  # every rank has looked before rank 0 changes anything
    if state == 'done':
        manifest = _read_json(osp.join(args.out, MANIFEST))
        if rank == 0:
            shutil.rmtree(staging.root, ignore_errors=True)  # leftovers of a kill after the manifest
            print(_summary_line(args.out, manifest, '; already complete, nothing to do'))
        return manifest if rank == 0 else None

    try:
        degrader = Degrader(args.recon, args.recon_weights, args.scale, args.color_correct, device,
                            amp=None if args.amp == 'none' else args.amp)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        raise GenerateError(str(err)) from err
    if rank == 0:
        try:
            os.makedirs(osp.join(staging.root, 'chunks'), exist_ok=True)
        except OSError as err:
            raise GenerateError(f'--out {args.out} cannot be created: {err}') from err
        if state == 'new' or not osp.isfile(staging.args_file):
            staging.save(staging.args_file, json_bytes(spec))
    barrier(world, device)

    slots = build_slots(source, args.crop, args.crops_per_image)
    num_chunks = -(-len(slots) // args.batch_size)
    threads = torch.get_num_threads()
    if device.type == 'cpu' and 'OMP_NUM_THREADS' not in os.environ:
        # Leave a core to each decode worker: oversubscribed OpenMP threads slow convolutions down many times.
        cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1
        torch.set_num_threads(max(1, cores // world - args.workers))
    try:
        made, elapsed = compute_chunks(args, rank, world, device, source, slots, num_chunks, staging, degrader)
    finally:
        torch.set_num_threads(threads)

    barrier(world, device)
    if rank != 0:
        return None
    manifest = finalise(args.out, staging, spec, degrader, num_chunks)
    rate = f'; {made} samples computed here in {elapsed:.1f} s ({made / max(elapsed, 1e-9):.1f} img/s)'
    print(_summary_line(args.out, manifest, rate))
    return manifest


def compute_chunks(args, rank, world, device, source, slots, num_chunks, staging, degrader):
    """Decodes, degrades and stages this rank's unfinished chunks (``k % world == rank``).

    Returns:
        tuple[int, float]: Samples computed and seconds taken.
    """
    from tqdm import tqdm

    todo = [k for k in range(rank, num_chunks, world) if not osp.isfile(staging.record_file(k))]
    reader = ChunkReader(source, todo, slots, args.batch_size, args.crop, args.scale, args.seed)
    loader = prefetch(reader.__getitem__, range(len(reader)), args.workers)
    total = sum(len(slots[k * args.batch_size:(k + 1) * args.batch_size]) for k in todo)
    bar = tqdm(total=total, unit='img', desc=f'generate (rank 0 of {world})' if world > 1 else 'generate',
               disable=rank != 0, dynamic_ncols=True)
    shown, start, made = set(), time.time(), 0
    pending = deque()
    failed = threading.Event()

    def write_chunk(chunk, pairs, record):
        # Once a write has failed (e.g. a full disk) the run is ending: queued chunks are not written, so what is
        # on disk does not depend on how far the other writer threads got.
        if failed.is_set():
            return
        try:
            staging.write_chunk(chunk, pairs, record)
        except BaseException:
            failed.set()
            raise

    with ThreadPoolExecutor(max_workers=max(1, min(4, args.workers or 1))) as writer:
        try:
            for item in loader:
                for message in item['warnings'] + [f'skipping {s["file"]} (in {args.hr}): {s["reason"]}'
                                                   for s in item['skipped']]:
                    if message not in shown:
                        shown.add(message)
                        warnings.warn_explicit(message, UserWarning, 'undersr generate', 0)
                pairs, record = compute_chunk(degrader, item, device, args.delta_e_every)
                pending.append(writer.submit(write_chunk, item['chunk'], pairs, record))
                while len(pending) > 2 or (pending and pending[0].done()):
                    pending.popleft().result()
                made += len(pairs)
                bar.update(len(slots[item['chunk'] * args.batch_size:(item['chunk'] + 1) * args.batch_size]))
            while pending:
                pending.popleft().result()
        except BaseException:
            for future in pending:
                future.cancel()
            raise
        finally:
            bar.close()
    return made, time.time() - start


def main(argv=None):
    """Entry point of ``undersr generate`` and ``python -m undersr.generate``.

    Args:
        argv (list[str] | None): Arguments without the program name; default ``sys.argv[1:]``.

    Raises:
        SystemExit: With a one-line message (no traceback) for user errors, a full disk and Ctrl-C.
    """
    args = parse_args(argv)
    try:
        run(args)
    except GenerateError as err:
        raise SystemExit(f'undersr generate: error: {err}') from None
    except KeyboardInterrupt:
        print(f'undersr generate: interrupted. Finished chunks are kept in {osp.join(args.out, STAGING)}; rerun '
              'the same command to resume.', file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == '__main__':
    main()
