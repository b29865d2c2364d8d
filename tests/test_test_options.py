"""Benchmark test options, SuffixPairedImageDataset, TiledSRModel and the offline LPIPS metric."""
import glob
import os
from copy import deepcopy

import undersr  # noqa: F401  (registers with BasicSR; first: the torchvision shim)
from undersr import lpips_metric
from undersr.analysis.compare import find_test_log, parse_test_log
from undersr.cli import compare as cli_compare
from undersr.resize import bicubic_downsample
from undersr.sample_data import load

import cv2
import numpy as np
import pytest
import torch
import yaml
from basicsr.data import build_dataset
from basicsr.models import build_model
from basicsr.utils.options import ordered_yaml
from basicsr.utils.registry import ARCH_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY
from conftest import ROOT

# NTIRE 2020 Track 2 has no ground truth (SingleImageDataset, NIQE only): tests/test_reproduce.py checks those files.
TEST_OPTIONS = sorted(p for p in glob.glob(os.path.join(ROOT, 'options', 'test', 'test_*.yml'))
                      if not p.endswith('_ntire2020_track2.yml'))
BENCHMARK_OPTIONS = [p for p in TEST_OPTIONS if not p.endswith('_tiny_cpu.yml')]
FINETUNE = {'hat': 'finetune_hat_vqvae2.yml', 'swinir': 'finetune_swinir_vqvae2.yml',
            'edsr': 'finetune_edsr_vqvae2.yml', 'esrgan': 'finetune_esrgan_gan_vqvae2.yml'}


def _load(path):
    with open(path) as f:
        return yaml.load(f, Loader=ordered_yaml()[0])


def _write(path, bgr):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), bgr)


def _make_benchmark_files(dataset_opt, root, size=32, scale=4, stems=('0801', '0802')):
    """Writes two tiny HR/LR pairs named the way the dataset's benchmark names them, under ``root``."""
    hr = cv2.cvtColor(load('astronaut')[:size, :size], cv2.COLOR_RGB2BGR)
    lr = bicubic_downsample(hr, scale)
    for stem in stems:
        if dataset_opt['type'] == 'SuffixPairedImageDataset':
            gt_name, lq_name = f'{stem}{dataset_opt["gt_suffix"]}.png', f'{stem}{dataset_opt["lq_suffix"]}.png'
        else:
            gt_name = f'{stem}.png'
            lq_name = f'{dataset_opt.get("filename_tmpl", "{}").format(stem)}.png'
        _write(os.path.join(root, dataset_opt['dataroot_gt'], gt_name), hr)
        _write(os.path.join(root, dataset_opt['dataroot_lq'], lq_name), lr)


def test_there_is_an_option_per_backbone_and_benchmark():
    names = {os.path.basename(p) for p in BENCHMARK_OPTIONS}
    assert names == {f'test_{b}_{k}.yml' for b in FINETUNE for k in ('ntire2018_track3', 'realsr', 'drealsr')}


@pytest.mark.parametrize('option', TEST_OPTIONS, ids=os.path.basename)
def test_option_parses_and_builds_datasets(option, tmp_path):
    opt = _load(option)
    assert MODEL_REGISTRY.get(opt['model_type']) and ARCH_REGISTRY.get(opt['network_g']['type'])
    for metric in opt['val']['metrics'].values():
        assert METRIC_REGISTRY.get(metric['type'])
    for phase, dataset_opt in opt['datasets'].items():
        dataset_opt = deepcopy(dataset_opt)
        _make_benchmark_files(dataset_opt, tmp_path)
        dataset_opt['phase'], dataset_opt['scale'] = phase.split('_')[0], opt['scale']  # as BasicSR's parse_options
        for key in ('dataroot_gt', 'dataroot_lq'):
            dataset_opt[key] = str(tmp_path / dataset_opt[key])
        dataset = build_dataset(dataset_opt)
        assert len(dataset) == 2
        item = dataset[0]
        assert item['gt'].shape == (3, 32, 32) and item['lq'].shape == (3, 8, 8)
        assert os.path.basename(item['gt_path'])[:4] in ('0801', '0802')
    if option in BENCHMARK_OPTIONS:
        backbone = os.path.basename(option).split('_')[1]
        finetune = _load(os.path.join(ROOT, 'options', FINETUNE[backbone]))
        assert opt['network_g'] == finetune['network_g']  # the network of the fine-tune options
        assert opt['path']['pretrain_network_g'] == f'experiments/{finetune["name"]}/models/net_g_latest.pth'
        assert opt['model_type'] == ('HATModel' if backbone == 'hat' else 'TiledSRModel')  # HAT's own, as upstream
        assert opt['tile'] == {'tile_size': 256, 'tile_pad': 16}
        assert set(opt['val']['metrics']) == {'psnr', 'ssim', 'lpips', 'niqe'}


def test_suffix_dataset_rejects_unpaired_files(tmp_path):
    opt = {'name': 'x', 'type': 'SuffixPairedImageDataset', 'dataroot_gt': 'x', 'dataroot_lq': 'x', 'gt_suffix': '_HR',
           'lq_suffix': '_LR4', 'io_backend': {'type': 'disk'}}
    _make_benchmark_files(opt, tmp_path, stems=('Canon_001', 'Canon_002'))
    os.remove(tmp_path / 'x' / 'Canon_002_LR4.png')
    opt.update(dataroot_gt=str(tmp_path / 'x'), dataroot_lq=str(tmp_path / 'x'), phase='test', scale=4)
    with pytest.raises(ValueError, match='without a partner'):
        build_dataset(dict(opt))
    assert len(build_dataset(dict(opt, strict=False))) == 1


# ------------------------------------------------------------------------------------------------- tiling

def _model(network_g, tile=None):
    opt = {'name': 'tiled', 'model_type': 'TiledSRModel', 'scale': network_g.get('upscale', 4), 'num_gpu': 0,
           'is_train': False, 'dist': False, 'network_g': network_g, 'path': {'pretrain_network_g': None}}
    if tile is not None:
        opt['tile'] = tile
    torch.manual_seed(0)
    return build_model(opt)


def test_tiled_equals_untiled_for_edsr():
    edsr = {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 2, 'upscale': 4,
            'res_scale': 1, 'img_range': 255., 'rgb_mean': [0.4488, 0.4371, 0.4040]}
    whole, tiled = _model(edsr), _model(edsr, {'tile_size': 16, 'tile_pad': 10})
    tiled.net_g.load_state_dict(whole.net_g.state_dict())
    lq = torch.rand(1, 3, 37, 50)
    for model in (whole, tiled):
        model.feed_data({'lq': lq})
        model.test()
    assert tiled.output.shape == (1, 3, 148, 200)
    torch.testing.assert_close(tiled.output, whole.output, rtol=0, atol=1e-5)
    # With too little context the seams differ: the comparison above is not trivially true.
    narrow = _model(edsr, {'tile_size': 16, 'tile_pad': 0})
    narrow.net_g.load_state_dict(whole.net_g.state_dict())
    narrow.feed_data({'lq': lq})
    narrow.test()
    assert (narrow.output - whole.output).abs().max() > 1e-3


def test_tiled_hat_and_swinir_shapes():
    hat = dict(type='HAT', upscale=4, in_chans=3, img_size=16, window_size=4, compress_ratio=2, squeeze_factor=4,
               conv_scale=0.01, overlap_ratio=0.5, img_range=1., depths=[1], embed_dim=16, num_heads=[2],
               mlp_ratio=2, upsampler='pixelshuffle', resi_connection='1conv')
    swinir = dict(type='SwinIR', upscale=4, in_chans=3, img_size=16, window_size=4, img_range=1., depths=[1],
                  embed_dim=12, num_heads=[2], mlp_ratio=2, upsampler='pixelshuffle', resi_connection='1conv')
    for network_g in (hat, swinir):
        model = _model(network_g, {'tile_size': 12, 'tile_pad': 3})
        assert model.pad_multiple == 4
        model.feed_data({'lq': torch.rand(1, 3, 21, 30)})  # not a multiple of the tile or the window
        model.test()
        assert model.output.shape == (1, 3, 84, 120) and torch.isfinite(model.output).all()


# ------------------------------------------------------------------------------------------------- LPIPS

@pytest.fixture
def no_downloads(monkeypatch):
    """Makes every download path of torch, torchvision and urllib raise."""
    import urllib.request

    import torchvision.models._api as tv_api

    def refuse(*args, **kwargs):
        raise AssertionError(f'a download was attempted: {args[:1]}')

    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', refuse)
    monkeypatch.setattr(torch.hub, 'download_url_to_file', refuse)
    monkeypatch.setattr(tv_api, 'load_state_dict_from_url', refuse)
    monkeypatch.setattr(urllib.request, 'urlopen', refuse)


def test_lpips_offline_with_local_alexnet_weights(tmp_path, no_downloads, caplog):
    import torchvision

    torch.manual_seed(0)
    weights = tmp_path / 'alexnet-owt-7be5be79.pth'
    # The LPIPS backbone uses only AlexNet's `features`; saving just those keeps the file small (10 MB, not 240).
    full = torchvision.models.alexnet().state_dict()
    torch.save({k: v for k, v in full.items() if k.startswith('features.')}, weights)
    lpips_metric._CACHE.clear()
    calc = METRIC_REGISTRY.get('calculate_lpips')
    img = cv2.cvtColor(load('astronaut')[:64, :64], cv2.COLOR_RGB2BGR)
    noisy = np.clip(img.astype(np.float64) + np.random.default_rng(0).normal(0, 25, img.shape), 0, 255)
    same = calc(img, img.copy(), crop_border=4, weights=str(weights))
    differ = calc(noisy.astype(np.uint8), img, crop_border=4, weights=str(weights), better='lower')
    assert same == pytest.approx(0, abs=1e-6) and differ > same
    model = lpips_metric._CACHE[next(iter(lpips_metric._CACHE))]
    torch.testing.assert_close(model.net.slice1[0].weight, full['features.0.weight'])  # really loaded

    # No weights: nan, and one notice however often it is called.
    missing = str(tmp_path / 'absent.pth')
    with caplog.at_level('WARNING'):
        values = [calc(img, img, crop_border=4, weights=missing) for _ in range(3)]
    assert all(np.isnan(v) for v in values)
    assert sum('LPIPS skipped' in r.getMessage() for r in caplog.records) <= 1


# ------------------------------------------------------------------------------------------ test.py end to end

def test_test_py_runs_realsr_option_with_tiny_edsr_then_compare(workdir, run_py, monkeypatch):
    opt = _load(workdir / 'options' / 'test' / 'test_edsr_realsr.yml')
    opt['network_g'].update(num_feat=8, num_block=1)  # tiny dims, same structure
    opt['tile'] = {'tile_size': 16, 'tile_pad': 8}
    opt['val']['pbar'] = False
    for dataset_opt in opt['datasets'].values():
        camera = dataset_opt['name'].split('_')[1]
        root = workdir / dataset_opt['dataroot_gt']
        root.mkdir(parents=True)
        for i, name in enumerate(('astronaut', 'coffee')):
            # 200²: BasicSR's NIQE needs at least two 96² blocks after the 4-pixel border crop
            hr = cv2.cvtColor(load(name)[40:240, 60 + 40 * i:260 + 40 * i], cv2.COLOR_RGB2BGR)
            _write(str(root / f'{camera}_00{i + 1}_HR.png'), hr)
            _write(str(root / f'{camera}_00{i + 1}_LR4.png'), bicubic_downsample(hr, 4))
    ckpt = workdir / opt['path']['pretrain_network_g']
    ckpt.parent.mkdir(parents=True)
    network_g = dict(opt['network_g'])
    torch.manual_seed(0)
    torch.save({'params': ARCH_REGISTRY.get(network_g.pop('type'))(**network_g).state_dict()}, ckpt)
    option = workdir / 'options' / 'test' / 'test_edsr_realsr_tiny.yml'
    with open(option, 'w') as f:
        yaml.dump(opt, f, Dumper=ordered_yaml()[1])

    proc = run_py(['test.py', '-opt', option.relative_to(workdir)], cwd=workdir)
    log = find_test_log(str(workdir / 'results' / 'test_edsr_realsr'))
    metrics = parse_test_log(log)
    assert set(metrics) == {'RealSR_Canon', 'RealSR_Nikon'}
    for values in metrics.values():
        assert set(values) == {'psnr', 'ssim', 'lpips', 'niqe'}
        assert 5 < values['psnr'] < 60 and 0 < values['ssim'] <= 1 and values['niqe'] > 0
        assert np.isnan(values['lpips'])  # no AlexNet weights in the work dir
    text = open(log).read() + proc.stdout + proc.stderr
    assert 'LPIPS skipped' in text and 'Number of test images in RealSR_Canon: 2' in text

    # `undersr compare` on this result and, through --benchmark, on two more checkpoints run by BasicSR's pipeline.
    other = ckpt.parent / 'net_g_other.pth'
    torch.manual_seed(1)
    torch.save({'params': ARCH_REGISTRY.get('EDSR')(**network_g).state_dict()}, other)
    monkeypatch.chdir(workdir)
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    cli_compare.main(['results/test_edsr_realsr', '--benchmark', str(option), '--checkpoints', str(ckpt), str(other),
                  '--labels', 'first', 'same weights', 'other weights', '--baseline', 'first', '--out', 'cmp'])
    rows = {line.split(' | ')[1]: line for line in (workdir / 'cmp' / 'compare.md').read_text().splitlines()
            if line.startswith('| ') and not line.startswith('| rank')}
    assert set(rows) == {'first (baseline)', 'same weights', 'other weights'}
    assert '(+0.00)' in rows['same weights']  # the same checkpoint again: no difference from the baseline
    assert (workdir / 'results' / 'test_edsr_realsr__other_weights').is_dir()
