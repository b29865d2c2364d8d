"""The preflight of train.py/test.py: every input an option file names, one line per missing one, exit status 2."""
import glob
import os
import re
import shutil
import subprocess
import sys

import undersr  # noqa: F401  (registers with BasicSR; first: the torchvision shim)
from undersr import preflight
from undersr.models.tiling import parse_tile_options

import cv2
import numpy as np
import pytest
import torch
from conftest import ROOT

OPTION_FILES = sorted(glob.glob(os.path.join(ROOT, 'options', '**', '*.yml'), recursive=True))
GENERATED_LMDB = 'datasets/undersr/DF2K_VQVAE2_ep8/lq.lmdb'
RECON = 'experiments/train_VQVAE2_tinyimagenet/models/net_g_ep8.pth'
FINE_TUNED = 'experiments/finetune_HAT_SRx4_VQVAE2_ep8/models/net_g_latest.pth'


def dataset(**fields):
    return {'datasets': {'train': {'type': 'PairedImageDataset', 'io_backend': {'type': 'disk'}, **fields}}}


def write_png(folder, name='0801.png', size=8):
    os.makedirs(folder, exist_ok=True)
    assert cv2.imwrite(os.path.join(folder, name), np.full((size, size, 3), 128, np.uint8))


def write_lmdb(path, scratch):
    """A real one-image BasicSR LMDB (data.mdb + meta_info.txt) at ``path``."""
    from basicsr.utils.lmdb_util import make_lmdb_from_imgs
    write_png(scratch)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    make_lmdb_from_imgs(str(scratch), str(path), ['0801.png'], ['0801'], map_size=1 << 20)


def findings_of(opt, root, is_train=True, **kwargs):
    """The preflight of ``opt`` with paths under ``root``; hints name the repository's option files."""
    return preflight.check(opt, is_train, root=str(root), **{'root_path': ROOT, **kwargs})


def only(findings, key):
    matching = [f for f in findings if f.key == key]
    assert len(matching) == 1, preflight.format_findings(findings)
    return matching[0]


def half_written_lmdb(root):
    os.makedirs(root / GENERATED_LMDB)
    (root / GENERATED_LMDB / 'data.mdb').write_bytes(b'x')


# (options, is_train, set-up in the root, key, what its line says); one per kind of input
MISSING = {
    'image folder': (dataset(dataroot_gt='datasets/DF2K/HR'), True, None, 'datasets.train.dataroot_gt',
                     ['datasets/DF2K/HR (not found)', 'DIV2K_train_HR.zip', 'Flickr2K']),
    'empty image folder': (dataset(dataroot_gt='datasets/DF2K/HR'), True,
                           lambda root: os.makedirs(root / 'datasets/DF2K/HR'), 'datasets.train.dataroot_gt',
                           ['datasets/DF2K/HR (no images']),
    'benchmark test set': (dataset(dataroot_lq='datasets/NTIRE2018/DIV2K_valid_LR_difficult'), False, None,
                           'datasets.train.dataroot_lq',
                           ['undersr prepare ntire2018', 'DIV2K_valid_LR_difficult.zip',
                            'data.vision.ee.ethz.ch/cvl/DIV2K']),
    'generated LMDB': (dataset(dataroot_lq=GENERATED_LMDB, io_backend={'type': 'lmdb'}), True, None,
                       'datasets.train.dataroot_lq',
                       [f'{GENERATED_LMDB} (not found) -> make it: undersr generate --hr datasets/DF2K/HR --recon '
                        f'{RECON} --scale 4 --crop 1024 --crops-per-image 6 --out datasets/undersr/DF2K_VQVAE2_ep8 '
                        '--format lmdb']),
    'LMDB without meta_info.txt': (dataset(dataroot_lq=GENERATED_LMDB, io_backend={'type': 'lmdb'}), True,
                                   half_written_lmdb, 'datasets.train.dataroot_lq',
                                   [f'{GENERATED_LMDB}/meta_info.txt (the LMDB has no meta_info.txt', 'generate']),
    'meta_info_file': (dataset(dataroot_gt='datasets/sample/gt', meta_info_file='datasets/sample/meta.txt'), True,
                       lambda root: write_png(root / 'datasets/sample/gt'), 'datasets.train.meta_info_file',
                       ['datasets/sample/meta.txt (not found)', 'python -m undersr.sample_data']),
    'pretrain_network_g': ({'path': {'pretrain_network_g': 'experiments/pretrained_models/HAT_SRx4.pth'}}, False,
                           None, 'path.pretrain_network_g',
                           ['HAT_SRx4.pth (not found)', 'github.com/XPixelGroup/HAT', 'never downloads']),
    'pretrain_network_d': ({'path': {'pretrain_network_d': 'experiments/mine/net_d.pth'}}, True, None,
                           'path.pretrain_network_d', ['experiments/mine/net_d.pth (not found)', 'fix the path']),
    'fine-tuned weights': ({'path': {'pretrain_network_g': FINE_TUNED}}, False, None, 'path.pretrain_network_g',
                           ['train it: python train.py -opt options/finetune_hat_vqvae2.yml']),
    'VGG of PerceptualLoss': ({'train': {'perceptual_opt': {'type': 'PerceptualLoss'}}}, True, None,
                              'train.perceptual_opt',
                              ['experiments/pretrained_models/vgg19-dcbb9e9d.pth (not found)',
                               'download.pytorch.org/models/vgg19-dcbb9e9d.pth']),
    'degradation.recon': ({'degradation': {'recon': [RECON]}}, True, None, 'degradation.recon[0]',
                          [f'{RECON} (not found) -> train it: python train.py -opt '
                           'options/train/recon/train_VQVAE2_tinyimagenet.yml']),
    'dataset degradation.recon': ({'datasets': {'train': {'type': 'UndertrainedDegradationDataset',
                                                          'degradation': {'recon': ['a/net_g_ep4.pth']}}}}, False,
                                  None, 'datasets.train.degradation.recon[0]', ['a/net_g_ep4.pth (not found)']),
    'resume_state': ({'name': 'x', 'path': {'resume_state': 'experiments/x/training_states/100.state'}}, True, None,
                     'path.resume_state', ['100.state (not found)', '--auto_resume']),
}


@pytest.mark.parametrize('case', MISSING, ids=str)
def test_each_missing_input_gives_its_line(case, tmp_path):
    opt, is_train, setup, key, says = MISSING[case]
    if setup:
        setup(tmp_path)
    finding = only(findings_of(opt, tmp_path, is_train), key)
    assert finding.blocking and finding.line().startswith(f'MISSING {key}: ')
    for text in says:
        assert text in finding.line(), finding.line()


def test_missing_lpips_backbone_is_a_warning_not_a_failure(tmp_path):
    opt = {'val': {'metrics': {'lpips': {'type': 'calculate_lpips', 'net': 'alex', 'weights': 'alex.pth'}}}}
    finding = only(findings_of(opt, tmp_path, False), 'val.metrics.lpips.weights')
    assert not finding.present and not finding.blocking
    assert finding.line().startswith('WARNING ') and 'alexnet-owt-7be5be79.pth' in finding.line()
    assert 'nan' in finding.how
    torch.save({}, tmp_path / 'alex.pth')
    assert only(findings_of(opt, tmp_path, False), 'val.metrics.lpips.weights').present
    opt['val']['metrics']['lpips']['net'] = 'vgg16'  # the metric's alias of vgg
    assert 'vgg16-397923af.pth' in only(findings_of(opt, tmp_path / 'x', False), 'val.metrics.lpips.weights').how
    opt['val']['metrics']['lpips']['net'] = 'squeeze'
    assert only(findings_of(opt, tmp_path, False), 'val.metrics.lpips.net').blocking


def test_test_runs_need_no_degradation_checkpoints_nor_vgg(tmp_path):
    """test.py builds neither the Degrader of an Undertrained*Model nor the training losses."""
    opt = {'degradation': {'recon': [RECON]}, 'train': {'perceptual_opt': {'type': 'PerceptualLoss'}}}
    assert findings_of(opt, tmp_path, is_train=False) == []
    assert {f.key for f in findings_of(opt, tmp_path)} == {'degradation.recon[0]', 'train.perceptual_opt'}


def test_degradation_typo_names_the_key_and_the_nearest_valid_one(tmp_path):
    findings = findings_of({'degradation': {'recn': [RECON], 'color_corect': 'none'}}, tmp_path)
    typo = only(findings, 'degradation.recn')
    assert typo.kind == 'key' and typo.blocking and typo.problem == 'unknown key'
    assert 'did you mean `recon`?' in typo.line() and typo.line().startswith('UNKNOWN degradation.recn')
    assert 'did you mean `color_correct`?' in only(findings, 'degradation.color_corect').how
    assert 'channels_last' in typo.how and 'scale' not in typo.how.split('valid: ')[1]  # Degrader's own arguments
    assert 'non-empty list' in only(findings, 'degradation.recon').problem  # recon itself is missing now


def test_a_single_recon_path_instead_of_a_list_is_an_error(tmp_path):
    finding = only(findings_of({'degradation': {'recon': RECON}}, tmp_path), 'degradation.recon')
    assert finding.blocking and finding.line().startswith('INVALID degradation.recon (must be a non-empty list')


def test_tile_and_reconstruction_network_typos(tmp_path):
    opt = {'tile': {'tile_szie': 256, 'tile_pad': 16},
           'network_g': {'type': 'VQVAE2', 'hiden_channels': 16, 'num_embeddings': 32},
           'network_d': {'type': 'HAT', 'any_official_extra': 1}}  # not a reconstruction network: not checked
    findings = findings_of(opt, tmp_path)
    assert [f.key for f in findings] == ['network_g.hiden_channels', 'tile.tile_szie']
    assert 'did you mean `hidden_channels`?' in findings[0].how and 'did you mean `tile_size`?' in findings[1].how
    with pytest.raises(ValueError, match='did you mean `tile_size`'):  # the model's own check says the same
        parse_tile_options({'tile': opt['tile'], 'network_g': {}}, 'TiledSRModel')


def test_unregistered_types_name_the_nearest_registered_one(tmp_path):
    opt = {'model_type': 'HATModle', 'network_g': {'type': 'VQVAE3'},
           'val': {'metrics': {'psnr': {'type': 'calculate_psnrr'}}}}
    findings = {f.key: f for f in findings_of(opt, tmp_path)}
    assert set(findings) == {'model_type', 'network_g.type', 'val.metrics.psnr.type'}
    assert "unknown model type 'HATModle'" in findings['model_type'].line()
    assert 'did you mean `HATModel`?' in findings['model_type'].how
    assert findings['network_g.type'].how.startswith('did you mean `VQVAE')
    assert 'did you mean `calculate_psnr`?' in findings['val.metrics.psnr.type'].how


def test_auto_resume_takes_the_experiment_state_and_its_network_files(tmp_path):
    opt = {'name': 'run', 'network_g': {'type': 'EDSR'},
           'path': {'pretrain_network_g': 'official.pth', 'resume_state': None}}
    states = tmp_path / 'experiments' / 'run' / 'training_states'
    states.mkdir(parents=True)
    for name in ('5.state', '20.state'):
        torch.save({}, states / name)
    assert only(findings_of(opt, tmp_path), 'path.pretrain_network_g').path == 'official.pth'  # not resuming
    findings = findings_of(opt, tmp_path, auto_resume=True, root_path=str(tmp_path))
    state = only(findings, 'path.resume_state')
    assert state.present and state.path.endswith('20.state')
    net = only(findings, 'path.pretrain_network_g')  # BasicSR's check_resume swaps in the experiment's file
    assert net.path.endswith(os.path.join('run', 'models', 'net_g_20.pth')) and net.blocking


def test_force_yml_and_paths_relative_to_the_working_directory(tmp_path):
    option = os.path.join(ROOT, 'options', 'finetune_hat_vqvae2.yml')
    findings = preflight.check_file(option, True, root=str(tmp_path), force_yml=[
        'path:pretrain_network_g=~', f'datasets:val:dataroot_gt={tmp_path}/gt'])
    assert not [f for f in findings if f.key == 'path.pretrain_network_g']
    write_png(tmp_path / 'gt')
    assert only(findings, 'datasets.val.dataroot_gt').path == f'{tmp_path}/gt'
    assert only(preflight.check_file(option, True, root=str(tmp_path), force_yml=[
        f'datasets:val:dataroot_gt={tmp_path}/gt']), 'datasets.val.dataroot_gt').present
    with pytest.raises(ValueError, match="no block 'nowhere'"):
        preflight.check_file(option, True, force_yml=['nowhere:key=1'])


def stand_in(finding, root, scratch, recon):
    """Makes a stand-in for a missing input, of the kind the preflight expects there."""
    path = root / finding.path
    if finding.kind == 'images':
        write_png(path)
    elif finding.kind == 'lmdb':
        write_lmdb(path, scratch)
    elif finding.kind == 'meta_info':
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('0801.png (8,8,3) 1\n')
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(recon, path) if finding.kind == 'recon' else torch.save({'params': {}}, path)


@pytest.mark.parametrize('option', OPTION_FILES, ids=lambda p: os.path.relpath(p, os.path.join(ROOT, 'options')))
def test_every_option_file_passes_once_its_inputs_exist(option, tmp_path, tiny_recon):
    """On a fresh clone each option names what is missing and how to make it; with stand-ins there, it passes."""
    opt = preflight.load_options(option)
    is_train = 'train' in opt  # test options have no `train` block
    findings = findings_of(opt, tmp_path / 'run', is_train)
    assert [f.line() for f in findings if f.kind == 'key'] == []
    for f in findings:
        assert not f.present and f.how and 'fix the path' not in f.how, \
            f'{f.line()}\n(each dataset folder of a shipped option needs its source: DATASETS, preflight/hints.py)'
    for f in findings:
        stand_in(f, tmp_path / 'run', tmp_path / 'scratch', tiny_recon)
    again = findings_of(opt, tmp_path / 'run', is_train)
    assert [f.key for f in again] == [f.key for f in findings] and all(f.present for f in again), \
        preflight.format_findings(again, only_missing=True)


def documented_generate_command(option):
    """The ``undersr generate ...`` command in the header of ``option`` (continuation lines joined), or None."""
    with open(option) as f:
        found = re.search(r'undersr generate [^\n]*?--format \w+', f.read().replace('\\\n#', ''))
    return ' '.join(found[0].split()) if found else None


GENERATING = [p for p in OPTION_FILES if documented_generate_command(p)]


def test_the_fine_tune_options_document_their_generate_command():
    assert len(GENERATING) >= 5  # one per backbone (HAT, SwinIR, EDSR, ESRGAN PSNR and GAN)


@pytest.mark.parametrize('option', GENERATING, ids=os.path.basename)
def test_generate_command_in_the_hint_is_the_one_the_option_documents(option, tmp_path):
    findings = preflight.check_file(option, True, root=str(tmp_path), root_path=ROOT)
    assert documented_generate_command(option) in only(findings, 'datasets.train.dataroot_lq').how


# --- train.py / test.py ---------------------------------------------------------------------------------------
def run_main(argv, is_train, capsys):
    with pytest.raises(SystemExit) as exit_info:
        preflight.main(argv, is_train, ROOT)
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


def test_check_lists_present_and_missing_inputs(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    code, out, _ = run_main(['-opt', 'options/train/train_EDSR_x4_tiny_cpu.yml', '--check'], True, capsys)
    assert code == 0
    assert 'ok      datasets.train.dataroot_gt: datasets/sample/gt' in out and 'MISSING' not in out
    code, out, _ = run_main(['-opt', 'options/test/test_EDSR_x4_tiny_cpu.yml', '--check'], False, capsys)
    assert code == 2
    assert 'ok      datasets.test_1.dataroot_lq: datasets/sample/lq' in out
    assert ('MISSING path.pretrain_network_g: experiments/train_EDSR_x4_tiny_cpu/models/net_g_latest.pth (not found) '
            '-> train it: python train.py -opt options/train/train_EDSR_x4_tiny_cpu.yml') in out
    assert '2 of 3 inputs of options/test/test_EDSR_x4_tiny_cpu.yml present, 1 problem(s)' in out
    assert not os.path.exists(workdir / 'results') and not os.path.exists(workdir / 'experiments')


def test_a_complete_run_goes_on_and_only_rank_0_reports(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    assert preflight.main(['-opt', 'options/train/train_EDSR_x4_tiny_cpu.yml', '--auto_resume'], True, ROOT) is None
    monkeypatch.setenv('RANK', '1')
    argv = ['-opt', 'options/test/test_EDSR_x4_tiny_cpu.yml', '--launcher', 'pytorch', '--local-rank', '1']
    assert run_main(argv, False, capsys) == (2, '', '')  # every rank stops; only rank 0 says why
    monkeypatch.setenv('RANK', '0')
    assert 'MISSING path.pretrain_network_g' in run_main(argv, False, capsys)[2]


def test_unreadable_option_file_is_one_line(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    code, _, err = run_main(['-opt', 'options/nope.yml'], True, capsys)
    assert code == 2 and err.startswith('preflight: cannot read options options/nope.yml') and err.count('\n') == 1


def tree(folder):
    """Every file and folder under ``folder``, relative to it."""
    return sorted(os.path.relpath(os.path.join(d, n), folder) for d, sub, files in os.walk(folder) for n in sub + files)


def test_failed_preflight_prints_every_missing_input_and_creates_nothing(workdir):
    """The issue's two commands on a fresh clone, with an earlier experiment folder that BasicSR would archive."""
    previous = workdir / 'experiments' / 'finetune_HAT_SRx4_VQVAE2_ep8'
    previous.mkdir(parents=True)
    (previous / 'train.log').write_text('an earlier run\n')
    before = tree(workdir)
    env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')
    for script, option, missing in (
            ('train.py', 'options/finetune_hat_vqvae2.yml',
             ['datasets.train.dataroot_gt', 'datasets.train.dataroot_lq', 'datasets.val.dataroot_gt',
              'datasets.val.dataroot_lq', 'path.pretrain_network_g']),
            ('test.py', 'options/test/test_hat_ntire2018_track3.yml',
             ['datasets.test_1.dataroot_gt', 'datasets.test_1.dataroot_lq', 'path.pretrain_network_g'])):
        proc = subprocess.run([sys.executable, script, '-opt', option], cwd=workdir, env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert 'Traceback' not in proc.stderr and proc.stdout == ''
        lines = [line for line in proc.stderr.splitlines() if line.startswith('MISSING ')]
        assert [line.split(':')[0][len('MISSING '):] for line in lines] == missing, proc.stderr
        assert all(' -> ' in line for line in lines)
    assert tree(workdir) == before  # nothing archived, no results/ or tb_logger/
