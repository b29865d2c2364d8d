"""The torchvision shim, registration, and each BasicSR 1.4.2 fix in undersr.basicsr_fixes."""
import subprocess
import sys
import warnings

import undersr  # noqa: F401  (registers with BasicSR; first: the torchvision shim)
from undersr import basicsr_fixes

import pytest
import torch
from basicsr.utils.registry import ARCH_REGISTRY, MODEL_REGISTRY


def test_shim_is_installed_before_basicsr():
    code = ('import sys, undersr\n'
            'import basicsr.data.degradations\n'
            'import torchvision.transforms.functional as F\n'
            'from torchvision.transforms.functional_tensor import rgb_to_grayscale\n'
            'assert rgb_to_grayscale is F.rgb_to_grayscale\n')
    subprocess.run([sys.executable, '-c', code], check=True)


def test_import_undersr_alone_fills_the_registries():
    """As ``import hat`` does: nothing but ``import undersr`` before building from the registries."""
    code = ('import undersr\n'
            'from basicsr.archs import build_network\n'
            'from basicsr.utils.registry import DATASET_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY\n'
            'hat = build_network(dict(type="HAT", upscale=4, embed_dim=12, depths=[1], num_heads=[2], window_size=4,'
            ' compress_ratio=3, squeeze_factor=3, mlp_ratio=1))\n'
            'assert type(hat).__name__ == "HAT"\n'
            'assert type(build_network(dict(type="VQVAE2"))).__name__ == "VQVAE2"\n'
            'assert MODEL_REGISTRY.get("UndertrainedSRModel").__name__ == "UndertrainedSRModel"\n'
            'assert MODEL_REGISTRY.get("HATModel").__name__ == "HATModel"\n'
            'assert DATASET_REGISTRY.get("UndertrainedDegradationDataset")\n'
            'assert METRIC_REGISTRY.get("calculate_lpips")\n')
    subprocess.run([sys.executable, '-c', code], check=True)


def test_shim_is_installed_once():
    from undersr.compat import _FunctionalTensorAlias, install_torchvision_shim
    install_torchvision_shim()
    assert sum(isinstance(f, _FunctionalTensorAlias) for f in sys.meta_path) == 1


def test_registries_hold_our_classes_and_basicsr_ones():
    assert ARCH_REGISTRY.get('HAT').__module__ == 'undersr.archs.hat_arch'
    for name in ('EDSR', 'SwinIR', 'RRDBNet'):
        ARCH_REGISTRY.get(name)
    assert MODEL_REGISTRY.get('RealESRGANModel').__module__ == 'undersr.basicsr_fixes'


def test_registry_override_relies_on_what_basicsr_still_does():
    """replace_registered writes BasicSR's private ``_obj_map``: fail loudly if BasicSR's registry changes."""
    fixed = MODEL_REGISTRY.get('RealESRNetModel')
    assert MODEL_REGISTRY._obj_map['RealESRNetModel_basicsr'] is fixed  # BasicSR registers its own with this suffix
    assert fixed.__module__ == 'undersr.basicsr_fixes'
    with pytest.raises(KeyError, match='BasicSR changed'):
        basicsr_fixes.replace_registered(MODEL_REGISTRY, 'NoSuchModel_basicsr', object)


def test_accept_torchrun_args_rewrites_local_rank():
    argv = ['train.py', '--local-rank=1', '-opt', 'x.yml', '--local-rank', '0']
    assert basicsr_fixes.accept_torchrun_args(argv) == ['train.py', '--local_rank=1', '-opt', 'x.yml',
                                                         '--local_rank', '0']


def test_filter2d_accepts_non_contiguous_input_and_matches_conv():
    img = torch.rand(2, 8, 9, 3).permute(0, 3, 1, 2)  # (2, 3, 8, 9), not contiguous
    assert not img.is_contiguous()
    kernel = torch.zeros(1, 3, 3)
    kernel[0, 1, 1] = 1  # identity
    torch.testing.assert_close(basicsr_fixes.filter2D(img, kernel), img)
    per_sample = torch.rand(2, 5, 5)
    out = basicsr_fixes.filter2D(img, per_sample)
    expected = torch.nn.functional.conv2d(
        torch.nn.functional.pad(img[1:2], (2, 2, 2, 2), mode='reflect').reshape(3, 1, 12, 13),
        per_sample[1].expand(1, 1, 5, 5))
    torch.testing.assert_close(out[1], expected.reshape(3, 8, 9))
    with pytest.raises(ValueError, match='odd'):
        basicsr_fixes.filter2D(img, torch.rand(1, 4, 4))


def test_cuda_prefetch_falls_back_to_cpu_without_cuda(monkeypatch):
    from basicsr.data.prefetch_dataloader import CPUPrefetcher
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.warns(UserWarning, match='CPU prefetcher'):
        prefetcher = basicsr_fixes.make_prefetcher(iter([]), {'num_gpu': 1})
    assert isinstance(prefetcher, CPUPrefetcher)


def test_perceptual_loss_names_missing_vgg_weights_instead_of_downloading(tmp_path, monkeypatch):
    from basicsr.losses import build_loss
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match='vgg19-dcbb9e9d.pth'):
        build_loss({'type': 'PerceptualLoss', 'layer_weights': {'conv5_4': 1.0}})


def test_perceptual_loss_uses_a_local_vgg_file(tmp_path, monkeypatch):
    from basicsr.losses import build_loss
    from torchvision.models import vgg19
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'experiments' / 'pretrained_models').mkdir(parents=True)
    torch.save(vgg19().state_dict(), tmp_path / 'experiments' / 'pretrained_models' / 'vgg19-dcbb9e9d.pth')
    loss = build_loss({'type': 'PerceptualLoss', 'layer_weights': {'conv1_2': 1.0}, 'perceptual_weight': 1.0,
                       'style_weight': 0})
    x = torch.rand(1, 3, 16, 16)
    assert loss(x, x)[0].item() == 0


def test_init_dist_uses_gloo_without_cuda(monkeypatch):
    calls = {}
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(torch.distributed, 'init_process_group', lambda backend, **kw: calls.update(backend=backend))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        basicsr_fixes.init_dist('pytorch', backend='nccl')
    assert calls == {'backend': 'gloo'}


REALESRNET_DATA = {
    'name': 'tiny', 'type': 'RealESRGANDataset', 'io_backend': {'type': 'disk'}, 'use_hflip': True,
    'use_rot': False, 'blur_kernel_size': 21, 'kernel_list': ['iso', 'aniso'], 'kernel_prob': [0.5, 0.5],
    'sinc_prob': 0.1, 'blur_sigma': [0.2, 3], 'betag_range': [0.5, 4], 'betap_range': [1, 2],
    'blur_kernel_size2': 21, 'kernel_list2': ['iso', 'aniso'], 'kernel_prob2': [0.5, 0.5], 'sinc_prob2': 0.1,
    'blur_sigma2': [0.2, 1.5], 'betag_range2': [0.5, 4], 'betap_range2': [1, 2], 'final_sinc_prob': 0.8,
    'gt_size': 64, 'phase': 'train', 'scale': 4}


def realesrnet_opt(tmp_path):
    return {
        'model_type': 'RealESRNetModel', 'scale': 4, 'num_gpu': 0, 'dist': False, 'is_train': True, 'rank': 0,
        'world_size': 1, 'queue_size': 4, 'gt_size': 64, 'gt_usm': True, 'high_order_degradation': True,
        'resize_prob': [0.2, 0.7, 0.1], 'resize_range': [0.15, 1.5], 'gaussian_noise_prob': 0.5,
        'noise_range': [1, 30], 'poisson_scale_range': [0.05, 3], 'gray_noise_prob': 0.4, 'jpeg_range': [30, 95],
        'second_blur_prob': 0.8, 'resize_prob2': [0.3, 0.4, 0.3], 'resize_range2': [0.3, 1.2],
        'gaussian_noise_prob2': 0.5, 'noise_range2': [1, 25], 'poisson_scale_range2': [0.05, 2.5],
        'gray_noise_prob2': 0.4, 'jpeg_range2': [30, 95],
        'network_g': {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 1, 'upscale': 4},
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None,
                 'experiments_root': str(tmp_path), 'models': str(tmp_path), 'training_states': str(tmp_path)},
        'train': {'ema_decay': 0, 'optim_g': {'type': 'Adam', 'lr': 1e-4}, 'scheduler': {'type': 'MultiStepLR',
                  'milestones': [10], 'gamma': 0.5}, 'total_iter': 1, 'pixel_opt': {'type': 'L1Loss'}},
    }


def test_realesrnet_model_degrades_on_cpu(tmp_path, sample_pairs):
    from basicsr.data import build_dataset
    from basicsr.models import build_model
    meta = tmp_path / 'meta_info.txt'
    meta.write_text('astronaut.png\ncoffee.png\n')
    dataset = build_dataset(dict(REALESRNET_DATA, dataroot_gt=str(sample_pairs / 'gt'), meta_info=str(meta)))
    batch = torch.utils.data.default_collate([dataset[0], dataset[1]])
    model = build_model(realesrnet_opt(tmp_path))
    assert model.device.type == 'cpu'
    model.feed_data(batch)
    assert model.lq.shape == (2, 3, 16, 16) and model.lq.device.type == 'cpu'
    model.optimize_parameters(1)
    assert model.queue_lr.shape == (4, 3, 16, 16)
