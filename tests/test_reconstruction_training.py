"""ReconstructionModel through `python train.py`: epoch checkpoints, self-describing files, learning."""
import os
import shutil

from undersr.archs.recon_base import load_reconstruction
from undersr.sample_data import load

import pytest
import torch

FAMILIES = ['VQVAE2', 'VQVAE', 'VanillaVAE', 'MAE', 'DDIM']
BATCH_1 = 'datasets:train:batch_size_per_gpu=1'  # 3 fixture images -> 3 iterations per epoch


def option(name):
    return f'options/train/recon/train_{name}_tiny_cpu.yml'


def models_dir(workdir, name):
    return workdir / 'experiments' / f'train_{name}_tiny_cpu' / 'models'


@pytest.mark.parametrize('name', FAMILIES)
def test_each_family_trains_and_leaves_epoch_checkpoints(workdir, run_py, name):
    proc = run_py(['train.py', '-opt', option(name), '--force_yml', BATCH_1], cwd=workdir)
    assert 'Epoch-based training: 2 epochs x 3 iterations = 6.' in proc.stdout + proc.stderr
    for epoch in (1, 2):
        net, meta = load_reconstruction(str(models_dir(workdir, name) / f'net_g_ep{epoch}.pth'))
        assert meta['epoch'] == epoch and meta['iter'] == 3 * epoch and meta['network_g']['type'] == name
        out = net.reconstruct(torch.rand(1, 3, 19, 23))
        assert out.shape == (1, 3, 19, 23) and 0 <= out.min() and out.max() <= 1
    grids = os.listdir(workdir / 'experiments' / f'train_{name}_tiny_cpu' / 'visualization' / 'sample')
    assert 'recon_3.png' in grids


@pytest.fixture(scope='module')
def vqvae2_run(tmp_path_factory, sample_pairs):
    """One VQ-VAE-2 run of 6 epochs with checkpoints after epochs 1, 2 and 6."""
    from conftest import ROOT
    work = tmp_path_factory.mktemp('vqvae2')
    shutil.copy(os.path.join(ROOT, 'train.py'), work / 'train.py')
    shutil.copytree(os.path.join(ROOT, 'options'), work / 'options')
    (work / 'datasets').mkdir()
    os.symlink(sample_pairs, work / 'datasets' / 'sample')
    return work


def test_checkpoint_rebuilds_bit_for_bit_and_the_model_learns(vqvae2_run, run_py):
    run_py(['train.py', '-opt', option('VQVAE2'), '--force_yml', BATCH_1, 'train:total_epochs=6',
            'train:save_checkpoint_epochs=[1,2,6]'], cwd=vqvae2_run)
    models = models_dir(vqvae2_run, 'VQVAE2')
    images = torch.stack([torch.from_numpy(load(n)[:64, :64]).permute(2, 0, 1).float() / 255
                          for n in ('astronaut', 'coffee', 'chelsea')])
    first, _ = load_reconstruction(str(models / 'net_g_ep2.pth'))
    again, _ = load_reconstruction(str(models / 'net_g_ep2.pth'))
    assert torch.equal(first.reconstruct(images), again.reconstruct(images))

    errors = {}
    for epoch in (1, 6):
        net, _ = load_reconstruction(str(models / f'net_g_ep{epoch}.pth'))
        errors[epoch] = torch.mean((net.reconstruct(images) - images) ** 2).item()
    assert errors[6] < errors[1], errors


def test_resume_keeps_epoch_numbering(vqvae2_run, run_py):
    """After --auto_resume from the 6-epoch run, epoch 8 is saved at iteration 8 x 3."""
    run_py(['train.py', '-opt', option('VQVAE2'), '--auto_resume', '--force_yml', BATCH_1, 'train:total_epochs=8',
            'train:save_checkpoint_epochs=[8]'], cwd=vqvae2_run)
    _, meta = load_reconstruction(str(models_dir(vqvae2_run, 'VQVAE2') / 'net_g_ep8.pth'))
    assert (meta['epoch'], meta['iter']) == (8, 24)


@pytest.mark.skipif(shutil.which('torchrun') is None, reason='torchrun not on PATH')
def test_an_epoch_is_one_pass_under_torchrun(workdir, run_py):
    run_py(['--nproc_per_node', '2', '--master_port', '29641', 'train.py', '-opt', option('VQVAE'),
            '--launcher', 'pytorch', '--force_yml', BATCH_1, 'train:total_epochs=1',
            'train:save_checkpoint_epochs=[1]'],
           cwd=workdir, executable=(shutil.which('torchrun'), ))
    _, meta = load_reconstruction(str(models_dir(workdir, 'VQVAE') / 'net_g_ep1.pth'))
    assert meta['iter'] == 2  # 3 images over 2 processes at batch 1: ceil(3 / 2) = 2 steps make one pass


def test_too_few_images_for_a_batch_is_an_error_not_a_silent_no_op(workdir, run_py):
    with pytest.raises(AssertionError, match='drops incomplete batches'):
        run_py(['train.py', '-opt', option('VQVAE'), '--force_yml', 'datasets:train:batch_size_per_gpu=4'],
               cwd=workdir)
