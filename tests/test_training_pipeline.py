"""`python train.py` / `python test.py` through BasicSR on CPU: train, resume, test, torchrun."""
import os
import shutil

import pytest
import torch

EDSR_OPT = 'options/train/train_EDSR_x4_tiny_cpu.yml'
BATCH_1 = 'datasets:train:batch_size_per_gpu=1'  # the fixture has 3 images; BasicSR drops incomplete batches


def _states(workdir, name='train_EDSR_x4_tiny_cpu'):
    return sorted(os.listdir(workdir / 'experiments' / name / 'training_states'))


def test_train_resume_then_test(workdir, run_py):
    run_py(['train.py', '-opt', EDSR_OPT, '--force_yml', BATCH_1, 'train:total_iter=5', 'logger:save_checkpoint_freq=5',
            'val:val_freq=5'], cwd=workdir)
    assert _states(workdir) == ['5.state']

    proc = run_py(['train.py', '-opt', EDSR_OPT, '--auto_resume', '--force_yml', BATCH_1, 'train:total_iter=8',
                   'logger:save_checkpoint_freq=4', 'val:val_freq=100'], cwd=workdir)
    log = proc.stdout + proc.stderr
    assert 'Resuming training from epoch' in log and 'iter: 5' in log
    models = workdir / 'experiments' / 'train_EDSR_x4_tiny_cpu' / 'models'
    assert {'net_g_5.pth', 'net_g_latest.pth'} <= set(os.listdir(models))
    assert set(torch.load(models / 'net_g_latest.pth', weights_only=True)) == {'params', 'params_ema'}

    proc = run_py(['test.py', '-opt', 'options/test/test_EDSR_x4_tiny_cpu.yml'], cwd=workdir)
    results = workdir / 'results' / 'test_EDSR_x4_tiny_cpu' / 'visualization' / 'sample'
    assert sorted(os.listdir(results)) == [f'{n}_test_EDSR_x4_tiny_cpu.png' for n in ('astronaut', 'chelsea', 'coffee')]
    assert '# psnr' in proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which('torchrun') is None, reason='torchrun not on PATH')
def test_torchrun_two_cpu_processes(workdir, run_py):
    proc = run_py(['--nproc_per_node', '2', '--master_port', '29637', 'train.py', '-opt', EDSR_OPT, '--launcher',
                   'pytorch', '--force_yml', BATCH_1, 'train:total_iter=4', 'logger:save_checkpoint_freq=4',
                   'val:val_freq=100'], cwd=workdir, executable=(shutil.which('torchrun'), ))
    log = proc.stdout + proc.stderr
    assert 'World size (gpu number): 2' in log
    assert _states(workdir) == ['4.state']
