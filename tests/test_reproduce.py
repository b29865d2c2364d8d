"""undersr reproduce: plans, the whole table1 plan on a CPU (--tiny), resumption, sharding, dry runs, and the
paper's choices it relies on (VQ output range, MAE masking in the Degrader, colour-shift data, NTIRE2020 options)."""
import glob
import inspect
import os
import re
import subprocess
import sys

import undersr  # noqa: F401  (registers with BasicSR; first: the torchvision shim)
from undersr.analysis.compare import find_test_log, parse_test_log
from undersr.cli import reproduce as cli_reproduce
from undersr.color import rgb_to_lab
from undersr.degrade import Degrader
from undersr.reproduce.plan import PlanError, load_plan
from undersr.reproduce.steps import build_steps
from undersr.resize import bicubic_downsample

import pytest
import torch
import yaml
from basicsr.data import build_dataset
from basicsr.utils.options import _postprocess_yml_value
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, MODEL_REGISTRY
from conftest import ROOT


def _run(argv, capsys):
    cli_reproduce.main(argv)
    return capsys.readouterr().out


def _check_option(opt):
    """A generated option is a valid BasicSR option: registered types, network keys = constructor arguments."""
    assert MODEL_REGISTRY.get(opt['model_type'])
    for key in [k for k in opt if k.startswith('network_')]:
        args = dict(opt[key])
        inspect.signature(ARCH_REGISTRY.get(args.pop('type'))).bind(**args)
    for data in opt['datasets'].values():
        assert DATASET_REGISTRY.get(data['type'])


# ---------------------------------------------------------------------------------------------- the tiny plan

def test_table1_tiny_runs_end_to_end_then_resumes_only_what_is_missing(tmp_path, capsys):
    root = tmp_path / 'root'
    out = _run(['table1', '--tiny', '--root', str(root)], capsys)
    for stage, count in (('recon', 3), ('generate', 15), ('finetune', 15), ('test', 16), ('compare', 1)):
        assert f'== {stage}: {count} steps, 0 complete (skipped), {count} to run' in out
    plan_dir = root / 'results' / 'reproduce' / 'table1'
    table = (plan_dir / 'table.md').read_text()
    rows = {line.split(' | ')[0][2:]: line.split(' | ')[1:] for line in table.splitlines()
            if line.startswith('| ') and not line.startswith('| recon')}
    assert list(rows) == ['VQVAE', 'VQVAE2', 'MAE'] and all(len(cells) == 5 for cells in rows.values())
    psnr = [float(cell.split(' / ')[0]) for cells in rows.values() for cell in cells]
    assert all(5 < p < 60 for p in psnr) and len(set(psnr)) > 1  # 15 different models were tested
    assert re.search(r'HAT w/o fine-tune: \d+\.\d\d / ', table)
    assert (plan_dir / 'table.png').stat().st_size > 0
    compare = (plan_dir / 'compare' / 'test_hat_ntire2018_track3__HAT' / 'compare.md').read_text()
    assert 'w/o fine-tune (baseline)' in compare and 'VQVAE2 ep8' in compare
    # Each fine-tune trained on its own generated dataset, from the options the plan wrote.
    options = plan_dir / 'options'
    opt = yaml.safe_load((options / 'finetune_HAT_SRx4_MAE_ep16.yml').read_text())
    assert opt['datasets']['train']['dataroot_lq'] == 'datasets/undersr/DF2K_MAE_ep16/lq.lmdb'
    assert (root / 'datasets' / 'undersr' / 'DF2K_MAE_ep16' / 'manifest.json').is_file()
    assert {f'net_g_ep{e}.pth' for e in (4, 8, 16, 32, 64)} <= \
        set(os.listdir(root / 'experiments' / 'train_VQVAE2_tinyimagenet' / 'models'))
    for path in options.glob('*.yml'):
        _check_option(yaml.safe_load(path.read_text()))

    # A rerun does nothing; losing a fine-tune's weights (a kill) reruns that fine-tune, its test and the table.
    out = _run(['table1', '--tiny', '--root', str(root)], capsys)
    assert out.count('>> ') == 0 and 'compare: 1 steps, 1 complete (skipped)' in out
    os.remove(root / 'experiments' / 'finetune_HAT_SRx4_VQVAE_ep8' / 'models' / 'net_g_latest.pth')
    for log in glob.glob(str(root / 'results' / 'test_hat_ntire2018_track3__finetune_HAT_SRx4_VQVAE_ep8' / '*.log')):
        os.remove(log)
    out = _run(['table1', '--tiny', '--root', str(root), '--stages', 'test', 'compare'], capsys)  # as another shard
    assert 'waiting: test_hat_ntire2018_track3__finetune_HAT_SRx4_VQVAE_ep8 needs finetune_HAT_SRx4_VQVAE_ep8' in out
    assert 'waiting: table1 needs test_hat_ntire2018_track3__finetune_HAT_SRx4_VQVAE_ep8' in out
    assert out.count('>> ') == 0
    out = _run(['table1', '--tiny', '--root', str(root)], capsys)
    rerun = [line.split('-opt ')[1].split()[0] for line in out.splitlines() if line.startswith('>> python')]
    assert rerun == [
        'results/reproduce/table1/options/finetune_HAT_SRx4_VQVAE_ep8.yml',
        'results/reproduce/table1/options/test_hat_ntire2018_track3__finetune_HAT_SRx4_VQVAE_ep8.yml']
    assert out.count('>> ') == 3  # and undersr compare


# -------------------------------------------------------------------------------------- full scale: dry runs

def test_dry_run_of_table2_prints_every_command_with_valid_options(tmp_path, capsys):
    out = _run(['table2', '--dry-run', '--root', str(tmp_path), '--gpus', '0'], capsys)
    commands = [line.strip() for line in out.splitlines() if line.startswith('   ') and not line.startswith('    ')]
    commands = [c for c in commands if c.split()[0] in ('python', 'undersr', 'torchrun')]
    assert sum(c.startswith('python train.py') for c in commands) == 1 + 20  # VQ-VAE-2, 4 backbones x 5 epochs
    assert sum(c.startswith('undersr generate') for c in commands) == 5
    assert sum(c.startswith('python test.py') for c in commands) == 24  # 20 fine-tunes + 4 official
    assert sum(c.startswith('undersr compare') for c in commands) == 4  # one table per backbone
    assert 'undersr generate --hr datasets/DF2K/HR --recon experiments/train_VQVAE2_tinyimagenet/models/' \
           'net_g_ep8.pth --out datasets/undersr/DF2K_VQVAE2_ep8 --scale 4 --crop 1024 --crops-per-image 6' in out
    assert not (tmp_path / 'experiments').exists() and not (tmp_path / 'datasets').exists()  # nothing ran
    options = tmp_path / 'results' / 'reproduce' / 'table2' / 'options'
    recon = yaml.safe_load((options / 'train_VQVAE2_tinyimagenet.yml').read_text())
    assert recon['train']['save_checkpoint_epochs'] == [4, 8, 16, 32, 64] and recon['train']['total_epochs'] == 64
    assert recon['network_g']['sigmoid_output'] is False  # the paper-scale default: rosinality's range
    for path in options.glob('*.yml'):
        opt = yaml.safe_load(path.read_text())
        _check_option(opt)
        if path.name.startswith('test_'):
            trained = opt['path']['pretrain_network_g']
            assert trained.startswith('experiments/pretrained_models/') or trained.endswith('net_g_latest.pth')
    esrgan = yaml.safe_load((options / 'finetune_ESRGAN_SRx4_VQVAE2_ep32.yml').read_text())
    assert esrgan['datasets']['train']['dataroot_gt'] == 'datasets/undersr/DF2K_VQVAE2_ep32/gt.lmdb'
    assert esrgan['network_d']['type'] == 'VGGStyleDiscriminator'  # the rest of the template is kept
    test = yaml.safe_load((options / 'test_esrgan_ntire2018_track3__finetune_ESRGAN_SRx4_VQVAE2_ep32.yml').read_text())
    assert test['network_g'] == esrgan['network_g']
    assert 'missing now' in out and 'undersr prepare df2k' in out  # inputs to get before running


def test_gpus_are_split_into_parallel_torchrun_groups_and_shards(tmp_path, capsys):
    out = _run(['table1', '--dry-run', '--root', str(tmp_path), '--gpus', '8', '--gpus-per-run', '2',
                '--stages', 'finetune'], capsys)
    lines = [line.strip() for line in out.splitlines() if 'train.py' in line]
    assert len(lines) == 15
    groups = {line.split()[0] for line in lines}
    assert groups == {'CUDA_VISIBLE_DEVICES=0,1', 'CUDA_VISIBLE_DEVICES=2,3', 'CUDA_VISIBLE_DEVICES=4,5',
                      'CUDA_VISIBLE_DEVICES=6,7'}
    assert all(' torchrun --nproc_per_node=2 --master_port=295' in line and '--launcher pytorch --auto_resume' in line
               for line in lines)
    halves = [_run(['table1', '--dry-run', '--root', str(tmp_path), '--gpus', '1', '--launcher', 'pytorch',
                    '--stages', 'finetune', '--shard', f'{i}/2'], capsys) for i in (0, 1)]
    shards = [{line.split('-opt ')[1].split()[0] for line in text.splitlines() if 'train.py' in line}
              for text in halves]
    assert len(shards[0]) == 8 and len(shards[1]) == 7 and not shards[0] & shards[1]
    assert all('torchrun --nproc_per_node=1' in line for line in halves[0].splitlines() if 'train.py' in line)
    with pytest.raises(SystemExit):
        cli_reproduce.main(['table1', '--dry-run', '--shard', '2/2'])
    assert '--shard 2/2: expected I/N with 0 <= I < N' in capsys.readouterr().err


def test_subprocess_commands_run_with_this_interpreter():
    # A real torchrun of a fine-tune (gloo, CPU) passed in commit 8c839e5 and costs ~18 s of suite time; the pieces
    # it used are the printed command (tested above) and this mapping onto the running interpreter.
    from undersr.reproduce.runner import executable
    assert executable(['torchrun', '--nproc_per_node=2', 'train.py']) == \
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', 'train.py']
    assert executable(['undersr', 'generate', '-h']) == [sys.executable, '-m', 'undersr', 'generate', '-h']
    assert executable(['python', 'test.py'])[0] == sys.executable


def test_missing_inputs_stop_a_plan_with_how_to_get_them(tmp_path):
    with pytest.raises(SystemExit, match=r'(?s)stage recon: 3 input\(s\) missing.*datasets/tiny-imagenet-200/train.*'
                                         r'undersr prepare tinyimagenet --src tiny-imagenet-200\.zip'):
        cli_reproduce.main(['table1', '--root', str(tmp_path), '--gpus', '0'])


def _plan(tmp_path, text):
    path = tmp_path / 'plan.yml'
    path.write_text(text)
    return str(path)


def test_plan_errors_name_the_file_and_the_key(tmp_path):
    base = ('name: p\nbackbones:\n  EDSR: {template: options/finetune_edsr_vqvae2.yml, name: ft_EDSR}\n'
            'finetune:\n  - backbones: [EDSR]\n    grid: {lr: [1, 2]}\n    set: {train.optim_g.lr: "{lr}"}\n'
            'table: {rows: lr, columns: test_set}\n')
    with pytest.raises(PlanError, match=r"plan\.yml: `finetune`: two runs are both named 'ft_EDSR'"):
        load_plan(_plan(tmp_path, base))
    good = base.replace('name: ft_EDSR', 'name: "ft_EDSR_lr{lr}"')
    plan = load_plan(_plan(tmp_path, good))
    assert [(r.name, r.label, r.overrides) for r in plan.runs] == [
        ('ft_EDSR_lr1', 'lr 1', {'train.optim_g.lr': 1}), ('ft_EDSR_lr2', 'lr 2', {'train.optim_g.lr': 2})]
    steps = build_steps(plan, str(tmp_path))
    assert steps[0].option['train']['optim_g']['lr'] == 1 and steps[0].option['name'] == 'ft_EDSR_lr1'
    for broken, message in ((good + 'epochs_: 1\n', r'`epochs_`: unknown key'),
                            (good.replace('backbones: [EDSR]', 'backbones: [HAT]'), r"'HAT' is not in `backbones`"),
                            (good.replace('rows: lr', 'rows: loss'), r'`table.rows`: one of'),
                            (good.replace('lr{lr}', '{recon}'), r"uses \['recon'\]")):
        with pytest.raises(PlanError, match=message):
            load_plan(_plan(tmp_path, broken))
    with pytest.raises(PlanError, match="no plan 'table9'"):
        load_plan('table9')


# ------------------------------------------------------------------------------------------ the paper's choices

def _tiny_vq(**options):
    torch.manual_seed(0)
    return ARCH_REGISTRY.get('VQVAE2')(hidden_channels=16, res_channels=8, num_res_blocks=1, num_embeddings=32,
                                       embedding_dim=8, **options).eval()


def test_vq_output_range_option_keeps_old_checkpoints_and_follows_the_reference():
    x = torch.rand(2, 3, 32, 32)
    old, reference = _tiny_vq(), _tiny_vq(sigmoid_output=False)
    reference.load_state_dict(old.state_dict())  # the option adds no parameter: old files load either way
    raw, _ = old._run(x, update=False)
    torch.testing.assert_close(old.reconstruct(x), torch.sigmoid(raw))  # the default is the behaviour before
    torch.testing.assert_close(reference.reconstruct(x), ((raw + 1) / 2).clamp(0, 1))
    out = reference(x)
    torch.testing.assert_close(reference.loss(x, out)['l_recon'], torch.mean((out['recon'] - x) ** 2) * 4)
    out = old(x)
    torch.testing.assert_close(old.loss(x, out)['l_recon'], torch.mean((out['recon'] - x) ** 2))
    for name in ('VQVAE', 'VQVAE2'):
        with open(os.path.join(ROOT, 'options', 'train', 'recon', f'train_{name}_tinyimagenet.yml')) as f:
            opt = yaml.safe_load(f)
        assert opt['network_g']['sigmoid_output'] is False
        assert opt['datasets']['train']['meta_info'].endswith('meta_info_train_subset45000_seed0.txt')


def test_degrader_masks_mae_inputs_as_in_training_by_default(tmp_path):
    from undersr.archs.recon_base import save_reconstruction
    opt = dict(type='MAE', patch_size=8, embed_dim=16, depth=1, num_heads=2, decoder_embed_dim=16, decoder_depth=1,
               decoder_num_heads=2, mask_ratio=0.75, recon_mask_ratio=0.0)
    args = {k: v for k, v in opt.items() if k != 'type'}
    torch.manual_seed(0)
    path = str(tmp_path / 'mae.pth')
    save_reconstruction(path, ARCH_REGISTRY.get('MAE')(**args), opt, epoch=4, iteration=1)
    hr = torch.rand(2, 3, 64, 64)
    paper, same = Degrader([path]), Degrader([path], recon_mask_ratio='train')
    before = Degrader([path], recon_mask_ratio='checkpoint')
    assert paper.sources[0].net.recon_mask_ratio == 0.75 and before.sources[0].net.recon_mask_ratio == 0.0
    masked, unmasked = paper(hr, [1, 2])['lq'], before(hr, [1, 2])['lq']
    torch.testing.assert_close(same(hr, [1, 2])['lq'], masked)  # the mask comes from each sample's seed
    assert (masked - unmasked).abs().max() > 1e-3
    assert (paper(hr, [3, 2])['lq'][0] - masked[0]).abs().max() > 1e-3  # another seed, another mask
    torch.testing.assert_close(paper(hr, [3, 2])['lq'][1], masked[1])
    assert Degrader([path], recon_mask_ratio=0.5).sources[0].net.recon_mask_ratio == 0.5
    assert paper.sources[0].describe()['recon_mask_ratio'] == 0.75  # recorded in generate's manifest
    for bad in ('all', 1.0):
        with pytest.raises(ValueError, match='recon_mask_ratio'):
            Degrader([path], recon_mask_ratio=bad)


def test_color_shift_dataset_shifts_the_bicubic_lr_by_delta_e(tmp_path, sample_pairs):
    base = {'name': 'cs', 'type': 'ColorShiftDataset', 'dataroot_gt': str(sample_pairs / 'gt'), 'gt_size': 32,
            'io_backend': {'type': 'disk'}, 'use_hflip': False, 'use_rot': False, 'phase': 'train', 'scale': 4}
    torch.manual_seed(0)
    control = build_dataset(dict(base, delta_e=0))[0]
    torch.testing.assert_close(control['lq'], bicubic_downsample(control['gt'][None], 4)[0].clamp(0, 1))
    torch.manual_seed(0)
    item = build_dataset(dict(base, delta_e=6))[0]
    clean = bicubic_downsample(item['gt'][None], 4).clamp(0, 1)
    shift = (rgb_to_lab(item['lq'][None]) - rgb_to_lab(clean))[0].flatten(1)  # (3, pixels)
    inside = ((clean > 0.05) & (clean < 0.95)).all(1).flatten()  # pixels far from the gamut's edge
    lengths = shift[:, inside].norm(dim=0)
    assert lengths.median() == pytest.approx(6, abs=0.1)  # CIE76 ΔE of the shift
    assert shift[0, inside].abs().median() < 0.1  # a hue-only cast: L* kept
    torch.testing.assert_close(shift[1:, inside].median(1).values, item['lab_offset'][1:], atol=0.1, rtol=0)


def test_ntire2020_track2_options_test_without_ground_truth(tmp_path, capsys):
    from undersr.basicsr_fixes import run_pipeline
    from undersr.prepare import datasets, miniature

    from basicsr.test import test_pipeline
    downloads = miniature.write_downloads(str(tmp_path / 'dl'), test_size=256)
    datasets.prepare_ntire2020(downloads['ntire2020'], out=str(tmp_path / 'datasets'))
    for backbone in ('hat', 'swinir', 'edsr', 'esrgan'):
        with open(os.path.join(ROOT, 'options', 'test', f'test_{backbone}_ntire2020_track2.yml')) as f:
            opt = yaml.safe_load(f)
        with open(os.path.join(ROOT, 'options', 'test', f'test_{backbone}_ntire2018_track3.yml')) as f:
            assert opt['network_g'] == yaml.safe_load(f)['network_g']
        assert list(opt['val']['metrics']) == ['niqe'] and opt['val']['save_img']
        _check_option(opt)
    opt['network_g'].update(num_feat=8, num_block=1, num_grow_ch=4)  # a tiny ESRGAN generator
    opt.update(num_gpu=0, tile={'tile_size': 32, 'tile_pad': 4})
    opt['val']['pbar'] = False
    weights = tmp_path / 'rrdb.pth'
    net = dict(opt['network_g'])
    torch.save({'params': ARCH_REGISTRY.get(net.pop('type'))(**net).state_dict()}, weights)
    opt['path']['pretrain_network_g'] = str(weights)
    opt['datasets']['test_1']['dataroot_lq'] = str(tmp_path / 'datasets' / 'NTIRE2020_Track2' / 'LR')
    option = tmp_path / 'test.yml'
    option.write_text(yaml.safe_dump(opt))
    run_pipeline(test_pipeline, str(tmp_path), ['-opt', str(option)])
    metrics = parse_test_log(find_test_log(str(tmp_path / 'results' / opt['name'])))
    assert list(metrics) == ['NTIRE2020_Track2'] and metrics['NTIRE2020_Track2']['niqe'] > 0
    assert len(os.listdir(tmp_path / 'results' / opt['name'] / 'visualization' / 'NTIRE2020_Track2')) == 2


# ------------------------------------------------------------------------------------------ the GPU check script

def test_gpu_check_dry_run_prints_valid_commands_and_runs_nothing(tmp_path):
    proc = subprocess.run(['bash', os.path.join(ROOT, 'benchmarks', 'gpu_check.sh'), '--dry-run', '--out',
                           str(tmp_path / 'out')], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith('>> [')]
    steps = [line.split(']')[0][4:] for line in lines]
    assert steps == ['env', 'data', 'vqvae2', 'hat_otf', 'generate', 'generate_bf16', 'amp', 'amp_tests',
                     'bench_generate', 'bench_efficiency', 'bench_train_overhead']
    assert not (tmp_path / 'out').exists()
    text = '\n'.join(lines)
    assert '--launcher pytorch' in text and '--nproc_per_node=1' in text and text.count('--device cuda') >= 5
    for line in lines:  # BasicSR's --force_yml cannot create keys: every key must exist in the option file
        words = line.split()
        if 'train.py' in words:
            with open(os.path.join(ROOT, words[words.index('-opt') + 1])) as f:
                opt = yaml.safe_load(f)
            for entry in words[words.index('--force_yml') + 1:]:
                keys, value = entry.strip('"').split('=')
                node = opt
                for key in keys.split(':')[:-1]:
                    node = node[key]
                assert keys.split(':')[-1] in node, (line, keys)
                _postprocess_yml_value(value)
        for i, word in enumerate(words):  # benchmark flags exist in the scripts
            if word.startswith('benchmarks/') and word.endswith('.py'):
                source = open(os.path.join(ROOT, word)).read()
                assert all(f"'{w}'" in source for w in words[i + 1:] if w.startswith('--')), line
