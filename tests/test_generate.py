"""``undersr generate``: BasicSR-readable outputs, determinism across resumption and processes, bad inputs."""
import errno
import gc
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import undersr  # noqa: F401  (the torchvision shim must precede BasicSR)
from undersr import cli
from undersr import generate as gen
from undersr.archs.recon_base import save_reconstruction
from undersr.degrade import Degrader
from undersr.generate import staging, writers
from undersr.sample_data import load

import cv2
import lmdb
import numpy as np
import pytest
import torch

VQ_OPT = dict(type='VQVAE', hidden_channels=16, res_channels=8, num_res_blocks=1, num_embeddings=32, embedding_dim=8)
PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket', 'immunohistochemistry', 'hubble_deep_field')
TORCHRUN = shutil.which('torchrun') or (shutil.which('torchrun', path=os.path.dirname(sys.executable)))


def tiny_vqvae(seed, tint=None):
    from basicsr.utils.registry import ARCH_REGISTRY

    torch.manual_seed(seed)
    net = ARCH_REGISTRY.get('VQVAE')(**{k: v for k, v in VQ_OPT.items() if k != 'type'})
    if tint is not None:  # a colour cast: shift the logits of the last layer per RGB channel
        with torch.no_grad():
            net.decoder.body[-1].bias += torch.tensor(tint)
    return net


@pytest.fixture(scope='session')
def ckpts(tmp_path_factory):
    """Tiny reconstruction checkpoints: two plain VQ-VAEs, one that tints, and an SR (EDSR) checkpoint."""
    from basicsr.utils.registry import ARCH_REGISTRY

    folder = tmp_path_factory.mktemp('ckpts')
    paths = {}
    for name, seed, epoch, tint in (('a', 0, 2, None), ('b', 1, 3, None), ('tint', 0, 1, [2.0, 0.0, -2.0])):
        paths[name] = str(folder / f'net_g_{name}.pth')
        save_reconstruction(paths[name], tiny_vqvae(seed, tint), VQ_OPT, epoch, epoch * 3)
    paths['sr'] = str(folder / 'EDSR_x4.pth')
    edsr = ARCH_REGISTRY.get('EDSR')(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=1, upscale=4)
    torch.save({'params': edsr.state_dict()}, paths['sr'])
    return paths


def photo(name, size, offset=0):
    """A BGR uint8 crop of a scikit-image photo."""
    rgb = load(name)
    h, w = size
    return np.ascontiguousarray(cv2.cvtColor(rgb[offset:offset + h, offset:offset + w], cv2.COLOR_RGB2BGR))


@pytest.fixture(scope='session')
def hr12(tmp_path_factory):
    """Twelve 64x64 HR images in a folder tree (two sub-folders)."""
    root = tmp_path_factory.mktemp('hr12')
    for i in range(12):
        folder = root / ('first' if i < 6 else 'second')
        folder.mkdir(exist_ok=True)
        cv2.imwrite(str(folder / f'img{i:02d}.png'), photo(PHOTOS[i % 6], (64, 64), offset=8 * i))
    return root


def generate(*args):
    """Runs the command in this process."""
    gen.main([str(a) for a in args])


def cli_env():
    return dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')


def run_cli(args, crash_at=None, executable=None):
    """Runs ``python -m undersr.generate`` (or torchrun) in a subprocess; returns the CompletedProcess."""
    env = cli_env()
    if crash_at:
        env[staging.CRASH_ENV] = crash_at
    command = executable or [sys.executable, '-m', 'undersr.generate']
    return subprocess.run([*command, *map(str, args)], env=env, capture_output=True, text=True, timeout=120)


def lmdb_items(path):
    env = lmdb.open(str(path), readonly=True, lock=False)
    with env.begin() as txn:
        items = {bytes(k).decode(): bytes(v) for k, v in txn.cursor()}
    env.close()
    return items


def snapshot(out):
    """Every output file (name -> bytes), after checking that the run is complete."""
    assert os.path.isfile(os.path.join(out, 'manifest.json'))
    assert not os.path.exists(os.path.join(out, '.staging'))
    files = {}
    for folder, _, names in os.walk(out):
        for name in names:
            if name != 'lock.mdb':
                path = os.path.join(folder, name)
                with open(path, 'rb') as f:
                    files[os.path.relpath(path, out)] = f.read()
    return files


def manifest(out):
    with open(os.path.join(out, 'manifest.json')) as f:
        return json.load(f)


def decode(data):
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


def hr_tensor(bgr):
    """(H, W, 3) uint8 BGR → (1, 3, H, W) RGB float in [0, 1], as the Degrader takes it."""
    return torch.from_numpy(bgr[..., ::-1].copy()).permute(2, 0, 1)[None].float() / 255


# --------------------------------------------------------------------------------------- outputs and BasicSR

def test_lmdb_and_folder_outputs_are_the_same_pairs_for_basicsr(tmp_path, hr12, ckpts):
    from basicsr.data.paired_image_dataset import PairedImageDataset

    common = ['--hr', hr12, '--recon', ckpts['a'], '--batch-size', 5, '--workers', 0]
    generate(*common, '--out', tmp_path / 'l')
    generate(*common, '--out', tmp_path / 'f', '--format', 'folder')
    # An LMDB is also an input: the HR images come back unchanged, under the same keys.
    generate('--hr', tmp_path / 'l' / 'gt.lmdb', '--recon', ckpts['a'], '--out', tmp_path / 'again', '--workers', 0,
             '--format', 'folder')
    gc.collect()  # closes the input LMDB (LMDB allows one open environment per file and process)
    for name in os.listdir(tmp_path / 'f' / 'gt'):
        assert (tmp_path / 'again' / 'gt' / name).read_bytes() == (tmp_path / 'f' / 'gt' / name).read_bytes()
    assert manifest(tmp_path / 'again')['samples'][0]['source_file'] == 'first__img00'

    lines = (tmp_path / 'l' / 'gt.lmdb' / 'meta_info.txt').read_text().splitlines()
    assert lines == sorted(lines) and len(lines) == 12
    assert lines[0] == 'first__img00.png (64,64,3) 1'
    assert (tmp_path / 'l' / 'lq.lmdb' / 'meta_info.txt').read_text().splitlines()[0] == 'first__img00.png (16,16,3) 1'

    def dataset(root, backend):
        suffix = '.lmdb' if backend == 'lmdb' else ''
        return PairedImageDataset({'dataroot_gt': str(root / f'gt{suffix}'), 'dataroot_lq': str(root / f'lq{suffix}'),
                                   'io_backend': {'type': backend}, 'phase': 'val', 'scale': 4})

    from_lmdb, from_folder = dataset(tmp_path / 'l', 'lmdb'), dataset(tmp_path / 'f', 'disk')
    assert len(from_lmdb) == len(from_folder) == 12
    by_key = {os.path.splitext(os.path.basename(p['gt_path']))[0]: i for i, p in enumerate(from_folder.paths)}
    for i in range(len(from_lmdb)):
        a = from_lmdb[i]
        b = from_folder[by_key[a['gt_path']]]
        assert torch.equal(a['gt'], b['gt']) and torch.equal(a['lq'], b['lq'])
        assert a['gt'].shape == (3, 64, 64) and a['lq'].shape == (3, 16, 16)

    # The pairs are what the Degrader makes from the HR with the recorded seed.
    record = manifest(tmp_path / 'l')['samples'][7]
    hr_bgr = cv2.imread(str(hr12 / record['source_file']))
    stored = from_lmdb.file_client  # the LMDBs are open in BasicSR's client now; LMDB allows one per process
    assert np.array_equal(decode(stored.get(record['key'], 'gt')), hr_bgr)
    expected = gen.to_bgr_uint8(Degrader([ckpts['a']])(hr_tensor(hr_bgr), [record['seed']])['lq'])[0]
    assert np.array_equal(decode(stored.get(record['key'], 'lq')), expected)


def test_lmdb_map_grows_when_full(tmp_path):
    files = []
    for i in range(3):
        path = tmp_path / f'{i}.png'
        path.write_bytes(os.urandom(50_000))
        files.append((f'k{i}', str(path), (1, 1, 3)))
    writers.write_lmdb(str(tmp_path / 'x.lmdb'), files, map_size=64 << 10)
    assert lmdb_items(tmp_path / 'x.lmdb') == {k: open(f, 'rb').read() for k, f, _ in files}


@pytest.mark.skipif(not os.path.isdir('/proc/self/fd'), reason='names open files through /proc (Linux)')
def test_every_rename_follows_an_fsync_of_its_source_and_precedes_one_of_its_folder(tmp_path, hr12, ckpts,
                                                                                   monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(('fsync', os.readlink(f'/proc/self/fd/{fd}')))
        real_fsync(fd)

    def replace(src, dst):
        events.append(('replace', os.path.realpath(src), os.path.realpath(os.path.dirname(dst))))
        real_replace(src, dst)

    monkeypatch.setattr(os, 'fsync', fsync)
    monkeypatch.setattr(os, 'replace', replace)
    args = ['--hr', hr12, '--recon', ckpts['a'], '--workers', 0, '--batch-size', 5, '--delta-e-every', 0]
    for fmt in ('folder', 'lmdb'):
        out = tmp_path / fmt
        events.clear()
        generate(*args, '--format', fmt, '--out', out)
        renames = [i for i, event in enumerate(events) if event[0] == 'replace']
        # args.json, 12 x (HR, LR) PNGs, 3 chunk records, [2 meta_info.txt], 2 final outputs, manifest.json
        assert len(renames) == 1 + 24 + 3 + (2 if fmt == 'lmdb' else 0) + 2 + 1, events
        for i in renames:  # one writer thread: nothing else fsyncs or renames between these events
            _, src, folder = events[i]
            assert ('fsync', src) in events[:i] and events[i + 1] == ('fsync', folder), events[i - 1:i + 2]
        assert events[renames[-2] + 1] == ('fsync', str(out.resolve()))  # the final outputs are in place

    monkeypatch.setenv('UNDERSR_FSYNC', '0')  # benchmarks only
    events.clear()
    generate(*args, '--format', 'folder', '--out', tmp_path / 'unsynced')
    assert events and not [e for e in events if e[0] == 'fsync']
    assert snapshot(tmp_path / 'unsynced') == snapshot(tmp_path / 'folder')


# ---------------------------------------------------------------------------------- determinism across runs

@pytest.fixture(scope='module')
def reference(tmp_path_factory, hr12, ckpts):
    """An uninterrupted subprocess run: 12 chunks of one image, LMDB output."""
    out = tmp_path_factory.mktemp('ref') / 'out'
    args = ['--hr', hr12, '--recon', ckpts['a'], ckpts['b'], '--batch-size', 1, '--delta-e-every', 1,
            '--color-correct', 'lab-stats', '--workers', 1]
    proc = run_cli([*args, '--out', out])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'img/s' in proc.stderr and 'mean ΔE before correction' in proc.stdout
    return args, snapshot(out)


def records(out):
    folder = os.path.join(out, '.staging', 'chunks')
    return sorted(n for n in os.listdir(folder) if n.endswith('.json')) if os.path.isdir(folder) else []


def test_sigkill_mid_run_then_rerun_equals_uninterrupted_run(tmp_path, reference):
    args, expected = reference
    out = tmp_path / 'out'
    env = cli_env()
    proc = subprocess.Popen([sys.executable, '-m', 'undersr.generate', *map(str, args), '--out', str(out),
                             '--format', 'folder'], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not records(out) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = records(out)
    print(f'killed after {len(done)} of 12 chunks')
    assert 1 <= len(done) < 12 and not (out / 'manifest.json').exists(), done

    # Rerun, killed in the middle of finalisation this time, then once more to the end.
    assert run_cli([*args, '--out', out, '--format', 'folder'], crash_at='finalize').returncode == -signal.SIGKILL
    assert (out / 'gt').is_dir() and not (out / 'lq').exists() and not (out / 'manifest.json').exists()
    proc = run_cli([*args, '--out', out, '--format', 'folder'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = snapshot(out)

    # The same manifest (but for the format), and folder PNGs that are the uninterrupted run's LMDB values.
    ref_manifest, got_manifest = json.loads(expected['manifest.json']), json.loads(got['manifest.json'])
    assert got_manifest['format'] == 'folder' and {**got_manifest, 'format': 'lmdb'} == ref_manifest
    keys = [s['key'] for s in ref_manifest['samples']]
    assert sorted(got) == sorted(['manifest.json'] + [f'{kind}/{k}.png' for kind in ('gt', 'lq') for k in keys])
    ref_dir = tmp_path / 'ref'
    for kind in ('gt', 'lq'):
        (ref_dir / f'{kind}.lmdb').mkdir(parents=True)
        (ref_dir / f'{kind}.lmdb' / 'data.mdb').write_bytes(expected[f'{kind}.lmdb/data.mdb'])
        assert lmdb_items(ref_dir / f'{kind}.lmdb') == {k: got[f'{kind}/{k}.png'] for k in keys}


def test_crash_while_staging_and_while_finalising_then_rerun_is_byte_identical(tmp_path, reference, ckpts):
    args, expected = reference
    out = tmp_path / 'out'
    proc = run_cli([*args, '--out', out], crash_at='files:4')  # chunk 4's PNGs written, its record not
    assert proc.returncode == -signal.SIGKILL
    assert records(out) == [f'c{k:07d}.json' for k in range(4)]
    assert os.listdir(out / '.staging' / 'chunks' / 'c0000004' / 'gt')
    assert run_cli([*args, '--out', out], crash_at='finalize').returncode == -signal.SIGKILL
    assert (out / 'gt.lmdb').is_dir() and not (out / 'lq.lmdb').exists()
    proc = run_cli([*args, '--out', out])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert snapshot(out) == expected  # data.mdb, meta_info.txt and manifest.json


def digests(files):
    """SHA-256 of each file of a :func:`snapshot`."""
    return {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}


def test_other_thread_counts_in_process_give_the_same_bytes(tmp_path, reference, monkeypatch):
    args, expected = reference  # a subprocess with one decode thread
    monkeypatch.setenv('OMP_NUM_THREADS', '1')  # torch's own threads stay as they were (one): not under test
    assert len(expected) == 5  # gt and lq data.mdb and meta_info.txt, manifest.json
    for workers in (0, 3):  # inline decoding with one writer thread; three decode and three writer threads
        generate(*args, '--workers', workers, '--out', tmp_path / f'w{workers}')
        assert digests(snapshot(tmp_path / f'w{workers}')) == digests(expected), workers


@pytest.mark.skipif(TORCHRUN is None, reason='torchrun not found')
def test_two_processes_under_torchrun_equal_one(tmp_path, reference):
    args, expected = reference
    proc = run_cli(['--standalone', '--nproc_per_node', 2, '-m', 'undersr.generate', *args, '--out', tmp_path / 'o'],
                   executable=[TORCHRUN])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'rank 0 of 2' in proc.stderr
    assert snapshot(tmp_path / 'o') == expected


def test_same_seed_same_output_other_seed_other_crops(tmp_path, hr12, ckpts):
    common = ['--hr', hr12, '--recon', ckpts['a'], '--crop', 32, '--crops-per-image', 2, '--workers', 0,
              '--format', 'folder']
    for name, seed in (('x', 0), ('y', 0), ('z', 1)):
        generate(*common, '--seed', seed, '--out', tmp_path / name)
    assert snapshot(tmp_path / 'x') == snapshot(tmp_path / 'y')
    boxes = {name: [s['crop_box'] for s in manifest(tmp_path / name)['samples']] for name in 'xz'}
    assert len(boxes['x']) == 24 and all(b[2:] == [32, 32] for b in boxes['x'])
    assert len({tuple(b) for b in boxes['x']}) > 12  # positions vary between images and crops
    assert sum(a != b for a, b in zip(boxes['x'], boxes['z'])) > 20
    assert manifest(tmp_path / 'x')['samples'][1]['key'] == 'first__img00_s001'


# ------------------------------------------------------------------------------------------ sources, colour

def test_source_choice_follows_weights(ckpts):
    degrader = Degrader([ckpts['a'], ckpts['b']], [3, 1])
    seeds = [gen.sample_seed(0, f'img{i}.png', 0) for i in range(2000)]
    fraction = (degrader.choose(seeds) == 0).float().mean().item()
    assert abs(fraction - 0.75) < 0.03, fraction


def test_mixed_sources_each_lr_is_its_recorded_checkpoint_applied_to_its_hr(tmp_path, hr12, ckpts):
    out = tmp_path / 'o'
    generate('--hr', hr12, '--recon', ckpts['a'], '--recon', ckpts['b'], '--recon-weights', 1, 1, '--workers', 0,
             '--crop', 16, '--crops-per-image', 4, '--format', 'folder', '--out', out, '--delta-e-every', 0)
    m = manifest(out)
    assert [c['name'] for c in m['checkpoints']] == ['VQVAE@ep2', 'VQVAE@ep3'] and m['weights'] == [1.0, 1.0]
    assert [c['path'] for c in m['checkpoints']] == [ckpts['a'], ckpts['b']]
    assert all(len(c['sha256']) == 64 for c in m['checkpoints']) and 'delta_e' not in m['samples'][0]
    used = [s['recon_index'] for s in m['samples']]
    assert len(used) == 48 and min(used.count(0), used.count(1)) >= 10, used  # both sources occur
    assert used == Degrader([ckpts['a'], ckpts['b']], [1, 1]).choose([s['seed'] for s in m['samples']]).tolist()

    singles = [Degrader([c['path']]) for c in m['checkpoints']]
    for sample in m['samples']:
        top, left, h, w = sample['crop_box']
        hr = cv2.imread(str(hr12 / sample['source_file']))[top:top + h, left:left + w]
        assert np.array_equal(cv2.imread(str(out / 'gt' / f'{sample["key"]}.png')), hr)
        lq = [gen.to_bgr_uint8(single(hr_tensor(hr), [sample['seed']])['lq'])[0] for single in singles]
        assert np.abs(lq[0].astype(int) - lq[1]).max() > 8  # the checkpoints differ: a mix-up cannot pass
        assert sample['recon'] == m['checkpoints'][sample['recon_index']]['name']
        stored = cv2.imread(str(out / 'lq' / f'{sample["key"]}.png'))
        assert np.array_equal(stored, lq[sample['recon_index']]), sample


def test_lab_stats_lowers_delta_e_of_a_tinting_network(tmp_path, hr12, ckpts, capsys):
    common = ['--hr', hr12, '--recon', ckpts['tint'], '--delta-e-every', 2, '--workers', 0]
    generate(*common, '--out', tmp_path / 'none')
    generate(*common, '--out', tmp_path / 'lab', '--color-correct', 'lab-stats')
    printed = capsys.readouterr().out
    plain, corrected = manifest(tmp_path / 'none'), manifest(tmp_path / 'lab')
    assert plain['summary']['delta_e_samples'] == 6 and plain['color_correct'] == 'none'
    assert all(s['delta_e']['before'] == s['delta_e']['after'] for s in plain['samples'] if 'delta_e' in s)
    summary = corrected['summary']
    assert summary['mean_delta_e_after'] < 0.7 * summary['mean_delta_e_before'], summary
    assert all(s['delta_e']['after'] < s['delta_e']['before'] for s in corrected['samples'] if 'delta_e' in s)
    assert summary['mean_delta_e_before'] == plain['summary']['mean_delta_e_before']
    assert f'after {summary["mean_delta_e_after"]:.3f}' in printed


# ------------------------------------------------------------------------------------------------ bad input

def test_odd_images_are_converted_skipped_or_trimmed(tmp_path, ckpts):
    hr = tmp_path / 'hr'
    hr.mkdir()
    base = photo('coffee', (67, 70))
    cv2.imwrite(str(hr / 'odd.png'), base)
    cv2.imwrite(str(hr / 'grey.png'), cv2.cvtColor(base, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(hr / 'rgba.png'), cv2.cvtColor(base, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(hr / 'deep.png'), base.astype(np.uint16) * 257)
    cv2.imwrite(str(hr / 'small.png'), base[:40, :50])
    (hr / 'broken.png').write_bytes(cv2.imencode('.png', base)[1].tobytes()[:200])
    (hr / 'empty.jpg').write_bytes(b'')
    out = tmp_path / 'out'
    with pytest.warns(UserWarning) as caught:
        generate('--hr', hr, '--recon', ckpts['a'], '--out', out, '--format', 'folder', '--workers', 1,
                 '--crop', 48, '--crops-per-image', 2)
    messages = '\n'.join(str(w.message) for w in caught)
    for expected in ('grey.png: grey repeated', 'rgba.png: alpha channel dropped', 'deep.png: 16-bit',
                     'skipping broken.png', 'skipping empty.jpg'):
        assert expected in messages, messages
    m = manifest(out)
    assert m['skipped'] == [{'file': 'broken.png', 'reason': 'not a decodable image (corrupt or truncated?)'},
                            {'file': 'empty.jpg', 'reason': 'the file is empty'}]
    boxes = {s['key']: s['crop_box'] for s in m['samples']}
    assert boxes['small_s000'] == [0, 0, 40, 48] and 'small_s001' not in boxes  # used whole, trimmed to x4
    assert sorted(boxes) == sorted(f'{n}_s00{j}' for n in ('deep', 'grey', 'odd', 'rgba') for j in (0, 1)) + [
        'small_s000']
    small = cv2.imread(str(out / 'gt' / 'small_s000.png'), cv2.IMREAD_UNCHANGED)
    assert small.shape == (40, 48, 3) and np.array_equal(small, base[:40, :48])
    assert cv2.imread(str(out / 'lq' / 'small_s000.png'), cv2.IMREAD_UNCHANGED).shape == (10, 12, 3)
    grey = np.repeat(cv2.cvtColor(base, cv2.COLOR_BGR2GRAY)[..., None], 3, axis=2)
    for name, source in (('grey', grey), ('rgba', base), ('deep', base)):
        top, left, h, w = boxes[f'{name}_s001']
        crop = cv2.imread(str(out / 'gt' / f'{name}_s001.png'), cv2.IMREAD_UNCHANGED)
        assert crop.dtype == np.uint8 and np.array_equal(crop, source[top:top + h, left:left + w]), name

    whole = tmp_path / 'whole'
    with pytest.warns(UserWarning) as caught:
        generate('--hr', hr, '--recon', ckpts['a'], '--out', whole, '--format', 'folder', '--workers', 0)
    assert len(caught) == 5  # the same three conversions and two skipped files, with the work done in-process
    assert {s['key']: s['crop_box'] for s in manifest(whole)['samples']}['odd'] == [0, 0, 64, 68]
    assert np.array_equal(cv2.imread(str(whole / 'gt' / 'odd.png')), base[:64, :68])
    assert np.array_equal(cv2.imread(str(whole / 'gt' / 'deep.png')), base[:64, :68])
    assert cv2.imread(str(whole / 'lq' / 'odd.png')).shape == (16, 17, 3)


def test_user_errors_stop_early_with_a_message(tmp_path, hr12, ckpts, capsys):
    def error(*args):
        with pytest.raises(SystemExit) as info:
            generate(*args)
        return str(info.value.code)

    ok = ['--hr', hr12, '--recon', ckpts['a'], '--workers', 0]
    assert 'not found: /no/such/hr' in error('--hr', '/no/such/hr', '--recon', ckpts['a'], '--out', tmp_path / 'o')
    message = error('--hr', hr12, '--recon', tmp_path / 'missing.pth', '--out', tmp_path / 'o')
    assert 'missing.pth' in message and 'not found' in message
    message = error('--hr', hr12, '--recon', ckpts['sr'], '--out', tmp_path / 'o')
    assert 'EDSR_x4.pth is not a reconstruction checkpoint' in message
    (tmp_path / 'file').write_text('x')
    assert 'exists and is not a folder' in error(*ok, '--out', tmp_path / 'file')
    assert 'is a file' in error(*ok, '--out', tmp_path / 'file' / 'sub')
    assert not (tmp_path / 'o').exists()  # nothing was created by the failed runs

    generate(*ok, '--out', tmp_path / 'done')
    message = error(*ok, '--out', tmp_path / 'done', '--seed', 3)
    assert 'other arguments' in message and 'seed: 0 -> 3' in message and 'new --out' in message
    (tmp_path / 'foreign' / 'gt').mkdir(parents=True)
    assert 'already holds gt' in error(*ok, '--out', tmp_path / 'foreign')

    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        gen.parse_args(['--hr', 'x', '--recon', 'y', '--out', 'z', '--crop', '30'])
    assert info.value.code == 2 and '--crop 30 must be a positive multiple of --scale 4' in capsys.readouterr().err


def test_disk_full_keeps_finished_chunks_and_a_rerun_completes(tmp_path, hr12, ckpts, monkeypatch, capsys):
    args = ['--hr', hr12, '--recon', ckpts['a'], '--workers', 0, '--batch-size', 1, '--delta-e-every', 3]
    real, calls = staging.write_atomic, []

    def full_after_two_chunks(path, data):
        calls.append(path)
        if len(calls) == 8:  # args.json, then 3 files per chunk: the first PNG of chunk 2
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        real(path, data)

    monkeypatch.setattr(staging, 'write_atomic', full_after_two_chunks)
    out = tmp_path / 'out'
    with pytest.raises(SystemExit) as info:
        generate(*args, '--out', out)
    message = str(info.value.code)
    assert 'disk is full' in message and 'first__img02.png' in message and 'rerun the same command' in message
    assert records(out) == ['c0000000.json', 'c0000001.json']

    assert 'unfinished run with other arguments' in str(pytest.raises(
        SystemExit, generate, *args, '--out', out, '--scale', 2).value.code)
    monkeypatch.setattr(staging, 'write_atomic', real)
    capsys.readouterr()
    generate(*args, '--out', out)
    assert '10 samples computed here' in capsys.readouterr().out
    generate(*args, '--out', tmp_path / 'clean')
    assert snapshot(out) == snapshot(tmp_path / 'clean')
    generate(*args, '--out', out)
    assert 'already complete, nothing to do' in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------------ keys

def test_keys_are_unique_and_dot_free(tmp_path, ckpts):
    paths = ['a/x.png', 'b/x.png', 'a__x.png', 'x.png', 'x.jpg', 'v1.2/y z.png']
    keys = gen.output_keys(paths)
    assert len(set(keys)) == len(keys) and all(re.fullmatch(r'[A-Za-z0-9_-]+', k) for k in keys)
    assert keys[1] == 'b__x' and keys[5] == 'v1_2__y_z' and keys[0].startswith('a__x-')

    hr = tmp_path / 'hr'
    for rel in paths:
        (hr / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(hr / rel), photo('rocket', (16, 16)))
    generate('--hr', hr, '--recon', ckpts['a'], '--out', tmp_path / 'o', '--workers', 0)
    lines = (tmp_path / 'o' / 'lq.lmdb' / 'meta_info.txt').read_text().splitlines()
    assert len(lines) == 6 and all(line.count('.') == 1 for line in lines)
    assert len(lmdb_items(tmp_path / 'o' / 'gt.lmdb')) == 6


def test_meta_info_source_and_cli_dispatch(tmp_path, hr12, ckpts, capsys):
    meta = tmp_path / 'meta_info.txt'
    meta.write_text('second/img07.png (64,64,3) 1\nfirst/img01.png (64,64,3) 1\n')
    cli.main(['generate', '--hr', str(meta), '--hr-root', str(hr12), '--recon', ckpts['a'],
              '--out', str(tmp_path / 'o'), '--workers', '0', '--format', 'folder'])
    assert sorted(os.listdir(tmp_path / 'o' / 'lq')) == ['first__img01.png', 'second__img07.png']
    with pytest.raises(SystemExit) as info:
        cli.main(['--help'])
    assert info.value.code == 0 and 'generate' in capsys.readouterr().out
    with pytest.raises(SystemExit, match='--hr not found'):
        cli.main(['generate', '--hr', str(tmp_path / 'nope'), '--recon', ckpts['a'], '--out', str(tmp_path / 'p')])


def test_strength_blends_each_lr_with_its_seed_and_is_recorded(tmp_path, hr12, ckpts, capsys):
    out = tmp_path / 's'
    generate('--hr', hr12, '--recon', ckpts['a'], '--strength', 0.5, '--workers', 0, '--crop', 16,
             '--format', 'folder', '--out', out, '--delta-e-every', 0)
    m = manifest(out)
    assert m['strength'] == 0.5
    degrader, full = Degrader([ckpts['a']], strength=0.5), Degrader([ckpts['a']])
    for sample in m['samples']:
        top, left, h, w = sample['crop_box']
        hr = hr_tensor(cv2.imread(str(hr12 / sample['source_file']))[top:top + h, left:left + w])
        stored = cv2.imread(str(out / 'lq' / f'{sample["key"]}.png'))
        assert np.array_equal(stored, gen.to_bgr_uint8(degrader(hr, [sample['seed']])['lq'])[0]), sample
        assert not np.array_equal(stored, gen.to_bgr_uint8(full(hr, [sample['seed']])['lq'])[0]), sample
    with pytest.raises(SystemExit, match='strength'):  # another strength into the same folder is refused, not mixed
        generate('--hr', hr12, '--recon', ckpts['a'], '--strength', 0.25, '--workers', 0, '--crop', 16,
                 '--format', 'folder', '--out', out, '--delta-e-every', 0)
    with pytest.raises(SystemExit):
        generate('--hr', hr12, '--recon', ckpts['a'], '--strength', 2, '--out', tmp_path / 'bad')
    assert '--strength must be in (0, 1]' in capsys.readouterr().err
