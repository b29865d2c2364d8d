"""`undersr demo`: the whole experiment end to end with --quick, and the pieces that decide its numbers."""
import csv
import re
import sys

import undersr  # noqa: F401  (registers with BasicSR; first: the torchvision shim)
from undersr.archs.recon_base import load_reconstruction
from undersr.demo import options
from undersr.demo.data import REALISTIC_SEED
from undersr.demo.degradations import DEGRADATIONS, REALISTIC
from undersr.demo.evaluate import split_name
from undersr.demo.photos import SCENE_PHOTOS, TEST_PHOTOS, TRAIN_PHOTOS, load_photo, split_train_val
from undersr.demo.pipeline import METHOD, ablation_variants
from undersr.demo.report import TABLE_END, TABLE_START
from undersr.demo.summary import ceiling_table, difference, per_photo_table, per_seed, target_checks
from undersr.weights import load_weights

import cv2
import numpy as np
import pytest
import torch
import yaml
from basicsr.archs import build_network


def test_demo_quick_runs_every_step_from_the_option_files(workdir, run_py):
    out = workdir / 'demo_out'  # the default folder, where the templates under options/demo/ look
    proc = run_py(['-m', 'undersr', 'demo', '--quick'], cwd=workdir, executable=(sys.executable, ))
    assert '[6/6]' in proc.stdout

    report = (out / 'report.md').read_text()
    assert TABLE_START in report and TABLE_END in report and '## Issue 11\'s target' in report
    assert 'fine-tuned on undertrained pairs' in report and 'fine-tuned on bicubic pairs (control)' in report
    # the strength table: a row per checkpoint, and a blended one only where the blend is not the reconstruction
    unblended, blended = (len(re.findall(rf'\| training: VQVAE2@ep\d+ \(none\){tail} \|', report))
                          for tail in ('', ', blended at s = strength = [0-9.]+'))
    assert unblended >= 2 and blended == (unblended if METHOD['strength'] and METHOD['strength'] < 1 else 0)
    # the pre-training's LR noise is what the template says, and the report names it
    ran = yaml.safe_load((out / 'options' / 'demo_sr_pretrained_seed0.yml').read_text())['datasets']['train']
    assert ran['type'] == 'NoisyPairedImageDataset' and ran['noise_prob'] == 0.5
    assert f"Gaussian noise of σ ~ U[{ran['noise_range'][0]}, {ran['noise_range'][1]}]/255" in report

    with open(out / 'metrics.csv') as f:
        rows = list(csv.DictReader(f))
    test = [r for r in rows if r['split'] == 'test']
    assert {r['image'] for r in test} == set(TEST_PHOTOS)
    assert {r['set'] for r in test} == {*DEGRADATIONS, 'lr-photos'}
    assert {(r['method'], r['seed']) for r in test if r['method'] != 'bicubic'} == {('sr_pretrained', '0')} | {
        (m, str(s)) for m in ('sr_control', 'sr_finetuned', 'sr_ceiling') for s in (0, 1, 2)}  # one pre-trained
    assert all(0 < float(r['psnr_y']) < 80 and 0 < float(r['ssim_y']) <= 1 for r in test if r['set'] != 'lr-photos')
    assert {r['image'] for r in rows if r['split'] == 'val'} <= set(TRAIN_PHOTOS)

    for name in ('training_pairs', 'metrics', 'comparison_motion-noise', 'comparison_lr-photos'):
        assert cv2.imread(str(out / f'{name}.png')) is not None, name

    # issue 17, item 3: the report links `undersr upscale --compare`'s page of the seed-0 models and its grid
    links = re.findall(r'\]\(([^)]+)\)', report)
    page = [link for link in links if link.endswith('compare/index.html')]
    assert len(page) == 1 and (out / page[0]).is_file()
    assert all(label in (out / page[0]).read_text() for label in ('bicubic', 'pre-trained', 'control', 'fine-tuned'))
    assert any(link.endswith('compare/grid.png') and cv2.imread(str(out / link)) is not None for link in links)
    for label in ('bicubic', 'pre-trained', 'control', 'fine-tuned'):
        assert sorted(p.name for p in (out / page[0]).parent.parent.joinpath(label).iterdir()) == sorted(
            f'{name}.png' for name in TEST_PHOTOS), label

    # Every run is a copy of a template under options/demo/ that names its overrides, and BasicSR ran it.
    copy = (out / 'options' / 'demo_sr_finetuned_seed1.yml').read_text()
    assert copy.startswith('# Written by undersr demo from options/demo/sr_finetune.yml')
    opt = yaml.safe_load(copy)
    assert opt['manual_seed'] == 1 and opt['model_type'] == 'UndertrainedSRModel'
    assert opt['path']['pretrain_network_g'] == str(out / 'models' / 'sr_pretrained_seed0.pth')
    assert (out / 'experiments' / 'demo_sr_finetuned_seed1' / 'models' / 'net_g_latest.pth').is_file()
    for name in ('sr_pretrained_seed0', 'sr_control_seed2', 'sr_finetuned_seed1'):
        assert set(torch.load(out / 'models' / f'{name}.pth', weights_only=True)) == {'params'}
        load_weights(build_network(dict(opt['network_g'])), str(out / 'models' / f'{name}.pth'))  # strict
    _, meta = load_reconstruction(str(out / 'models' / 'recon_ep2.pth'))
    assert meta['network_g']['type'] == 'VQVAE2' and meta['epoch'] == 2

    # The ceiling trains on the training tiles under the test's own realistic degradations, with seeds of its own.
    ceiling = yaml.safe_load((out / 'options' / 'demo_sr_ceiling_seed2.yml').read_text())['datasets']['train']
    assert ceiling['type'] == 'PairedImageDataset' and ceiling['dataroot_lq'] == str(out / 'data/train/lq_realistic')
    tiles = sorted(p.name for p in (out / 'data/train/gt').iterdir())
    assert sorted(p.name for p in (out / 'data/train/lq_realistic').iterdir()) == tiles
    for k in range(len(REALISTIC)):  # the first photo's first tiles get seeds REALISTIC_SEED + 0, 1, 2
        tile = f'{TRAIN_PHOTOS[0]}_{k:03d}.png'
        hr = cv2.imread(str(out / 'data/train/gt' / tile))[..., ::-1]
        expected = DEGRADATIONS[REALISTIC[k]][0](np.ascontiguousarray(hr), REALISTIC_SEED + k)
        assert np.array_equal(cv2.imread(str(out / 'data/train/lq_realistic' / tile))[..., ::-1], expected)
    assert REALISTIC_SEED > 1000 + len(TRAIN_PHOTOS)  # validation seeds are 1000 + i, test seeds i
    assert '## Is the target within reach at this scale?' in report and 'ceiling − control' in report
    assert 'Pre-trained minus bicubic upsampling per held-aside photo' in report
    assert all(f'| {name} | ' in report for name in TEST_PHOTOS)

    # A user reruns one step from its template, in place, as the README says (sizes of --quick's networks).
    run_py(['train.py', '-opt', 'options/demo/sr_finetune.yml', '--force_yml', 'train:total_iter=2',
            'network_g:num_feat=8', 'network_g:num_conv=2', 'datasets:train:gt_size=64'], cwd=workdir)
    assert (workdir / 'experiments' / 'demo_sr_finetune' / 'models' / 'net_g_latest.pth').is_file()


def test_no_held_aside_photo_or_scene_is_on_the_training_side():
    assert not set(TEST_PHOTOS) & set(TRAIN_PHOTOS)
    assert len(TEST_PHOTOS) >= 6
    # the right view of the held-aside motorcycle scene would leak it
    assert not {'stereo_motorcycle', 'motorcycle_right'} & set(TRAIN_PHOTOS)


def test_ablation_varies_one_knob_at_a_time_within_the_valid_strengths():
    variants = ablation_variants((1, 2, 4, 8, 16))
    assert {'ep1', 'ep16', 'colour-lab-stats', 'strength-none'} <= set(variants)
    for name, knobs in variants.items():
        changed = {k for k in METHOD if knobs[k] != METHOD[k]}
        assert len(changed) == 1, (name, changed)
        assert knobs['strength'] is None or 0 < knobs['strength'] <= 1, name  # the Degrader's range


def test_validation_part_is_cut_from_the_training_part():
    image = np.arange(64 * 100 * 3, dtype=np.uint8).reshape(64, 100, 3)
    train, val = split_train_val(image, multiple=4)
    assert train.shape[1] % 4 == 0 and val.shape[1] % 4 == 0 and train.shape[1] + val.shape[1] == 100
    assert np.array_equal(np.concatenate([train, val], axis=1), image)


def test_realistic_degradations_are_seeded_and_differ_from_bicubic():
    hr = np.ascontiguousarray(load_photo('astronaut')[:128, :128])
    bicubic = DEGRADATIONS['bicubic'][0](hr, 0)
    assert bicubic.shape == (32, 32, 3) and bicubic.dtype == np.uint8
    for name in REALISTIC:
        function = DEGRADATIONS[name][0]
        lr = function(hr, 3)
        assert lr.shape == (32, 32, 3) and lr.dtype == np.uint8
        assert np.array_equal(lr, function(hr, 3)), name
        assert np.abs(lr.astype(int) - bicubic).mean() > 1, name
    noisy = DEGRADATIONS['motion-noise'][0]
    assert not np.array_equal(noisy(hr, 3), noisy(hr, 4))


def test_grace_hopper_comes_from_matplotlib_without_a_download():
    photo = load_photo('grace_hopper')
    assert photo.shape == (600, 512, 3) and photo.dtype == np.uint8


@pytest.mark.parametrize('name, shape, grey', [('china', (427, 640, 3), False), ('flower', (427, 640, 3), False),
                                               ('ascent', (512, 512, 3), True), ('aero', (512, 512, 3), True)])
def test_scene_photos_of_other_packages_load_without_a_download(name, shape, grey):
    photo = load_photo(name)
    assert photo.shape == shape and photo.dtype == np.uint8
    assert (np.array_equal(photo[..., 0], photo[..., 2]) and np.array_equal(photo[..., 0], photo[..., 1])) == grey
    assert photo.std() > 20  # a photo, not a blank placeholder
    assert name in TRAIN_PHOTOS


def test_scene_photos_are_training_side_and_keep_the_earlier_photos_seeds():
    assert set(SCENE_PHOTOS) <= set(TRAIN_PHOTOS)
    # validation seeds are 1000 + index: the scikit-image photos of rounds 1-4 keep their places
    assert TRAIN_PHOTOS[:12] == ('astronaut', 'immunohistochemistry', 'hubble_deep_field', 'retina', 'brick', 'grass',
                                 'gravel', 'moon', 'coins', 'page', 'cell', 'text')


def test_per_photo_table_gives_each_photos_margin_and_its_standard_error():
    rows = []
    for subset in DEGRADATIONS:
        for image, gain in (('a', 0.3), ('b', -0.1), ('c', 0.1)):
            rows.append({'split': 'test', 'set': subset, 'image': image, 'method': 'bicubic', 'seed': None,
                         'psnr_y': 20.0})
            rows += [{'split': 'test', 'set': subset, 'image': image, 'method': 'sr_pretrained', 'seed': 0,
                      'psnr_y': 20.0 + gain}]
    rows.append({'split': 'val', 'set': 'bicubic', 'image': 'a', 'method': 'sr_pretrained', 'seed': 0,
                 'psnr_y': 99.0})  # another split: ignored
    lines = per_photo_table(rows).splitlines()
    assert lines[2] == '| a | ' + ' | '.join(['+0.300'] * len(DEGRADATIONS)) + ' |'
    assert lines[3].startswith('| b | -0.100 |')
    # mean +0.1, sample std 0.2 over 3 photos: s.e. 0.2 / √3 = 0.115
    assert lines[-1] == '| mean ± s.e. over photos | ' + ' | '.join(['+0.100 ± 0.115'] * len(DEGRADATIONS)) + ' |'


def _rows(ft_ssim, ctrl_ssim, pre_ssim=0.5, psnr_gain=0.1, ceiling_ssim=(0.6, 0.6, 0.6)):
    rows = []
    for subset in DEGRADATIONS:
        rows.append({'split': 'test', 'set': subset, 'image': 'a', 'method': 'bicubic', 'seed': None,
                     'psnr_y': 20.0, 'ssim_y': 0.4, 'niqe': float('nan')})
        for seed in range(3):
            for method, ssim in (('sr_pretrained', pre_ssim), ('sr_control', ctrl_ssim[seed]),
                                 ('sr_finetuned', ft_ssim[seed]), ('sr_ceiling', ceiling_ssim[seed])):
                rows.append({'split': 'test', 'set': subset, 'image': 'a', 'method': method, 'seed': seed,
                             'psnr_y': 21.0 + (psnr_gain if method == 'sr_finetuned' else 0), 'ssim_y': ssim,
                             'niqe': float('nan')})
    return rows


def test_differences_are_paired_by_seed():
    table = per_seed(_rows(ft_ssim=[0.60, 0.70, 0.80], ctrl_ssim=[0.55, 0.65, 0.75]))
    mean, std, diffs = difference(table, 'test', 'defocus', 'sr_finetuned', 'sr_control', 'ssim_y')
    assert diffs == pytest.approx([0.05, 0.05, 0.05]) and mean == pytest.approx(0.05) and std == pytest.approx(0)
    mean, _, diffs = difference(table, 'test', 'defocus', 'sr_pretrained', 'bicubic', 'psnr_y')
    assert diffs == pytest.approx([1.0, 1.0, 1.0])
    # one pre-trained model (seed 0) shared by every fine-tune seed: subtracted from each
    shared = per_seed([r for r in _rows(ft_ssim=[0.60, 0.70, 0.80], ctrl_ssim=[0.5] * 3, pre_ssim=0.5)
                       if r['method'] != 'sr_pretrained' or r['seed'] == 0])
    mean, std, diffs = difference(shared, 'test', 'defocus', 'sr_finetuned', 'sr_pretrained', 'ssim_y')
    assert diffs == pytest.approx([0.1, 0.2, 0.3]) and std == pytest.approx(0.1)


def test_target_needs_the_gain_beyond_twice_the_seed_spread():
    met = target_checks(per_seed(_rows(ft_ssim=[0.55, 0.56, 0.57], ctrl_ssim=[0.51, 0.52, 0.53])))
    assert all(ok for _, _, ok in met)
    noisy = target_checks(per_seed(_rows(ft_ssim=[0.55, 0.62, 0.57], ctrl_ssim=[0.51, 0.52, 0.53])))
    failed = [text for text, _, ok in noisy if not ok]
    assert failed and all('seed std' in text and 'control' in text for text in failed)
    small = target_checks(per_seed(_rows(ft_ssim=[0.53, 0.54, 0.55], ctrl_ssim=[0.51, 0.52, 0.53])))
    assert any('+0.03' in text and not ok for text, _, ok in small)
    lossy = target_checks(per_seed(_rows(ft_ssim=[0.55, 0.56, 0.57], ctrl_ssim=[0.51, 0.52, 0.53], psnr_gain=-0.1)))
    assert any('PSNR-Y' in text and not ok for text, _, ok in lossy)


def test_ceiling_table_says_whether_the_oracle_reaches_the_target_beyond_its_spread():
    control = [0.51, 0.52, 0.53]
    reached = ceiling_table(per_seed(_rows(ft_ssim=control, ctrl_ssim=control, ceiling_ssim=[0.55, 0.56, 0.57])))
    assert reached.count('| yes |') == len(REALISTIC) and '+0.0400 ± 0.0000' in reached
    short = ceiling_table(per_seed(_rows(ft_ssim=control, ctrl_ssim=control, ceiling_ssim=[0.53, 0.54, 0.55])))
    assert short.count('| **no** |') == len(REALISTIC)
    spread = ceiling_table(per_seed(_rows(ft_ssim=control, ctrl_ssim=control, ceiling_ssim=[0.55, 0.65, 0.57])))
    assert spread.count('| **no** |') == len(REALISTIC)  # +0.0533 mean, but under twice its seed std


def test_split_name_reads_method_and_seed():
    assert split_name('sr_finetuned_seed2') == ('sr_finetuned', 2)
    assert split_name('bicubic') == ('bicubic', None)


def test_write_options_applies_overrides_and_names_them(tmp_path):
    path = options.write_options(str(tmp_path), 'sr_control', {'name': 'x_seed4', 'manual_seed': 4,
                                                               'train:optim_g:lr': 5e-5})
    text = open(path).read()
    assert path.endswith('x_seed4.yml') and '#   train:optim_g:lr: 5e-05' in text
    opt = yaml.safe_load(text)
    assert opt['manual_seed'] == 4 and opt['train']['optim_g']['lr'] == 5e-5
    assert opt['train']['total_iter'] == options.load_template('sr_control')['train']['total_iter']


def test_every_template_names_a_registered_model_and_network():
    from basicsr.utils.registry import ARCH_REGISTRY, MODEL_REGISTRY
    for name in ('recon_VQVAE2', 'sr_pretrain', 'sr_finetune', 'sr_control', 'sr_ceiling', 'test_sr'):
        opt = options.load_template(name)
        assert opt['model_type'] in MODEL_REGISTRY, name
        assert ARCH_REGISTRY.get(opt['network_g']['type']), name
    # one architecture for every SR step: the demo copies sr_pretrain's into the others; the files agree too
    networks = {name: options.load_template(name)['network_g'] for name in ('sr_pretrain', 'sr_finetune',
                                                                            'sr_control', 'sr_ceiling', 'test_sr')}
    assert all(n == networks['sr_pretrain'] for n in networks.values())


def test_fine_tune_and_control_keep_the_pretraining_noise():
    """docs/demo-choices.md, section 10: both fine-tunes add exactly sr_pretrain.yml's LR noise."""
    def noise(opt):
        return {key: opt[key] for key in ('noise_prob', 'noise_range')}

    pretrain = noise(options.load_template('sr_pretrain')['datasets']['train'])
    assert pretrain['noise_prob'] > 0
    assert noise(options.load_template('sr_control')['datasets']['train']) == pretrain
    assert options.load_template('sr_finetune')['lq_noise'] == pretrain
