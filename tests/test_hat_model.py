"""HAT's own option files (XPixelGroup/HAT) run through our train.py and test.py.

The YAML below is written for this test in the shape of HAT's ``train_HAT_SRx4_finetune_from_ImageNet_pretrain.yml``
and ``HAT_SRx4_ImageNet-pretrain.yml`` (same sections and keys, ``model_type: HATModel``, ``num_gpu: auto`` / ``1``,
``nccl``, the tensorboard logger), with only what a user edits changed: data paths, ``pretrain_network_g`` and
the tiny dimensions that keep the test fast.
"""
import os

import undersr  # noqa: F401  (registers with BasicSR; first: the torchvision shim)
from undersr.models.hat_model import HATModel

import pytest
import torch
import yaml
from basicsr.archs import build_network
from basicsr.utils.registry import MODEL_REGISTRY

TINY_HAT = {'type': 'HAT', 'upscale': 4, 'in_chans': 3, 'img_size': 16, 'window_size': 4, 'compress_ratio': 3,
            'squeeze_factor': 3, 'conv_scale': 0.01, 'overlap_ratio': 0.5, 'img_range': 1., 'depths': [1],
            'embed_dim': 12, 'num_heads': [2], 'mlp_ratio': 2, 'upsampler': 'pixelshuffle', 'resi_connection': '1conv'}


def hat_train_option(data, pretrain):
    """HAT's fine-tune option, as a user would edit it for undersr generate output (here: a folder of pairs)."""
    val = {'type': 'PairedImageDataset', 'dataroot_gt': f'{data}/gt', 'dataroot_lq': f'{data}/lq',
           'io_backend': {'type': 'disk'}}
    return {
        'name': 'train_HAT_SRx4_finetune_from_ImageNet_pretrain', 'model_type': 'HATModel', 'scale': 4,
        'num_gpu': 'auto', 'manual_seed': 0,
        'datasets': {
            'train': {'name': 'DF2K', 'type': 'PairedImageDataset', 'dataroot_gt': f'{data}/gt',
                      'dataroot_lq': f'{data}/lq', 'io_backend': {'type': 'disk'}, 'gt_size': 32, 'use_hflip': True,
                      'use_rot': True, 'use_shuffle': True, 'num_worker_per_gpu': 0, 'batch_size_per_gpu': 2,
                      'dataset_enlarge_ratio': 1, 'prefetch_mode': None},
            'val_1': {'name': 'Set5', **val}},
        'network_g': TINY_HAT,
        'path': {'pretrain_network_g': pretrain, 'param_key_g': 'params_ema', 'strict_load_g': True,
                 'resume_state': None},
        'train': {'ema_decay': 0.999,
                  'optim_g': {'type': 'Adam', 'lr': 1e-5, 'weight_decay': 0, 'betas': [0.9, 0.99]},
                  'scheduler': {'type': 'MultiStepLR', 'milestones': [125000, 200000], 'gamma': 0.5},
                  'total_iter': 2, 'warmup_iter': -1,
                  'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'}},
        'val': {'val_freq': 2, 'save_img': False, 'pbar': False,
                'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 4, 'test_y_channel': True,
                                     'better': 'higher'}}},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': True,
                   'wandb': {'project': None, 'resume_id': None}},
        'dist_params': {'backend': 'nccl', 'port': 29500}}


def hat_test_option(data, weights, tile=None):
    """HAT's test option (``num_gpu: 1`` as upstream ships it), optionally with its ``tile`` block."""
    opt = {'name': 'HAT_SRx4_ImageNet-pretrain', 'model_type': 'HATModel', 'scale': 4, 'num_gpu': 1,
           'manual_seed': 0,
           'datasets': {'test_1': {'name': 'Set5', 'type': 'PairedImageDataset', 'dataroot_gt': f'{data}/gt',
                                   'dataroot_lq': f'{data}/lq', 'io_backend': {'type': 'disk'}}},
           'network_g': TINY_HAT,
           'path': {'pretrain_network_g': weights, 'strict_load_g': True, 'param_key_g': 'params_ema'},
           'val': {'save_img': True, 'suffix': None,
                   'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 4, 'test_y_channel': True}}}}
    if tile:
        opt['tile'] = tile
    return opt


def write(path, opt):
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    return path


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the num_gpu fallback of a machine without CUDA')
def test_hat_official_train_and_test_options_run(workdir, run_py):
    torch.manual_seed(0)
    pretrain = workdir / 'HAT_SRx4_ImageNet-pretrain.pth'
    torch.save({'params_ema': build_network(dict(TINY_HAT)).state_dict()}, pretrain)  # HAT's release layout
    data = 'datasets/sample'
    train = run_py(['train.py', '-opt', write(workdir / 'train.yml', hat_train_option(data, str(pretrain)))],
                   cwd=workdir)
    assert 'CUDA is not available' not in train.stderr  # num_gpu: auto quietly means the CPU
    assert 'dist_params.backend' not in train.stderr  # no launcher: the nccl backend is never used
    experiment = workdir / 'experiments' / 'train_HAT_SRx4_finetune_from_ImageNet_pretrain'
    weights = experiment / 'models' / 'net_g_2.pth'
    assert set(torch.load(weights, weights_only=True)) == {'params', 'params_ema'}

    test = run_py(['test.py', '-opt', write(workdir / 'test.yml', hat_test_option(data, str(weights)))],
                  cwd=workdir)
    assert 'num_gpu: 1 asks for GPUs, but CUDA is not available here' in test.stderr
    assert test.stderr.count('num_gpu: 1 asks for GPUs') == 1
    images = sorted(os.listdir(workdir / 'results' / 'HAT_SRx4_ImageNet-pretrain' / 'visualization' / 'Set5'))
    assert images == ['astronaut_HAT_SRx4_ImageNet-pretrain.png', 'chelsea_HAT_SRx4_ImageNet-pretrain.png',
                      'coffee_HAT_SRx4_ImageNet-pretrain.png']


def test_hat_model_pads_to_the_window_and_tiles():
    """HATModel pads a 10x14 LR image to HAT's window size, and its ``tile`` option runs it tile by tile."""
    opt = hat_test_option('unused', None)
    opt.update(is_train=False, dist=False, num_gpu=0)
    opt['path'] = {'pretrain_network_g': None, 'strict_load_g': True}
    torch.manual_seed(0)
    model = MODEL_REGISTRY.get('HATModel')(opt)
    assert isinstance(model, HATModel) and (model.pad_multiple, model.tile_size) == (4, None)
    model.lq = torch.rand(1, 3, 10, 14)  # not multiples of the window: HAT itself would fail
    model.test()
    whole = model.output
    assert whole.shape == (1, 3, 40, 56) and torch.isfinite(whole).all()
    model.tile_size, model.tile_pad = 8, 2
    model.test()
    # Attention sees less context inside a tile, so the outputs differ: the tiled path did run.
    assert model.output.shape == whole.shape and not torch.equal(model.output, whole)


@pytest.mark.parametrize('name,base', [('RealHATMSEModel', 'RealESRNetModel'), ('RealHATGANModel', 'RealESRGANModel')])
def test_real_hat_models_are_the_device_agnostic_realesrgan_ones_with_hat_tiling(name, base):
    mro = MODEL_REGISTRY.get(name).__mro__
    assert [cls.__name__ for cls in mro[1:3]] == ['TrainSpeedMixin', 'TiledTestMixin']
    assert mro[3].__name__ == base and mro[3].__module__ == 'undersr.basicsr_fixes'
