"""On-the-fly undertrained degradation: in DataLoader workers, and in UndertrainedSRModel.feed_data."""
import os
import shutil

import undersr.data  # noqa: F401
import undersr.models  # noqa: F401

import pytest
import torch
import yaml
from basicsr.data import build_dataloader, build_dataset
from basicsr.models import build_model

TINY_HAT = {'embed_dim': 16, 'depths': [1], 'num_heads': [2], 'window_size': 4, 'squeeze_factor': 4,
            'img_size': 16}


def otf_dataset_opt(sample_pairs, recon):
    return {'type': 'UndertrainedDegradationDataset', 'name': 'otf', 'phase': 'train', 'scale': 4,
            'dataroot_gt': str(sample_pairs / 'gt'), 'io_backend': {'type': 'disk'}, 'gt_size': 32,
            'use_hflip': True, 'use_rot': False, 'batch_size_per_gpu': 2, 'num_worker_per_gpu': 2,
            'dataset_enlarge_ratio': 1, 'degradation': {'recon': [str(recon)], 'color_correct': 'lab-stats'}}


def test_dataset_degrades_in_workers(sample_pairs, tiny_recon):
    dataset = build_dataset(otf_dataset_opt(sample_pairs, tiny_recon))
    loader = build_dataloader(dataset, otf_dataset_opt(sample_pairs, tiny_recon), num_gpu=0, dist=False,
                              sampler=None, seed=0)
    batch = next(iter(loader))
    assert batch['gt'].shape == (2, 3, 32, 32) and batch['lq'].shape == (2, 3, 8, 8)
    assert batch['lq'].device.type == 'cpu' and batch['lq'].dtype == torch.float32
    assert 0 <= batch['lq'].min() and batch['lq'].max() <= 1
    assert batch['source'].tolist() == [0, 0]


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
    model = build_model(model_opt(tmp_path, tiny_recon))
    gt = torch.rand(3, 3, 32, 32)
    model.feed_data({'gt': gt})
    assert model.lq.shape == (3, 3, 8, 8) and model.lq.device == model.device
    assert not torch.equal(model.lq, model.lq_clean)  # the untrained network changes the image
    model.optimize_parameters(1)
    assert os.path.isfile(tmp_path / 'vis' / 'train_lq' / '1.png')

    model.degrade_on_feed = False  # validation: the dataset's own lq is used
    lq = torch.rand(1, 3, 8, 8)
    model.feed_data({'lq': lq, 'gt': torch.rand(1, 3, 32, 32)})
    assert torch.equal(model.lq, lq)


def hat_option(workdir, name, force):
    """Writes a copy of options/<name>.yml with tiny HAT dimensions and local paths; returns its path."""
    with open(workdir / 'options' / f'{name}.yml') as f:
        opt = yaml.safe_load(f)
    opt['network_g'].update(TINY_HAT)
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
    torch.save({'params_ema': build_network(opt['network_g']).state_dict()}, path)


def tiny_otf_option(workdir, recon, iters, val_freq):
    """The HAT on-the-fly option, tiny, on the sample pairs with ``recon``, and its stand-in pretrained weights."""
    shutil.copy(recon, workdir / 'recon.pth')
    option = hat_option(workdir, 'finetune_hat_vqvae2_otf', {
        'datasets:train:dataroot_gt': 'datasets/sample/gt', 'datasets:train:gt_size': 32,
        'datasets:train:batch_size_per_gpu': 1, 'datasets:train:num_worker_per_gpu': 0,
        'datasets:val:dataroot_gt': 'datasets/sample/gt', 'datasets:val:dataroot_lq': 'datasets/sample/lq',
        'degradation:recon': ['recon.pth'], 'train:total_iter': iters, 'val:val_freq': val_freq,
        'logger:save_checkpoint_freq': iters, 'logger:use_tb_logger': False, 'save_lq_every': iters})
    save_random_pretrained(workdir, option)
    return option


def test_hat_otf_option_fine_tunes_three_iterations(workdir, run_py, tiny_recon):
    option = tiny_otf_option(workdir, tiny_recon, iters=3, val_freq=3)
    run_py(['train.py', '-opt', option], cwd=workdir)
    root = workdir / 'experiments' / 'finetune_HAT_SRx4_VQVAE2_ep8_otf'
    assert os.path.isfile(root / 'models' / 'net_g_3.pth')
    assert os.path.isfile(root / 'visualization' / 'train_lq' / '3.png')


def test_hat_lmdb_option_fine_tunes_three_iterations(workdir, run_py, sample_pairs):
    from basicsr.utils.lmdb_util import make_lmdb_from_imgs
    names = sorted(os.listdir(sample_pairs / 'gt'))
    for sub in ('gt', 'lq'):
        make_lmdb_from_imgs(str(sample_pairs / sub), str(workdir / f'{sub}.lmdb'), names, [n[:-4] for n in names],
                            map_size=1 << 24)
    option = hat_option(workdir, 'finetune_hat_vqvae2', {
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
    option = tiny_otf_option(workdir, tiny_recon, iters=2, val_freq=100)
    proc = run_py(['--nproc_per_node', '2', '--master_port', '29653', 'train.py', '-opt', option, '--launcher',
                   'pytorch'], cwd=workdir, executable=(shutil.which('torchrun'), ))
    assert 'World size (gpu number): 2' in proc.stdout + proc.stderr
    root = workdir / 'experiments' / 'finetune_HAT_SRx4_VQVAE2_ep8_otf'
    assert os.path.isfile(root / 'models' / 'net_g_2.pth')
