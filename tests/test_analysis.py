"""Dataset-analysis tools: corruptions, classifier, ΔE / entropy (paper §4.3), `undersr analyze` and `compare`."""
import json
import math

import undersr  # noqa: F401  (registers with BasicSR; first: the torchvision shim)
from undersr.analysis import compare
from undersr.analysis.classifier import (
    CHECKPOINT_KIND,
    CLASSES,
    CLEAN_WEIGHT,
    DegradationClassifier,
    load_degradation_classifier,
    predict_labels,
    predict_proba,
    train_degradation_classifier,
    youden_threshold,
)
from undersr.analysis.corruptions import CORRUPTIONS, corrupt
from undersr.analysis.evaluation import (
    QUICK_CLASSIFIER,
    QUICK_PHOTOS,
    realesrgan_degrade,
    validate,
    write_classifier_report,
    write_validation_sets,
)
from undersr.analysis.metrics import (
    bicubic_lr,
    class_histogram,
    delta_e_to_bicubic,
    diversity,
    entropy,
    normalized_entropy,
    score_labels,
)
from undersr.analysis.report import MIN_ACCURACY, analyze
from undersr.archs.recon_base import save_reconstruction
from undersr.cli import analyze as cli_analyze
from undersr.cli import compare as cli_compare
from undersr.cli import train_degradation_classifier as cli_classifier
from undersr.sample_data import load

import cv2
import numpy as np
import pytest
import torch
from basicsr.utils.registry import ARCH_REGISTRY
from conftest import TINY_VQVAE2

# ------------------------------------------------------------------------------------------- ΔE and entropy

def _srgb_lightness(v):
    """CIE L* of the neutral sRGB grey v in [0, 1], by hand (sRGB decoding, Y = linear value, L = 116 Y^(1/3) - 16)."""
    linear = v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4
    return 116 * linear ** (1 / 3) - 16 if linear > 0.008856 else 903.3 * linear


def test_delta_e_zero_for_identical_and_hand_value_for_grey_shift():
    hr = load('astronaut')[:64, :64]
    assert delta_e_to_bicubic(hr, bicubic_lr(hr, 4), 4) == pytest.approx(0, abs=1e-9)

    # Two flat neutral greys differ only in lightness (a* = b* = 0), where CIEDE2000 reduces to
    # ΔE = |ΔL| / S_L with S_L = 1 + 0.015 (L̄ - 50)² / sqrt(20 + (L̄ - 50)²).
    g1, g2 = 100, 140
    hr = np.full((32, 32, 3), g1, np.uint8)  # its bicubic LR is the same flat grey
    lq = np.full((8, 8, 3), g2, np.uint8)
    l1, l2 = _srgb_lightness(g1 / 255), _srgb_lightness(g2 / 255)
    mean = (l1 + l2) / 2
    s_l = 1 + 0.015 * (mean - 50) ** 2 / math.sqrt(20 + (mean - 50) ** 2)
    assert delta_e_to_bicubic(hr, lq, 4) == pytest.approx(abs(l2 - l1) / s_l, rel=1e-3)


def test_entropy_uniform_and_single_class():
    uniform = np.full((30, 15), 1 / 15)
    uniform_votes = np.eye(15)[np.arange(30) % 15]  # every class predicted equally often
    assert entropy(uniform_votes) == pytest.approx(math.log(15))
    assert normalized_entropy(uniform_votes) == pytest.approx(1.0)
    assert entropy(np.ones(15)) == pytest.approx(math.log(15))  # a flat histogram
    assert entropy(uniform.mean(axis=0)) == pytest.approx(math.log(15))  # a flat probability vector
    one_class = np.zeros((10, 15))
    one_class[:, 3] = 1
    assert entropy(one_class) == 0.0 and normalized_entropy(one_class) == 0.0
    assert class_histogram(one_class).tolist() == [0, 0, 0, 10] + [0] * 11
    assert math.isnan(entropy(np.zeros(15)))


def test_diversity_counts_clean_apart_and_keeps_the_paper_score():
    # 4 clean images, 2 of type 0, 2 of type 3; the paper's forced choice puts the clean ones into type 5.
    labels = [15, 15, 15, 15, 0, 0, 3, 3]
    forced = [5, 5, 5, 5, 0, 0, 3, 3]
    scores = score_labels(labels, forced, CLASSES)
    assert scores['n'] == 8 and scores['n_degraded'] == 4 and scores['clean_share'] == 0.5
    assert scores['entropy'] == pytest.approx(math.log(2))  # the 4 degraded: two types, equally often
    assert scores['normalized_entropy'] == pytest.approx(math.log(2) / math.log(15))
    assert scores['paper_entropy'] == pytest.approx(1.5 * math.log(2))  # (1/2, 1/4, 1/4)
    assert scores['class_counts'][15] == 4 and len(scores['class_counts']) == 16
    all_clean = diversity([15] * 5, 15, clean_label=15)
    assert all_clean['clean_share'] == 1.0 and all_clean['n_degraded'] == 0 and math.isnan(all_clean['entropy'])
    paper = score_labels(forced, forced, CORRUPTIONS)  # a 15-class classifier: no clean share
    assert math.isnan(paper['clean_share']) and paper['entropy'] == pytest.approx(paper['paper_entropy'])


# ------------------------------------------------------------------------------------------------ corruptions

def test_corruptions_change_image_keep_format_and_grow_with_severity():
    images = [load('astronaut')[120:184, 180:244], load('coffee')[100:164, 250:314]]
    assert len(CORRUPTIONS) == 15
    for name in CORRUPTIONS:
        change = {}
        for severity in (1, 5):
            diffs = []
            for i, image in enumerate(images):
                for seed in range(2):
                    out = corrupt(image, name, severity, rng=seed)
                    assert out.shape == image.shape and out.dtype == np.uint8, name
                    diffs.append(np.abs(out.astype(float) - image).mean())
            change[severity] = np.mean(diffs)
        assert change[1] > 0.5, f'{name} barely changes the image ({change[1]:.3f})'
        assert change[5] > change[1], f'{name}: severity 5 changes less than 1 ({change})'
    flt = corrupt(images[0].astype(np.float32) / 255, 'fog', 3, rng=0)
    assert flt.dtype == np.float32 and 0 <= flt.min() and flt.max() <= 1
    with pytest.raises(ValueError):
        corrupt(images[0], 'rain', 1)
    with pytest.raises(ValueError):
        corrupt(images[0], 'fog', 6)


# ------------------------------------------------------------------------------------------------ classifier

@pytest.fixture(scope='module')
def classifier(tmp_path_factory):
    """A 16-class classifier trained for a few seconds on 16-pixel patches of four photos, with its validation."""
    path = tmp_path_factory.mktemp('clf') / 'classifier.pth'
    result = train_degradation_classifier([load(n) for n in QUICK_PHOTOS], str(path), device='cpu', seed=0,
                                          progress=False, **QUICK_CLASSIFIER)
    result['validation'] = validate(result['model'], result['holdout_blocks'], count=60, seed=0)
    return path, result


def test_classifier_beats_chance_on_held_out_regions_and_reloads(classifier):
    path, result = classifier
    assert result['holdout_samples'] == 16 * 10 and result['train_samples'] == (15 + CLEAN_WEIGHT) * 40
    assert result['classes'] == list(CLASSES) and result['classes'][-1] == 'clean'
    assert result['accuracy'] > 4 / 16, result['accuracy']  # chance is 1/16
    assert set(result['accuracy_by_severity']) == {'1', '2', '3', '4', '5'}
    model = load_degradation_classifier(str(path))
    assert model.classes == list(CLASSES) and model.patch == 16
    assert model.meta['accuracy'] == pytest.approx(result['accuracy'])
    probs = predict_proba(model, [load('coffee')[:50, :70], np.zeros((10, 10, 3), np.uint8)])
    assert probs.shape == (2, 16) and np.allclose(probs.sum(axis=1), 1)


def test_youden_threshold_separates_and_trades_recall_for_false_positives():
    scores = np.array([0.9, 0.8, 0.7, 0.4, 0.3, 0.1, 0.05])
    cut, tpr, fpr = youden_threshold(scores, np.array([1, 1, 1, 0, 0, 0, 0], bool))
    assert 0.4 < cut < 0.7 and (tpr, fpr) == (1, 0)
    cut, tpr, fpr = youden_threshold(scores, np.array([1, 1, 0, 1, 0, 0, 0], bool))  # one positive below a negative
    assert cut == pytest.approx(0.35) and tpr == 1 and fpr == pytest.approx(0.25)


def test_predict_labels_calls_clean_at_the_calibrated_threshold(classifier):
    path, result = classifier
    assert 0 < result['clean_threshold'] < 1 and set(result['clean_threshold_rates']) == {'clean_recall',
                                                                                          'false_clean'}
    model = load_degradation_classifier(str(path))
    assert model.clean_threshold == pytest.approx(result['clean_threshold'])
    images = [load(n)[:64, :64] for n in ('astronaut', 'coffee', 'chelsea')]
    p_clean = predict_proba(model, images)[:, CLASSES.index('clean')]
    labels, corruption, prob = predict_labels(model, images)
    assert np.array_equal(labels == CLASSES.index('clean'), p_clean >= model.clean_threshold)
    assert np.array_equal(labels[p_clean < model.clean_threshold], corruption[p_clean < model.clean_threshold])
    model.clean_threshold = 0.0  # every image reaches it
    assert (predict_labels(model, images)[0] == CLASSES.index('clean')).all()
    model.clean_threshold = None  # a checkpoint before the threshold: the most probable class
    assert np.array_equal(predict_labels(model, images)[0], predict_proba(model, images).argmax(axis=1))


def test_validation_scores_measure_what_they_claim(classifier):
    """Issue 16's validation: clean → clean; one corruption → low entropy; many → high; Real-ESRGAN > one.

    The thresholds leave a margin below what this 300-step, 16-pixel classifier reached over training seeds 0, 1
    and 2 with its calibrated clean threshold (`python benchmarks/analysis_validation_seeds.py`, docs/analysis.md):
    clean share of the clean set 0.78 / 0.90 / 0.68 (the default classifier reaches more), of the one-corruption
    set 0.00–0.08 and of the mixed set 0.23–0.43; normalised entropy of the one-corruption set 0.00–0.15 and of the
    mixed set 0.78–0.86; Real-ESRGAN's entropy 1.3–2.0 nats above the one-corruption set's; the paper's 15-class
    entropy of the clean set 1.89–2.14.
    """
    v = classifier[1]['validation']
    assert v['clean']['clean_share'] >= 0.6, v['clean']
    assert v['one corruption']['clean_share'] <= 0.1 and v['mixed']['clean_share'] <= 0.5
    assert v['one corruption']['normalized_entropy'] <= 0.25, v['one corruption']
    assert v['mixed']['normalized_entropy'] >= 0.65, v['mixed']
    assert v['realesrgan']['entropy'] > v['one corruption']['entropy'] + 0.8, (v['realesrgan'], v['one corruption'])
    # The paper's forced 15-class choice gives the clean set a "diversity" of its own: the blind spot fixed here.
    assert v['clean']['paper_entropy'] > v['one corruption']['entropy'] + 0.5


def test_realesrgan_degradation_is_seeded_and_downscales():
    hr = load('astronaut')[:64, :64]
    a, b, c = realesrgan_degrade(hr, 1), realesrgan_degrade(hr, 1), realesrgan_degrade(hr, 2)
    assert a.shape == (16, 16, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_validation_sets_of_photos_are_paired_folders_analyze_reads(tmp_path, sample_pairs, classifier):
    folders = write_validation_sets(str(sample_pairs / 'gt'), str(tmp_path))
    assert [f.rsplit('/', 1)[1] for f in folders] == ['clean', 'one_corruption', 'mixed', 'realesrgan']
    clean = cv2.imread(str(tmp_path / 'clean' / 'lq' / 'astronaut.png'))[..., ::-1]
    assert clean.shape == (16, 16, 3) and (tmp_path / 'realesrgan' / 'gt' / 'coffee.png').is_file()
    report = analyze(folders, str(tmp_path / 'report'), classifier=str(classifier[0]), progress=False)
    assert set(report['by_source']) == {'clean', 'one_corruption', 'mixed', 'realesrgan'}
    assert report['datasets']['clean']['overall']['delta_e']['mean'] < 1  # the clean LR is the bicubic LR
    assert f'clean when P(clean) ≥ {classifier[1]["clean_threshold"]:.3f}' in (tmp_path / 'report' / 'analysis.md'
                                                                               ).read_text()


def test_classifier_report_files(classifier, tmp_path):
    files = write_classifier_report(classifier[1], str(tmp_path / 'clf.pth'))
    assert [f.rsplit('/', 1)[1] for f in files] == ['clf.confusion.png', 'clf.per_class.csv', 'clf.eval.json']
    assert cv2.imread(files[0]).shape[0] > 300
    rows = (tmp_path / 'clf.per_class.csv').read_text().splitlines()
    assert rows[0].startswith('class,holdout_accuracy') and len(rows) == 17 and rows[-1].startswith('clean,')
    data = json.loads((tmp_path / 'clf.eval.json').read_text())
    assert data['accuracy'] == pytest.approx(classifier[1]['accuracy']) and 'mixed' in data['validation']
    assert np.asarray(data['confusion']).sum() == 160


def test_old_15_class_checkpoint_needs_paper_classes(tmp_path, sample_pairs):
    path = tmp_path / 'old.pth'
    torch.save({'kind': CHECKPOINT_KIND, 'state_dict': DegradationClassifier(15, width=4).state_dict(),
                'arch': {'num_classes': 15, 'width': 4}, 'classes': list(CORRUPTIONS), 'patch': 16,
                'accuracy': 0.9, 'steps': 1}, path)
    with pytest.raises(ValueError, match='--paper-classes'):
        analyze([str(sample_pairs)], str(tmp_path / 'a'), classifier=str(path), progress=False)
    report = analyze([str(sample_pairs)], str(tmp_path / 'b'), classifier=str(path), progress=False,
                     paper_classes=True)
    overall = report['datasets'][sample_pairs.name]['overall']
    assert overall['n'] == 3 and math.isnan(overall['clean_share']) and overall['entropy'] >= 0


# ------------------------------------------------------------------------------------------------- analyze

def _recon_checkpoint(path, epoch):
    torch.manual_seed(epoch)
    opt = dict(TINY_VQVAE2)
    net = ARCH_REGISTRY.get(opt.pop('type'))(**opt)
    save_reconstruction(str(path), net, TINY_VQVAE2, epoch=epoch, iteration=10 * epoch)
    return str(path)


def test_analyze_generated_folder_and_lmdb(tmp_path, sample_pairs, classifier, capsys):
    from undersr.generate import main as generate

    recon = [_recon_checkpoint(tmp_path / f'net_g_ep{e}.pth', e) for e in (1, 2)]
    for fmt in ('folder', 'lmdb'):
        generate(['--hr', str(sample_pairs / 'gt'), '--recon', *recon, '--out', str(tmp_path / f'gen_{fmt}'),
                  '--format', fmt, '--workers', '0', '--device', 'cpu', '--crop', '32', '--crops-per-image', '2'])
    out, sample = tmp_path / 'report', sample_pairs.name
    analyze([str(tmp_path / 'gen_folder'), str(tmp_path / 'gen_lmdb'), str(sample_pairs)], str(out),
            classifier=str(classifier[0]), max_images=5, progress=False)

    for name in ('delta_e_hist.png', 'delta_e_vs_epoch.png', 'entropy_vs_epoch.png', 'grid_gen_folder.png',
                 'grid_gen_lmdb.png', f'grid_{sample}.png'):
        image = cv2.imread(str(out / name))
        assert image is not None and image.ndim == 3 and image.shape[0] > 50, name
    data = json.loads((out / 'analysis.json').read_text())
    assert {'classifier', 'notes', 'by_source', 'datasets', 'files', 'classes'} <= set(data)
    assert set(data['datasets']) == {'gen_folder', 'gen_lmdb', sample}
    gen = data['datasets']['gen_folder']
    assert gen['kind'] == 'generated' and gen['scale'] == 4 and gen['num_analyzed'] == 5
    assert set(gen['groups']) <= {'VQVAE2@ep1', 'VQVAE2@ep2'}
    for group in gen['groups'].values():
        assert {'n', 'delta_e', 'clean_share', 'n_degraded', 'entropy', 'normalized_entropy', 'paper_entropy',
                'class_counts'} <= set(group)
        assert group['delta_e']['mean'] > 0 and 0 <= group['clean_share'] <= 1
    assert {s['key'] for s in gen['samples']} == {s['key'] for s in data['datasets']['gen_lmdb']['samples']}
    assert data['by_source']['VQVAE2@ep1']['epoch'] == 1 and data['by_source']['VQVAE2@ep1']['type'] == 'VQVAE2'
    assert data['datasets'][sample]['kind'] == 'paired'
    assert data['datasets'][sample]['overall']['delta_e']['mean'] < 1  # bicubic LR vs its own bicubic LR
    assert data['classifier']['sha256'] and data['classifier']['holdout_accuracy'] == pytest.approx(
        classifier[1]['accuracy'])
    md = (out / 'analysis.md').read_text()
    assert '| VQVAE2@ep1 | VQVAE2 | 1 |' in md and 'grid_gen_lmdb.png' in md
    assert 'clean share' in md and 'held-out accuracy' in md and data['classifier']['sha256'][:16] in md
    assert (out / 'clean_share_vs_epoch.png').exists()
    low = classifier[1]['accuracy'] < MIN_ACCURACY
    assert low == any('below' in n for n in data['notes']) == ('warning' in md)

    # The command, without a classifier: ΔE only, with the notice.
    out2 = tmp_path / 'report2'
    cli_analyze.main([str(tmp_path / 'gen_folder'), '--out', str(out2)])
    printed = capsys.readouterr()
    assert 'entropy skipped' in printed.err and 'VQVAE2@ep1:' in printed.out
    assert 'analysing gen_folder: 100%' in printed.err and '\r' not in printed.err  # progress lines in a log
    notes = json.loads((out2 / 'analysis.json').read_text())['notes']
    assert any('entropy skipped' in n for n in notes)
    assert not (out2 / 'entropy_vs_epoch.png').exists() and 'entropy skipped' in (out2 / 'analysis.md').read_text()


def test_train_classifier_command(tmp_path, sample_pairs, capsys):
    ckpt = tmp_path / 'c.pth'
    cli_classifier.main(['--images', str(sample_pairs / 'gt'), '--out', str(ckpt), '--steps', '3', '--patch', '16',
                         '--train-per-class', '2', '--holdout-per-class', '1', '--width', '4', '--device', 'cpu',
                         '--validation-images', '4'])
    printed = capsys.readouterr()
    assert 'held-out accuracy' in printed.out and 'validation, clean: clean share' in printed.out
    assert load_degradation_classifier(str(ckpt)).meta['steps'] == 3
    for name in ('c.confusion.png', 'c.per_class.csv', 'c.eval.json'):
        assert (tmp_path / name).is_file(), name
    # Progress in a log (pytest's stderr is not a terminal): lines every 10 %, no carriage returns.
    assert '\r' not in printed.err and 'training classifier: 100% (3/3 step)' in printed.err


# ------------------------------------------------------------------------------------------------- compare

def _fake_result(root, name, datasets):
    folder = root / name
    folder.mkdir(parents=True)
    lines = ['2025-01-01 10:00:00,000 INFO: \n  name: ' + name + '\n  val:[\n    metrics:[\n      psnr:[\n']
    for ds, metrics in datasets.items():
        lines.append(f'2025-01-01 10:00:01,000 INFO: Testing {ds}...\n')
        lines.append(f'2025-01-01 10:00:02,000 INFO: Validation {ds}\n')
        lines += [f'\t # {m}: {v:.4f}\tBest: {v:.4f} @ {name} iter\n' for m, v in metrics.items()]
        lines.append('\n')
    (folder / f'test_{name}_20250101_100000.log').write_text(''.join(lines))
    return str(folder)


def test_compare_ranks_better_model_first_and_shows_baseline_difference(tmp_path, capsys):
    base = _fake_result(tmp_path, 'official', {'RealSR_Canon': {'psnr': 26.0, 'ssim': 0.78, 'lpips': 0.30,
                                                                'niqe': 6.5}})
    good = _fake_result(tmp_path, 'finetuned', {'RealSR_Canon': {'psnr': 27.25, 'ssim': 0.80, 'lpips': 0.25,
                                                                 'niqe': 7.0}})
    assert compare.parse_test_log(compare.find_test_log(good)) == {
        'RealSR_Canon': {'psnr': 27.25, 'ssim': 0.8, 'lpips': 0.25, 'niqe': 7.0}}
    out = tmp_path / 'cmp'
    cli_compare.main([base, good, '--labels', 'w/o fine-tune', 'VQ-VAE-2 ep8', '--baseline', 'w/o fine-tune',
                  '--out', str(out)])
    md = (out / 'compare.md').read_text()
    rows = [line for line in md.splitlines() if line.startswith('| ') and not line.startswith('| rank')]
    assert rows[0].startswith('| 1 | VQ-VAE-2 ep8 |') and rows[1].startswith('| 2 | w/o fine-tune (baseline) |')
    assert '**27.25** (+1.25)' in rows[0] and '**0.2500** (-0.0500)' in rows[0]
    assert '7.000 (+0.500)' in rows[0] and '**6.500**' in rows[1]  # NIQE: lower is better
    assert 'PSNR↑' in md and 'LPIPS↓' in md and 'NIQE↓' in md
    csv_text = (out / 'compare.csv').read_text().splitlines()
    assert csv_text[0].startswith('rank,model,baseline,PSNR↑,PSNR↑ diff')
    assert csv_text[1].startswith('1,VQ-VAE-2 ep8,,27.25,1.25,') and csv_text[1].endswith('PSNR↑;SSIM↑;LPIPS↓')
    assert 'PSNR' in capsys.readouterr().out

    # Several test sets: one column per (set, metric); ranking by another metric.
    two = compare.build_table([('a', {'X': {'psnr': 20.0}, 'Y': {'psnr': 30.0}}),
                               ('b', {'X': {'psnr': 21.0}, 'Y': {'psnr': 29.0}})], sort_by='Y PSNR↑')
    assert [c['title'] for c in two.columns] == ['X PSNR↑', 'Y PSNR↑'] and two.rows[0]['label'] == 'a'
    with pytest.raises(SystemExit):
        cli_compare.main([base, '--baseline', 'nope', '--out', str(out)])



def test_default_classifier_photos_are_the_demos_training_parts_never_its_held_aside_photos():
    from undersr.analysis.classifier import load_clean_images
    from undersr.demo.photos import TEST_PHOTOS, TRAIN_PHOTOS, load_photo, split_train_val
    images, names = load_clean_images()
    assert names == list(TRAIN_PHOTOS) and not set(names) & set(TEST_PHOTOS)
    train, val = split_train_val(load_photo(names[0]), 4)
    assert np.array_equal(images[0], train) and images[0].shape[1] == 3 * (train.shape[1] + val.shape[1]) // 4
