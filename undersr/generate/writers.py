"""The final outputs of ``undersr generate``: BasicSR LMDBs or PNG folders and ``manifest.json``, from staged chunks.

Rank 0 builds them in one pass, in sorted key order, from scratch, then moves them into place (see "Output layout"
and "Determinism, sharding and resumption" in docs/generate.md).
"""
import os
import shutil
from os import path as osp

from undersr.fileio import durable_makedirs, fsync, fsync_dir, fsync_enabled, write_atomic
from undersr.generate.errors import GenerateError, WriteError
from undersr.generate.staging import FINAL_OUTPUTS, MANIFEST, PNG_COMPRESSION, crash_point, json_bytes

LMDB_COMMIT_EVERY = 1000


def write_lmdb(path, entries, map_size=None):
    """Writes a BasicSR LMDB folder from staged PNG files, in the given order.

    Args:
        path (str): New ``*.lmdb`` folder (must not exist).
        entries (list[tuple[str, str, tuple]]): ``(key, png_file, (h, w, c))``.
        map_size (int | None): Initial LMDB map size; default twice the bytes plus 16 MiB. Doubled whenever
            LMDB reports ``MapFullError``.

    The transactions are not synced one by one; the finished LMDB is synced once (and ``meta_info.txt`` is
    written atomically), so both files are on the disk when this returns.
    """
    import lmdb

    total = sum(osp.getsize(f) for _, f, _ in entries)
    map_size = map_size or 2 * total + (16 << 20)
    # lock=False: we are the only user until it is moved into place
    env = lmdb.open(path, map_size=map_size, lock=False, sync=False, metasync=False)
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
        if fsync_enabled():
            env.sync(True)
    finally:
        env.close()
    lines = ''.join(f'{key}.png ({h},{w},{c}) {PNG_COMPRESSION}\n' for key, _, (h, w, c) in entries)
    write_atomic(osp.join(path, 'meta_info.txt'), lines.encode('ascii'))


def write_folder(path, entries):
    """Writes a folder of PNGs named ``<key>.png``: hard links to the staged files where possible, else copies.

    The staged files are on the disk already; copies and the folder's entries are fsync'ed here.

    Args:
        path (str): New folder (must not exist).
        entries (list[tuple[str, str, tuple]]): ``(key, png_file, (h, w, c))``.
    """
    os.makedirs(path)
    for key, file, _ in entries:
        target = osp.join(path, f'{key}.png')
        try:
            os.link(file, target)
        except OSError:
            shutil.copyfile(file, target)
            fsync(target)
    fsync_dir(path)


def collect_samples(staging, num_chunks):
    """The records of all staged chunks.

    Returns:
        tuple[list[tuple[dict, int]], dict]: ``(sample record, chunk)`` sorted by key, and skipped file -> reason.

    Raises:
        GenerateError: A chunk has no record.
    """
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
    return samples, skipped


def staged_entries(staging, samples, scale):
    """The staged PNG of every sample, per kind: ``{'gt': [(key, file, (h, w, 3))], 'lq': [...]}``."""
    files = {'gt': [], 'lq': []}
    for sample, chunk in samples:
        _, _, height, width = sample['crop_box']
        for kind, factor in (('gt', 1), ('lq', scale)):
            files[kind].append((sample['key'], staging.image_file(chunk, kind, sample['key']),
                                (height // factor, width // factor, 3)))
    return files


def build_outputs(out, staging, fmt, files):
    """Builds the ``fmt`` outputs in ``.staging/final`` from scratch, then moves them into ``out``.

    The outputs are on the disk before they are moved, and ``out`` is fsync'ed after each move.

    Raises:
        WriteError: Writing failed (e.g. a full disk); the staged chunks are kept.
    """
    import lmdb

    build = osp.join(staging.root, 'final')
    shutil.rmtree(build, ignore_errors=True)  # a previous, interrupted finalisation
    names = FINAL_OUTPUTS[fmt]
    write = write_folder if fmt == 'folder' else write_lmdb
    try:
        durable_makedirs(build)
        for kind, name in zip(('gt', 'lq'), names):
            write(osp.join(build, name), files[kind])
        for name in names:
            final = osp.join(out, name)
            if osp.isdir(final):
                shutil.rmtree(final)
            os.replace(osp.join(build, name), final)
            fsync_dir(out)
            crash_point('finalize')
    except OSError as err:
        raise WriteError(getattr(err, 'filename', None) or out, err, staging.root) from err
    except lmdb.Error as err:  # e.g. a full disk inside LMDB; not an OSError
        raise WriteError(build, err, staging.root) from err


def build_manifest(spec, degrader, samples, skipped):
    """The manifest: ``spec``, the checkpoints, the sample records, the skipped files and a summary."""
    scored = [s['delta_e'] for s, _ in samples if 'delta_e' in s]

    def mean(which):
        return round(sum(d[which] for d in scored) / len(scored), 4) if scored else None

    return {**spec, 'checkpoints': [s.describe() for s in degrader.sources],
            'samples': [s for s, _ in samples],
            'skipped': [{'file': f, 'reason': r} for f, r in sorted(skipped.items())],
            'summary': {'samples': len(samples), 'skipped': len(skipped), 'delta_e_samples': len(scored),
                        'mean_delta_e_before': mean('before'), 'mean_delta_e_after': mean('after')}}


def finalise(out, staging, spec, degrader, num_chunks):
    """Builds the final outputs and the manifest from the staged chunks, then removes the staging folder.

    Returns:
        dict: The manifest.
    """
    samples, skipped = collect_samples(staging, num_chunks)
    build_outputs(out, staging, spec['format'], staged_entries(staging, samples, spec['scale']))
    manifest = build_manifest(spec, degrader, samples, skipped)
    staging.save(osp.join(out, MANIFEST), json_bytes(manifest))
    shutil.rmtree(staging.root, ignore_errors=True)
    return manifest


def summary_line(out, manifest, extra=''):
    """The line printed at the end: pairs, skipped files and mean ΔE, then ``extra``."""
    s = manifest['summary']
    delta = ('ΔE (CIEDE2000, clean vs degraded LR) not measured' if not s['delta_e_samples'] else
             f'mean ΔE before correction {s["mean_delta_e_before"]:.3f}, after {s["mean_delta_e_after"]:.3f} '
             f'({s["delta_e_samples"]} samples)')
    return (f'undersr generate: {s["samples"]} pairs ({manifest["format"]}) in {out}, {s["skipped"]} skipped '
            f'files; {delta}{extra}')
