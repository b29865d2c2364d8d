"""On-the-fly undertrained degradation: in DataLoader workers, and in UndertrainedSRModel.feed_data."""
import os
import random
import shutil

import undersr  # noqa: F401  (registers with BasicSR; first: the torchvision shim)

import cv2
import numpy as np
import pytest
import torch
import yaml
from basicsr.data import build_dataloader, build_dataset
from basicsr.models import build_model


def otf_dataset_opt(sample_pairs, recon):
    return {'type': 'UndertrainedDegradationDataset', 'name': 'otf', 'phase': 'train', 'scale': 4,
            'dataroot_gt': str(sample_pairs / 'gt'), 'io_backend': {'type': 'disk'}, 'gt_size': 32,
            'use_hflip': True, 'use_rot': False, 'batch_size_per_gpu': 2, 'num_worker_per_gpu': 2,
            'dataset_enlarge_ratio': 1, 'degradation': {'recon': [str(recon)], 'color_correct': 'lab-stats'}}


def test_dataset_degrades_in_workers_exactly_as_the_degrader(sample_pairs, tiny_recon, tiny_recon_b):
    """Each worker-made lq equals Degrader(gt) for the sample's own seed, with the source that seed picks."""
    from undersr.degrade import Degrader
    opt = otf_dataset_opt(sample_pairs, tiny_recon)
    opt.update(batch_size_per_gpu=3)
    opt['degradation'].update(recon=[str(tiny_recon), str(tiny_recon_b)], strength=0.7)  # every Degrader key
    loader = build_dataloader(build_dataset(opt), opt, num_gpu=0, dist=False, sampler=None, seed=0)
    batches = [b for _ in range(3) for b in loader]  # three epochs of the three photos
    batch = {k: torch.cat([b[k] for b in batches]) for k in ('gt', 'lq', 'source', 'seed')}
    assert batch['gt'].shape == (9, 3, 32, 32) and batch['lq'].shape == (9, 3, 8, 8)
    assert batch['lq'].device.type == 'cpu' and batch['lq'].dtype == torch.float32
    assert set(batch['source'].tolist()) == {0, 1}  # both sources occur
    reference = Degrader(**opt['degradation'], scale=4)
    seeds = batch['seed'].tolist()
    assert len(set(seeds)) == 9  # new degradations every epoch, not the same seeds again
    assert torch.equal(reference.choose(seeds), batch['source'])
    torch.testing.assert_close(reference(batch['gt'], seeds)['lq'], batch['lq'], atol=1e-5, rtol=0)
    alone = Degrader([opt['degradation']['recon'][0]], color_correct='lab-stats', scale=4)(batch['gt'], seeds)['lq']
    assert not torch.allclose(alone, batch['lq'], atol=1e-3)  # a source mix-up would show


def model_opt(tmp_path, recon):
    return {
        'model_type': 'UndertrainedSRModel', 'scale': 4, 'num_gpu': 0, 'dist': False, 'is_train': True, 'rank': 0,
        'world_size': 1, 'save_lq_every': 1,
        'degradation': {'recon': [str(recon), str(recon)], 'weights': [1, 1]},
        'network_g': {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 1, 'upscale': 4},
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None,
                 'visualization': str(tmp_path / 'vis'), 'models': str(tmp_path), 'training_states': str(tmp_path)},
        'train': {'ema_decay': 0, 'optim_g': {'type': 'Adam', 'lr': 1e-4},
                  'scheduler': {'type': 'MultiStepLR', 'milestones': [10], 'gamma': 0.5}, 'total_iter': 1,
                  'pixel_opt': {'type': 'L1Loss'}},
    }


def test_model_degrades_batches_on_its_device_and_dumps_pairs(tmp_path, tiny_recon):
    opt = model_opt(tmp_path, tiny_recon)
    opt['degradation']['strength'] = 0.5
    model = build_model(opt)
    gt = torch.rand(3, 3, 32, 32)
    model.feed_data({'gt': gt})
    assert model.lq.shape == (3, 3, 8, 8) and model.lq.device == model.device
    assert not torch.equal(model.lq, model.lq_clean)  # the untrained network changes the image
    assert model.degrader.strength == 0.5  # the options' degradation block is Degrader's arguments
    model.optimize_parameters(1)
    assert os.path.isfile(tmp_path / 'vis' / 'train_lq' / '1.png')

    model.degrade_on_feed = False  # validation: the dataset's own lq is used
    lq = torch.rand(1, 3, 8, 8)
    model.feed_data({'lq': lq, 'gt': torch.rand(1, 3, 32, 32)})
    assert torch.equal(model.lq, lq)


def test_lq_noise_adds_the_pretraining_noise_after_the_degradation(tmp_path, tiny_recon):
    """lq_noise: the degraded lq of the same seeds plus Gaussian noise of the asked σ, in 8-bit steps."""
    gt = torch.rand(8, 3, 32, 32)
    lqs = {}
    for noise in (None, {'noise_prob': 1, 'noise_range': [12, 12]}):
        opt = model_opt(tmp_path, tiny_recon)
        if noise:
            opt['lq_noise'] = noise
        model = build_model(opt)
        random.seed(0)  # the Degrader's per-sample seeds
        model.feed_data({'gt': gt})
        lqs[bool(noise)] = model.lq
    residual = (lqs[True] - lqs[False].clamp(0, 1)) * 255
    assert 10 < residual.std() < 14
    assert torch.allclose(lqs[True] * 255, (lqs[True] * 255).round(), atol=1e-3)

    opt = model_opt(tmp_path, tiny_recon)
    opt['lq_noise'] = {'noise_prob': 2, 'noise_range': [0, 4]}
    with pytest.raises(ValueError, match='UndertrainedSRModel lq_noise: noise_prob must be in'):
        build_model(opt)


def tiny_option(workdir, name, force):
    """Writes a copy of options/<name>.yml with tiny network dimensions and ``force``d keys; returns its path."""
    from test_finetune_options import TINY
    with open(workdir / 'options' / f'{name}.yml') as f:
        opt = yaml.safe_load(f)
    opt['network_g'].update(TINY[opt['network_g']['type']])
    for key, value in force.items():
        section, _, leaf = key.rpartition(':')
        target = opt
        for part in section.split(':') if section else []:
            target = target[part]
        target[leaf] = value
    path = workdir / 'options' / f'{name}_tiny.yml'
    path.write_text(yaml.safe_dump(opt))
    return path


def save_random_pretrained(workdir, option):
    """Stands in for the official file named by the option: a randomly initialised network of its config."""
    from basicsr.archs import build_network
    opt = yaml.safe_load(option.read_text())
    path = workdir / opt['path']['pretrain_network_g']
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save({'params_ema': build_network(opt['network_g']).state_dict()}, path)
    return path


def tiny_otf_option(workdir, recon, iters, val_freq, name='finetune_hat_vqvae2_otf'):
    """An on-the-fly option, tiny, on the sample pairs with ``recon``, and its stand-in pretrained weights."""
    shutil.copy(recon, workdir / 'recon.pth')
    option = tiny_option(workdir, name, {
        'datasets:train:dataroot_gt': 'datasets/sample/gt', 'datasets:train:gt_size': 32,
        'datasets:train:batch_size_per_gpu': 1, 'datasets:train:num_worker_per_gpu': 0,
        'datasets:val:dataroot_gt': 'datasets/sample/gt', 'datasets:val:dataroot_lq': 'datasets/sample/lq',
        'degradation:recon': ['recon.pth'], 'train:total_iter': iters, 'val:val_freq': val_freq,
        'logger:save_checkpoint_freq': iters, 'logger:print_freq': 1, 'logger:use_tb_logger': False,
        'save_lq_every': iters})
    return option, save_random_pretrained(workdir, option)


@pytest.mark.parametrize('name', ['finetune_hat_vqvae2_otf', 'finetune_edsr_vqvae2_otf', 'finetune_swinir_vqvae2_otf',
                                  'finetune_esrgan_vqvae2_otf'])
def test_otf_option_fine_tunes_two_iterations_on_degraded_lq(workdir, run_py, tiny_recon, name):
    """Each shipped on-the-fly option, tiny, through train.py: it loads the pretrained weights, trains them on
    lq that the degradation changed, validates, and dumps the pairs it trained on."""
    option, pretrained = tiny_otf_option(workdir, tiny_recon, iters=2, val_freq=2, name=name)
    proc = run_py(['train.py', '-opt', option], cwd=workdir)
    log = proc.stdout + proc.stderr
    assert os.path.basename(pretrained) in log and 'l_pix' in log and '# psnr' in log
    root = workdir / 'experiments' / yaml.safe_load(option.read_text())['name']
    start = torch.load(pretrained, weights_only=True)['params_ema']
    trained = torch.load(root / 'models' / 'net_g_2.pth', weights_only=True)['params']
    assert trained.keys() == start.keys()
    assert any(not torch.equal(trained[k], start[k]) for k in start)  # the weights moved
    grid = cv2.imread(str(root / 'visualization' / 'train_lq' / '2.png'))  # gt | bicubic | degraded, 128² cells
    bicubic, degraded = grid[20:148, 130:258], grid[20:148, 260:388]  # below the 20-pixel label band
    assert np.abs(bicubic.astype(int) - degraded).mean() > 1  # the model trained on degraded, not bicubic, lq


def test_hat_lmdb_option_fine_tunes_three_iterations(workdir, run_py, sample_pairs):
    from basicsr.utils.lmdb_util import make_lmdb_from_imgs
    names = sorted(os.listdir(sample_pairs / 'gt'))
    for sub in ('gt', 'lq'):
        make_lmdb_from_imgs(str(sample_pairs / sub), str(workdir / f'{sub}.lmdb'), names, [n[:-4] for n in names],
                            map_size=1 << 24)
    option = tiny_option(workdir, 'finetune_hat_vqvae2', {
        'datasets:train:dataroot_gt': 'gt.lmdb', 'datasets:train:dataroot_lq': 'lq.lmdb',
        'datasets:train:gt_size': 32, 'datasets:train:batch_size_per_gpu': 1,
        'datasets:train:num_worker_per_gpu': 0, 'datasets:val:dataroot_gt': 'datasets/sample/gt',
        'datasets:val:dataroot_lq': 'datasets/sample/lq', 'train:total_iter': 3, 'val:val_freq': 3,
        'logger:save_checkpoint_freq': 3, 'logger:use_tb_logger': False})
    save_random_pretrained(workdir, option)
    proc = run_py(['train.py', '-opt', option], cwd=workdir)
    assert os.path.isfile(workdir / 'experiments' / 'finetune_HAT_SRx4_VQVAE2_ep8' / 'models' / 'net_g_3.pth')
    assert 'HAT_SRx4_ImageNet-pretrain.pth' in proc.stdout + proc.stderr  # the pretrained file was loaded


def test_realesrgan_mixes_in_per_sample(tmp_path, sample_pairs, tiny_recon):
    """realesrgan_prob: BasicSR's second-order pipeline as one more source, chosen per sample."""
    import random

    from test_basicsr_fixes import REALESRNET_DATA, realesrnet_opt
    meta = tmp_path / 'meta_info.txt'
    meta.write_text('astronaut.png\ncoffee.png\nchelsea.png\n')
    dataset = build_dataset(dict(REALESRNET_DATA, dataroot_gt=str(sample_pairs / 'gt'), meta_info=str(meta)))
    batch = torch.utils.data.default_collate([dataset[i % 3] for i in range(8)])
    opt = dict(realesrnet_opt(tmp_path), model_type='UndertrainedSRModel', realesrgan_prob=0.5,
               degradation={'recon': [str(tiny_recon)]})
    opt['path']['visualization'] = str(tmp_path / 'vis')
    model = build_model(opt)
    random.seed(0)
    model.feed_data(batch)
    assert model.lq.shape == (8, 3, 16, 16) and model.gt.shape == (8, 3, 64, 64)
    assert set(model.lq_source) == {'realesrgan', 'VQVAE2@ep1'}
    ours = [i for i, s in enumerate(model.lq_source) if s != 'realesrgan']
    torch.testing.assert_close(model.lq[ours], model.degrader(model.gt[ours], [0] * len(ours))['lq'],
                               atol=1e-5, rtol=0)  # the deterministic VQ-VAE-2 ignores the seed
    model.optimize_parameters(1)


@pytest.mark.skipif(shutil.which('torchrun') is None, reason='torchrun not on PATH')
def test_hat_otf_option_under_torchrun(workdir, run_py, tiny_recon):
    """UndertrainedSRModel under --launcher pytorch: two CPU processes (gloo) each degrade their own batch."""
    option, _ = tiny_otf_option(workdir, tiny_recon, iters=2, val_freq=100)
    proc = run_py(['--nproc_per_node', '2', '--master_port', '29653', 'train.py', '-opt', option, '--launcher',
                   'pytorch'], cwd=workdir, executable=(shutil.which('torchrun'), ))
    assert 'World size (gpu number): 2' in proc.stdout + proc.stderr
    root = workdir / 'experiments' / 'finetune_HAT_SRx4_VQVAE2_ep8_otf'
    assert os.path.isfile(root / 'models' / 'net_g_2.pth')
