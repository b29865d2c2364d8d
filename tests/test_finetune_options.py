"""The fine-tuning option files: their networks take the official checkpoints, and the GAN ones train on CPU."""
import os
import re
import subprocess
import sys

import undersr  # noqa: F401  (registers with BasicSR; first: the torchvision shim)
from undersr.models.undertrained_mixin import UndertrainedMixin
from undersr.sample_data import write_paired_folder
from undersr.weights import OFFICIAL_WEIGHTS

import pytest
import torch
import yaml
from basicsr.archs import build_network
from basicsr.models import build_model
from basicsr.models.base_model import BaseModel
from basicsr.utils.registry import MODEL_REGISTRY

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPTIONS = sorted(name[:-4] for name in os.listdir(os.path.join(ROOT, 'options'))
                 if name.startswith('finetune_') and name.endswith('.yml'))
PAIRS = sorted(name for name in OPTIONS if not name.endswith('_otf'))

# Small dimensions per architecture (what `--force_yml network_g:...` would set); everything else stays official.
TINY = {
    'HAT': {'embed_dim': 16, 'depths': [1], 'num_heads': [2], 'window_size': 4, 'squeeze_factor': 4, 'img_size': 16},
    'SwinIR': {'embed_dim': 16, 'depths': [1], 'num_heads': [2], 'window_size': 4, 'img_size': 16},
    'EDSR': {'num_feat': 8, 'num_block': 1},
    'RRDBNet': {'num_feat': 8, 'num_block': 1, 'num_grow_ch': 4},
    'VGGStyleDiscriminator': {'num_feat': 8},
}
# What is known about each official release, independently of our code: the key its weights sit under (the
# projects' own loaders: HAT's test options say param_key_g 'params_ema', SwinIR's main_test_swinir.py reads
# 'params', BasicSR's model zoo files hold 'params'), the parameter count its paper publishes (millions, 3 digits),
# and a few tensors whose names and shapes follow from the published architecture (HAT: window 16 gives a
# (2*16-1)^2 relative-position table and, with overlap ratio 0.5, a (16+24-1)^2 one; EDSR-L: 256 features, 32
# blocks, two x2 pixel-shuffle stages; RRDBNet: 64 features, 23 blocks of growth 32).
OFFICIAL_FILES = {
    'HAT_SRx4_ImageNet-pretrain.pth': ('params_ema', 20.8, {
        'conv_first.weight': (180, 3, 3, 3), 'layers.5.residual_group.blocks.5.attn.relative_position_bias_table':
        (961, 6), 'layers.0.residual_group.overlap_attn.relative_position_bias_table': (1521, 6),
        'conv_last.weight': (3, 64, 3, 3)}),
    '001_classicalSR_DF2K_s64w8_SwinIR-M_x4.pth': ('params', 11.9, {
        'conv_first.weight': (180, 3, 3, 3), 'layers.5.residual_group.blocks.5.attn.relative_position_bias_table':
        (225, 6), 'upsample.0.weight': (256, 64, 3, 3), 'conv_last.weight': (3, 64, 3, 3)}),
    'EDSR_Lx4_f256b32_DIV2K_official-76ee1c8f.pth': ('params', 43.1, {
        'conv_first.weight': (256, 3, 3, 3), 'body.31.conv2.weight': (256, 256, 3, 3),
        'upsample.2.weight': (1024, 256, 3, 3), 'conv_last.weight': (3, 256, 3, 3)}),
    'ESRGAN_PSNR_SRx4_DF2K_official-150ff491.pth': ('params', 16.7, {
        'conv_first.weight': (64, 3, 3, 3), 'body.22.rdb3.conv5.weight': (64, 192, 3, 3),
        'conv_hr.weight': (64, 64, 3, 3), 'conv_last.weight': (3, 64, 3, 3)}),
}
OFFICIAL_FILES['ESRGAN_SRx4_DF2KOST_official-ff704c30.pth'] = \
    OFFICIAL_FILES['ESRGAN_PSNR_SRx4_DF2K_official-150ff491.pth']  # the GAN generator is the same RRDBNet
VGG_FILE = 'vgg19-dcbb9e9d.pth'


def load_option(name):
    with open(os.path.join(ROOT, 'options', f'{name}.yml')) as f:
        return yaml.safe_load(f)


def tiny(net_opt):
    return dict(net_opt, **TINY[net_opt['type']])


class _Loader(BaseModel):
    """Just enough of a BaseModel to call its (undersr-patched) ``load_network``."""

    def __init__(self):
        self.opt = {'dist': False, 'num_gpu': 0}


def test_every_model_has_an_lmdb_and_an_on_the_fly_option():
    assert PAIRS == ['finetune_edsr_vqvae2', 'finetune_esrgan_gan_vqvae2', 'finetune_esrgan_vqvae2',
                     'finetune_hat_vqvae2', 'finetune_swinir_vqvae2']
    assert sorted(OPTIONS) == sorted(PAIRS + [f'{name}_otf' for name in PAIRS])


@pytest.mark.parametrize('name', OPTIONS)
def test_official_checkpoint_layout_loads_strictly(name, tmp_path):
    opt = load_option(name)
    net_opt = tiny(opt['network_g'])
    official = os.path.basename(opt['path']['pretrain_network_g'])
    assert opt['path']['pretrain_network_g'] == f'experiments/pretrained_models/{official}'
    assert official in OFFICIAL_WEIGHTS and opt['path']['strict_load_g'] is True  # fine-tuning drops no weights

    torch.manual_seed(0)
    source = build_network(net_opt)
    path = tmp_path / official
    torch.save({OFFICIAL_FILES[official][0]: source.state_dict()}, path)
    torch.manual_seed(1)
    net = build_network(net_opt)
    expected = source.state_dict()
    assert any(not torch.equal(v, expected[k]) for k, v in net.state_dict().items())  # loading has work to do
    _Loader().load_network(net, str(path), opt['path']['strict_load_g'], opt['path']['param_key_g'])
    loaded = net.state_dict()
    assert loaded.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(loaded[key], value), key
    with torch.no_grad():
        assert net.eval()(torch.rand(1, 3, 8, 8)).shape == (1, 3, 8 * opt['scale'], 8 * opt['scale'])

    with pytest.raises(FileNotFoundError, match=re.escape(OFFICIAL_WEIGHTS[official])):
        _Loader().load_network(net, str(tmp_path / 'absent' / official), True, opt['path']['param_key_g'])

    assert ('network_d' in opt) == ('_gan_' in name)
    if 'network_d' in opt:  # no official discriminator: it starts from scratch, on crops of the training size
        size = opt['datasets']['train']['gt_size']
        assert opt['network_d']['input_size'] == size and 'pretrain_network_d' not in opt['path']
        assert build_network(tiny(opt['network_d']))(torch.rand(2, 3, size, size)).shape == (2, 1)


@pytest.mark.parametrize('name', PAIRS)
def test_option_network_is_the_official_release(name):
    """The full-size network an option builds has the released model's parameter count and tensors."""
    opt = load_option(name)
    param_key, millions, tensors = OFFICIAL_FILES[os.path.basename(opt['path']['pretrain_network_g'])]
    assert opt['path']['param_key_g'] == param_key
    net = build_network(opt['network_g'])
    assert round(sum(p.numel() for p in net.parameters()) / 1e6, 1) == millions
    state = net.state_dict()
    assert {k: tuple(state[k].shape) for k in tensors if k in state} == tensors


@pytest.mark.parametrize('name', PAIRS)
def test_lmdb_and_on_the_fly_variants_share_the_recipe(name):
    lmdb, otf, hat_otf = load_option(name), load_option(f'{name}_otf'), load_option('finetune_hat_vqvae2_otf')
    for opt in (lmdb, otf):
        assert opt['num_gpu'] == 'auto' and opt['scale'] == 4 and opt['dist_params']['backend'] == 'nccl'
        assert opt['datasets']['val'] == hat_otf['datasets']['val'] and opt['val'] == hat_otf['val']
    for section in ('network_g', 'network_d', 'path', 'train'):
        assert lmdb.get(section) == otf.get(section), section
    assert otf['name'] == f'{lmdb["name"]}_otf'

    train = lmdb['datasets']['train']
    assert train['type'] == 'PairedImageDataset' and train['io_backend'] == {'type': 'lmdb'}
    assert (train['dataroot_gt'], train['dataroot_lq']) == ('datasets/undersr/DF2K_VQVAE2_ep8/gt.lmdb',
                                                            'datasets/undersr/DF2K_VQVAE2_ep8/lq.lmdb')
    train = otf['datasets']['train']
    assert train['type'] == 'ReconImageDataset' and train['dataroot_gt'] == 'datasets/DF2K/HR'
    assert 'degradation' not in lmdb and otf['degradation'] == hat_otf['degradation']
    # The on-the-fly model is the LMDB variant's model plus the on-the-fly lq.
    otf_model = MODEL_REGISTRY.get(otf['model_type'])
    assert issubclass(otf_model, UndertrainedMixin) and issubclass(otf_model, MODEL_REGISTRY.get(lmdb['model_type']))

    for variant in (name, f'{name}_otf'):
        with open(os.path.join(ROOT, 'options', f'{variant}.yml')) as f:
            header = ''.join(line for line in f if line.startswith('#'))
        assert f'python train.py -opt options/{variant}.yml' in header
        assert os.path.basename(lmdb['path']['pretrain_network_g']) in header
        assert re.search(r'Follows|Same recipe as options/' + name + r'\.yml', header)


@pytest.mark.parametrize('name', [f'{n}_otf' for n in PAIRS if '_gan_' not in n])
def test_on_the_fly_model_trains_and_validates_any_image_size(name, tmp_path, tiny_recon):
    opt = load_option(name)
    opt.update({'num_gpu': 0, 'dist': False, 'is_train': True, 'rank': 0, 'world_size': 1, 'save_lq_every': None,
                'network_g': tiny(opt['network_g']), 'degradation': {'recon': [str(tiny_recon)]}})
    opt['path'].update({'pretrain_network_g': None, 'visualization': str(tmp_path), 'models': str(tmp_path),
                        'training_states': str(tmp_path)})
    model = build_model(opt)
    model.feed_data({'gt': torch.rand(2, 3, 32, 32)})
    assert model.lq.shape == (2, 3, 8, 8) and not torch.equal(model.lq, model.lq_clean)
    assert not model.lq.is_inference()  # else a first layer that saves its input (RRDBNet) cannot backpropagate
    before = model.get_bare_model(model.net_g).conv_first.weight.detach().clone()
    model.optimize_parameters(1)
    assert not torch.equal(model.get_bare_model(model.net_g).conv_first.weight, before)

    model.degrade_on_feed = False  # as in validation
    lq = torch.rand(1, 3, 9, 13)  # not a multiple of window_size 4: BasicSR's SwinIR alone fails on it
    model.feed_data({'lq': lq, 'gt': torch.rand(1, 3, 36, 52)})
    model.test()
    assert torch.equal(model.lq, lq) and model.output.shape == (1, 3, 36, 52)


# --- the GAN options through train.py --------------------------------------------------------------------------


@pytest.fixture(scope='session')
def pairs128(tmp_path_factory):
    """HR crops of 128² (VGGStyleDiscriminator takes 128 or 256) and their 32² bicubic LR."""
    out = tmp_path_factory.mktemp('pairs128')
    write_paired_folder(str(out), names=('astronaut', 'coffee', 'chelsea'), scale=4, crop=128)
    return out


@pytest.fixture(scope='session')
def random_vgg19(tmp_path_factory):
    """A randomly initialised torchvision VGG19 saved under the official file name (no download)."""
    from torchvision.models import vgg19
    path = tmp_path_factory.mktemp('vgg') / VGG_FILE
    torch.save(vgg19().state_dict(), path)
    return path


def gan_option(workdir, name, force):
    """Writes a copy of options/<name>.yml with tiny networks and CPU-sized settings; returns its path."""
    opt = load_option(name)
    opt['network_g'] = tiny(opt['network_g'])
    opt['network_d'] = tiny(opt['network_d'])
    opt['datasets']['train'].update({'batch_size_per_gpu': 1, 'num_worker_per_gpu': 0})
    opt['train']['total_iter'] = 2
    opt['val']['val_freq'] = 2
    opt['logger'].update({'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': False})
    for key, value in force.items():  # 'section:sub:leaf' -> opt[section][sub][leaf]
        *sections, leaf = key.split(':')
        target = opt
        for section in sections:
            target = target[section]
        target[leaf] = value
    path = workdir / 'options' / f'{name}_tiny.yml'
    path.write_text(yaml.safe_dump(opt))
    pretrained = workdir / opt['path']['pretrain_network_g']
    pretrained.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save({'params': build_network(opt['network_g']).state_dict()}, pretrained)  # stands in for the official
    return path, opt


def train(workdir, option):
    env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, 'train.py', '-opt', str(option)], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=300)


def val_on(pairs):
    return {'name': 'pairs128', 'type': 'PairedImageDataset', 'dataroot_gt': str(pairs / 'gt'),
            'dataroot_lq': str(pairs / 'lq'), 'io_backend': {'type': 'disk'}}


def lmdb_gan_option(workdir, pairs128):
    from basicsr.utils.lmdb_util import make_lmdb_from_imgs
    names = sorted(os.listdir(pairs128 / 'gt'))
    for sub in ('gt', 'lq'):
        make_lmdb_from_imgs(str(pairs128 / sub), str(workdir / f'{sub}.lmdb'), names, [n[:-4] for n in names],
                            map_size=1 << 24)
    return gan_option(workdir, 'finetune_esrgan_gan_vqvae2', {
        'datasets:train:dataroot_gt': 'gt.lmdb', 'datasets:train:dataroot_lq': 'lq.lmdb',
        'datasets:val': val_on(pairs128)})


def place_vgg(workdir, random_vgg19):
    os.symlink(random_vgg19, workdir / 'experiments' / 'pretrained_models' / VGG_FILE)


def assert_trained_two_gan_iterations(workdir, proc, opt):
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    models = workdir / 'experiments' / opt['name'] / 'models'
    assert os.path.isfile(models / 'net_d_2.pth')
    assert os.path.basename(opt['path']['pretrain_network_g']) in log  # the pretrained generator was loaded
    for term in ('l_g_pix', 'l_g_percep', 'l_g_gan', 'l_d_real', 'l_d_fake'):
        assert term in log, term
    start = torch.load(workdir / opt['path']['pretrain_network_g'])['params']
    trained = torch.load(models / 'net_g_2.pth')['params']
    assert trained.keys() == start.keys() and not torch.equal(trained['conv_first.weight'], start['conv_first.weight'])


def test_esrgan_gan_option_fine_tunes_two_iterations(workdir, pairs128, random_vgg19):
    option, opt = lmdb_gan_option(workdir, pairs128)
    place_vgg(workdir, random_vgg19)
    assert_trained_two_gan_iterations(workdir, train(workdir, option), opt)


def test_esrgan_gan_option_without_vgg_names_the_missing_file(workdir, pairs128):
    option, opt = lmdb_gan_option(workdir, pairs128)
    proc = train(workdir, option)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr  # train.py's preflight stops it (issue 15)
    assert VGG_FILE in proc.stderr and 'never downloads' in proc.stderr
    assert not os.path.exists(workdir / 'experiments' / opt['name'] / 'models' / 'net_g_2.pth')


def test_esrgan_gan_otf_option_fine_tunes_two_iterations(workdir, pairs128, random_vgg19, tiny_recon):
    option, opt = gan_option(workdir, 'finetune_esrgan_gan_vqvae2_otf', {
        'datasets:train:dataroot_gt': str(pairs128 / 'gt'), 'datasets:val': val_on(pairs128),
        'degradation:recon': [str(tiny_recon)], 'save_lq_every': 2})
    place_vgg(workdir, random_vgg19)
    assert_trained_two_gan_iterations(workdir, train(workdir, option), opt)
    assert os.path.isfile(workdir / 'experiments' / opt['name'] / 'visualization' / 'train_lq' / '2.png')
