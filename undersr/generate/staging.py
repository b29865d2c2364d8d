"""Staging and resumption of ``undersr generate``: ``OUT/.staging``, the recorded arguments and what ``--out`` holds.

Each finished chunk is staged as PNGs plus a JSON record written last; a chunk with a record is done. See
"Determinism, sharding and resumption" in docs/generate.md.
"""
import json
import os
import shutil
import signal
from os import path as osp

from undersr.degrade import file_sha256
from undersr.fileio import durable_makedirs, write_atomic
from undersr.generate.errors import GenerateError, WriteError
from undersr.weights import missing_file_message

import cv2

PNG_COMPRESSION = 1  # BasicSR's LMDB tools use level 1
STAGING = '.staging'
MANIFEST = 'manifest.json'
FINAL_OUTPUTS = {'folder': ('gt', 'lq'), 'lmdb': ('gt.lmdb', 'lq.lmdb')}
CRASH_ENV = 'UNDERSR_GENERATE_CRASH_AT'
# Keys of output_spec that are present only when set (absent means the default of earlier versions).
OPTIONAL_SPEC_KEYS = ('amp', 'strength')


def json_bytes(obj):
    """Deterministic JSON: sorted keys, fixed indentation, trailing newline."""
    return (json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + '\n').encode('utf-8')


def read_json(path):
    """The JSON object in ``path``; raises ``OSError`` or ``ValueError``."""
    with open(path, 'rb') as f:
        return json.loads(f.read())


def encode_png(image):
    """PNG bytes of an (H, W, 3) uint8 BGR image at :data:`PNG_COMPRESSION`."""
    ok, buf = cv2.imencode('.png', image, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    if not ok:
        raise GenerateError(f'OpenCV could not encode a {image.shape} image as PNG')
    return buf.tobytes()


def crash_point(name):
    """Test hook: SIGKILL this process at ``name`` if ``UNDERSR_GENERATE_CRASH_AT`` says so."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


class Staging:
    """The ``OUT/.staging`` folder: arguments, per-chunk PNGs and records.

    Args:
        out (str): ``--out``.
    """

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
        """Encodes and writes one chunk's PNGs, then its record (which marks the chunk done).

        Args:
            chunk (int): The chunk's number.
            pairs (list[tuple[str, ndarray, ndarray]]): ``(key, gt, lq)``, (H, W, 3) uint8 BGR images.
            record (dict): The chunk's record (see :func:`undersr.generate.runner.compute_chunk`).
        """
        folder = self.chunk_dir(chunk)
        shutil.rmtree(folder, ignore_errors=True)  # leftovers of a killed attempt
        try:
            for kind in ('gt', 'lq'):
                durable_makedirs(osp.join(folder, kind))
        except OSError as err:
            raise WriteError(folder, err, self.root) from err
        for key, gt, lq in pairs:
            self.save(self.image_file(chunk, 'gt', key), encode_png(gt))
            self.save(self.image_file(chunk, 'lq', key), encode_png(lq))
        crash_point(f'files:{chunk}')
        self.save(self.record_file(chunk), json_bytes(record))
        crash_point(f'record:{chunk}')

    def load_record(self, chunk):
        return read_json(self.record_file(chunk))


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
    ids = []
    for path in paths:
        if not osp.isfile(path):
            raise GenerateError(f'--recon: {missing_file_message(path, "reconstruction checkpoint")}')
        ids.append({'path': osp.abspath(path), 'sha256': file_sha256(path)})
    return ids


def output_spec(args, source):
    """The arguments that decide the outputs, as saved in ``args.json`` and the manifest.

    Args:
        args (argparse.Namespace): Parsed arguments (see :func:`undersr.cli.generate.parse_args`).
        source (ImageSource): The ``--hr`` images.
    """
    return {'source': osp.abspath(args.hr), 'hr_root': osp.abspath(source.root), 'scale': args.scale,
            'crop': args.crop, 'crops_per_image': args.crops_per_image if args.crop else 1, 'seed': args.seed,
            'color_correct': args.color_correct, 'format': args.format, 'batch_size': args.batch_size,
            'delta_e_every': args.delta_e_every, 'recon': checkpoint_ids(args.recon),
            'weights': [float(w) for w in args.recon_weights] if args.recon_weights else [1.0] * len(args.recon),
            # Only recorded when used, so that outputs of earlier versions (float32 only) still resume.
            **({'amp': args.amp} if args.amp != 'none' else {}),
            **({'strength': args.strength} if args.strength is not None else {})}


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
        saved = read_json(manifest)
        if _changed(saved, spec):
            raise GenerateError(f'{out} holds outputs made with other arguments ({_diff(saved, spec)}). {hint}')
        missing = [name for name in FINAL_OUTPUTS[spec['format']] if not osp.exists(osp.join(out, name))]
        if missing:
            raise GenerateError(f'{out}/{MANIFEST} exists but {", ".join(missing)} is missing. {hint}')
        return 'done'
    if osp.isfile(staging.args_file):
        saved = read_json(staging.args_file)
        if saved != spec:
            raise GenerateError(f'{out} holds an unfinished run with other arguments ({_diff(saved, spec)}). {hint}')
        return 'resume'
    if osp.isdir(out):
        foreign = [n for n in (*FINAL_OUTPUTS['folder'], *FINAL_OUTPUTS['lmdb']) if osp.exists(osp.join(out, n))]
        if foreign:
            raise GenerateError(f'{out} already holds {", ".join(foreign)} but no {MANIFEST} or unfinished run of '
                                f'undersr generate. {hint}')
    return 'new'
