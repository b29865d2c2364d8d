import os
import shutil
import subprocess
import sys

import undersr  # noqa: F401  (the torchvision shim must precede BasicSR)
from undersr.sample_data import write_paired_folder

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The tests use tiny tensors, which gain nothing from intra-op threads; on a busy 2-core machine OpenMP's spinning
# made them up to ~100x slower. Subprocesses get OMP_NUM_THREADS=1 from `run_py`.
torch.set_num_threads(1)


@pytest.fixture(scope='session')
def sample_pairs(tmp_path_factory):
    """A tiny BasicSR paired folder: three 64×64 HR photos and their 16×16 bicubic LR."""
    out = tmp_path_factory.mktemp('sample')
    write_paired_folder(str(out), names=('astronaut', 'coffee', 'chelsea'), scale=4, crop=64)
    return out


@pytest.fixture
def workdir(tmp_path, sample_pairs):
    """A copy of the repository's entry points and options, so experiments land in ``tmp_path``.

    ``train.py`` and ``test.py`` use their own folder as BasicSR's ``root_path``; the copies are byte-identical
    to the ones at the repository root. ``datasets/sample`` points at :func:`sample_pairs`.
    """
    for name in ('train.py', 'test.py'):
        shutil.copy(os.path.join(ROOT, name), tmp_path / name)
    shutil.copytree(os.path.join(ROOT, 'options'), tmp_path / 'options')
    (tmp_path / 'datasets').mkdir()
    os.symlink(sample_pairs, tmp_path / 'datasets' / 'sample')
    return tmp_path


@pytest.fixture
def run_py():
    """Runs ``python ARGS...`` in a subprocess and fails the test, showing its output, if it fails."""

    def run(args, cwd, timeout=300, executable=(sys.executable, )):
        env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')
        proc = subprocess.run([*executable, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout)
        assert proc.returncode == 0, f'{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
        return proc

    return run


TINY_VQVAE2 = {'type': 'VQVAE2', 'hidden_channels': 16, 'res_channels': 8, 'num_res_blocks': 1, 'num_embeddings': 32,
               'embedding_dim': 8}


def save_tiny_recon(folder, seed, epoch):
    """An (untrained) tiny VQ-VAE-2 with the weights of ``seed``, saved as ReconstructionModel saves epoch ``epoch``."""
    from undersr.archs.recon_base import save_reconstruction

    from basicsr.utils.registry import ARCH_REGISTRY
    torch.manual_seed(seed)
    opt = dict(TINY_VQVAE2)
    net = ARCH_REGISTRY.get(opt.pop('type'))(**opt)
    path = folder / f'net_g_ep{epoch}.pth'
    save_reconstruction(str(path), net, TINY_VQVAE2, epoch=epoch, iteration=10 * epoch)
    return path


@pytest.fixture(scope='session')
def tiny_recon(tmp_path_factory):
    """A self-describing checkpoint of an (untrained) tiny VQ-VAE-2, as ReconstructionModel writes them."""
    return save_tiny_recon(tmp_path_factory.mktemp('recon'), seed=0, epoch=1)


@pytest.fixture(scope='session')
def tiny_recon_b(tmp_path_factory):
    """A second tiny VQ-VAE-2 checkpoint with other random weights, so other reconstructions than ``tiny_recon``."""
    return save_tiny_recon(tmp_path_factory.mktemp('recon_b'), seed=1, epoch=2)
