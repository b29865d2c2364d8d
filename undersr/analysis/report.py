"""``undersr analyze``: the colour-shift and diversity measures of paper §4.3 for degraded datasets, with figures.

Input datasets:
    * written by ``undersr generate`` (``OUT/gt`` + ``OUT/lq`` folders or ``OUT/gt.lmdb`` + ``OUT/lq.lmdb``, with
      ``OUT/manifest.json``): samples are grouped by their degradation source, the manifest's ``recon`` (e.g.
      ``VQVAE2@ep8``), whose model type and epoch come from the manifest's ``checkpoints``;
    * any other paired dataset: a folder with ``gt``/``lq`` (or ``hr``/``lr``) sub-folders or LMDBs, or
      ``GT_PATH,LQ_PATH``. It is one group named after its folder.
    HR and LR are paired by file name without extension (LMDB keys have none).

Per sample the clean bicubic LR is recomputed from the HR (:func:`undersr.analysis.metrics.bicubic_lr`, MATLAB
bicubic) and compared with the degraded LR: mean CIEDE2000 ΔE (§4.3's colour shift). With a classifier
(``undersr train-degradation-classifier``), every degraded LR is assigned its most probable class, one of the 15
ImageNet-C corruptions or clean, and each group gets (:func:`undersr.analysis.metrics.score_labels`):

* ``clean_share``: the share of its images classified clean (an undegraded set scores near 1);
* ``entropy`` / ``normalized_entropy``: §4.3's diversity, the entropy of the corruption types of the images **not**
  classified clean (``n_degraded`` of them), raw and divided by log 15;
* ``paper_entropy``: the paper's own score, every image forced into one of the 15 corruptions (clean masked out).

With ``paper_classes=True`` (``--paper-classes``) the headline entropy is the paper's 15-class score and no clean
share is given; this also accepts a 15-class checkpoint of an older undersr. Without a classifier the entropy is
skipped with a notice. The report names the classifier (path, SHA-256, held-out accuracy) and carries a warning
when its held-out accuracy is below :data:`MIN_ACCURACY`.

Outputs in ``OUT``:
    * ``analysis.json``: everything below plus per-sample values (``nan`` written as ``null``);
    * ``analysis.md``: tables per source (pooled over datasets) and per dataset and group;
    * ``delta_e_hist.png``: ΔE histogram of every (dataset, group);
    * ``delta_e_vs_epoch.png``, ``entropy_vs_epoch.png`` and ``clean_share_vs_epoch.png`` (the last two only with
      a classifier, the last without ``paper_classes``): one line per model type over its epochs; groups without
      an epoch are drawn as dashed horizontal lines;
    * ``grid_<dataset>.png``: like the paper's Figures 3–5, one row per group: its name, then HR | bicubic LR |
      degraded LR on the same crop (the centre ``crop`` × ``crop`` LR pixels), for ``grid_samples`` samples.
      Samples whose key occurs in every dataset are shown first, so datasets generated from the same HR with the
      same seed show the same crops.
"""
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from os import path as osp

from undersr.analysis.corruptions import CORRUPTIONS
from undersr.analysis.metrics import CLEAN, bicubic_lr, delta_e_to_bicubic, score_labels, summarize
from undersr.data.image_source import ImageSource
from undersr.image_io import IMAGE_EXTENSIONS, decode_image_noted, to_uint8
from undersr.progress import progress as progress_bar
from undersr.visualize import image_grid, new_figure, save_image

import cv2
import numpy as np

__all__ = ['analyze', 'open_dataset', 'PairedDataset', 'json_safe', 'describe_classifier', 'MIN_ACCURACY']

# Below this held-out accuracy (16 classes, chance 1/16) the report warns: more than a third of the patches are then
# misclassified, so a set's entropy says as much about the classifier's confusions as about the data. The measured
# classifier of docs/analysis.md (the defaults: 1500 steps, 32-pixel patches) reaches 0.60-0.67 over three seeds;
# 300 steps on 16-pixel patches, 0.31.
MIN_ACCURACY = 0.65

GT_NAMES = ('gt.lmdb', 'gt', 'GT', 'hr.lmdb', 'hr', 'HR')
LQ_NAMES = ('lq.lmdb', 'lq', 'LQ', 'lr.lmdb', 'lr', 'LR')
_SOURCE_NAME = re.compile(r'^(?P<type>.+)@ep(?P<epoch>\d+)$')
NO_CLASSIFIER_NOTICE = ('entropy skipped: no classifier given. Train one with `undersr train-degradation-classifier '
                        '--out experiments/degradation_classifier.pth` and pass it with --classifier.')


@dataclass
class PairedDataset:
    """An HR/LR dataset to analyse.

    Attributes:
        name (str): Display name (unique among the analysed datasets).
        root (str): Where it was found.
        gt (ImageSource): HR images.
        lq (ImageSource): Degraded LR images.
        pairs (list[tuple[str, int, int]]): (key, HR index, LR index), sorted by key.
        groups (dict[str, str]): key → group (degradation source).
        sources (dict[str, dict]): group → ``{'type': str | None, 'epoch': int | None}``.
        scale (int | None): From the manifest, else inferred from the first pair.
        manifest (dict | None): ``manifest.json`` when there is one.
    """
    name: str
    root: str
    gt: ImageSource
    lq: ImageSource
    pairs: list
    groups: dict
    sources: dict = field(default_factory=dict)
    scale: int = None
    manifest: dict = None


def _strip_ext(key):
    stem, ext = osp.splitext(key)
    return stem if ext.lower() in IMAGE_EXTENSIONS else key


def _first_existing(root, names):
    for name in names:
        if osp.isdir(osp.join(root, name)):
            return osp.join(root, name)
    return None


def source_info(name, checkpoints=()):
    """Model type and epoch of a source name, from the manifest's ``checkpoints`` or a ``TYPE@epN`` name."""
    for ckpt in checkpoints or ():
        if ckpt.get('name') == name:
            return {'type': ckpt.get('type'), 'epoch': ckpt.get('epoch')}
    match = _SOURCE_NAME.match(name)
    if match:
        return {'type': match['type'], 'epoch': int(match['epoch'])}
    return {'type': None, 'epoch': None}


def open_dataset(spec, name=None):
    """Opens a dataset given as a folder (generated or paired) or as ``GT_PATH,LQ_PATH``.

    Raises:
        FileNotFoundError: nothing usable at ``spec``.
        ValueError: HR and LR share no key.
    """
    manifest = None
    if ',' in spec and not osp.exists(spec):
        gt_root, lq_root = spec.split(',', 1)
        root = osp.dirname(osp.normpath(gt_root)) or '.'
    else:
        root = spec
        if not osp.isdir(root):
            raise FileNotFoundError(f'dataset not found: {spec}')
        gt_root, lq_root = _first_existing(root, GT_NAMES), _first_existing(root, LQ_NAMES)
        if gt_root is None or lq_root is None:
            raise FileNotFoundError(f'{spec}: expected HR and LR sub-folders or LMDBs ({"/".join(GT_NAMES)} and '
                                    f'{"/".join(LQ_NAMES)}), or pass GT_PATH,LQ_PATH')
        if osp.isfile(osp.join(root, 'manifest.json')):
            with open(osp.join(root, 'manifest.json')) as f:
                manifest = json.load(f)
    gt, lq = ImageSource(gt_root), ImageSource(lq_root)
    gt_keys = {_strip_ext(k): i for i, k in enumerate(gt.keys)}
    lq_keys = {_strip_ext(k): i for i, k in enumerate(lq.keys)}
    keys = sorted(set(gt_keys) & set(lq_keys))
    if not keys:
        raise ValueError(f'{spec}: no HR image in {gt_root} has a partner of the same name in {lq_root}')
    name = name or osp.basename(osp.normpath(root))
    groups, sources = {}, {}
    checkpoints = (manifest or {}).get('checkpoints', ())
    recon = {s['key']: s.get('recon') for s in (manifest or {}).get('samples', ()) if 'key' in s}
    for key in keys:
        group = recon.get(key) or name
        groups[key] = group
        if group not in sources:
            sources[group] = source_info(group, checkpoints) if group in recon.values() else \
                {'type': None, 'epoch': None}
    scale = (manifest or {}).get('scale')
    if not scale:
        first = keys[0]
        h_gt = decode_image_noted(gt.read(gt_keys[first]), gt.name(gt_keys[first]))[0].shape[0]
        h_lq = decode_image_noted(lq.read(lq_keys[first]), lq.name(lq_keys[first]))[0].shape[0]
        scale = max(1, int(round(h_gt / h_lq)))
    pairs = [(k, gt_keys[k], lq_keys[k]) for k in keys]
    return PairedDataset(name, root, gt, lq, pairs, groups, sources, int(scale), manifest)


def _evenly(items, limit):
    if not limit or len(items) <= limit:
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, limit).round().astype(int)]


def _safe(name):
    return re.sub(r'[^A-Za-z0-9_.-]', '_', name)


def _rgb(source, index):
    """Decoded image ``index`` of ``source`` as (H, W, 3) float32 RGB in [0, 1]."""
    return decode_image_noted(source.read(index), source.name(index))[0][..., ::-1]




def _text_cell(lines, size):
    """A white (size, size, 3) cell with up to four lines of black text."""
    cell = np.full((size, size, 3), 255, np.uint8)
    for i, line in enumerate(lines[:4]):
        cv2.putText(cell, str(line)[:size // 7], (4, 18 + 16 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return cell


def _group_order(sources):
    """Groups sorted by model type, then epoch (groups without either last, by name)."""
    def key(group):
        info = sources[group]
        return (info['type'] is None, str(info['type']), info['epoch'] if info['epoch'] is not None else -1, group)
    return sorted(sources, key=key)


def json_safe(obj):
    """``obj`` with NaN and infinite floats as ``None`` and NumPy scalars as Python ones, for ``json.dump``."""
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    return obj


def _diversity(samples, classes):
    """:func:`undersr.analysis.metrics.score_labels` of the samples' predictions, counts named by class."""
    scores = score_labels([s['class_index'] for s in samples], [s['corruption_index'] for s in samples], classes)
    scores['class_counts'] = {c: n for c, n in zip(classes, scores['class_counts']) if n}
    return scores


def _group_stats(samples, classes):
    stats = {'n': len(samples), 'delta_e': summarize([s['delta_e'] for s in samples])}
    if classes:
        stats.update({k: v for k, v in _diversity(samples, classes).items() if k != 'n'})
    return stats


def _fmt(value, digits=3):
    return '–' if value is None or (isinstance(value, float) and math.isnan(value)) else f'{value:.{digits}f}'


def _plot_vs_epoch(by_source, metric, ylabel, title, path, reference=None):
    """One line per model type over epochs; sources without an epoch as dashed horizontal lines."""
    fig = new_figure()
    ax = fig.subplots()
    lines = {}
    for name, info in by_source.items():
        value = info.get(metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if info['type'] is not None and info['epoch'] is not None:
            lines.setdefault(info['type'], []).append((info['epoch'], value))
        else:
            ax.axhline(value, linestyle='--', linewidth=1, color='grey')
            ax.annotate(name, (0.01, value), xycoords=('axes fraction', 'data'), fontsize=8, va='bottom')
    epochs = sorted({e for pts in lines.values() for e, _ in pts})
    for model_type, points in sorted(lines.items()):
        points.sort()
        ax.plot([e for e, _ in points], [v for _, v in points], marker='o', label=model_type)
    if epochs and min(epochs) > 0 and max(epochs) / min(epochs) >= 4:
        ax.set_xscale('log', base=2)
    if epochs:
        ax.set_xticks(epochs)
        ax.set_xticklabels([str(e) for e in epochs])
    if reference is not None:
        ax.axhline(reference[0], linestyle=':', color='black', linewidth=1)
        ax.annotate(reference[1], (0.99, reference[0]), xycoords=('axes fraction', 'data'), ha='right',
                    va='top', fontsize=8)
    if not lines and not ax.lines:
        ax.text(0.5, 0.5, 'no values', ha='center', va='center', transform=ax.transAxes)
    ax.set_xlabel('epochs of the reconstruction network')
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if lines:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


def _plot_histograms(results, path):

    series = []
    for ds_name, ds in results.items():
        by_group = {}
        for s in ds['samples']:
            if s['delta_e'] is not None and not math.isnan(s['delta_e']):
                by_group.setdefault(s['group'], []).append(s['delta_e'])
        for group, values in by_group.items():
            series.append((group if len(results) == 1 else f'{ds_name}: {group}', values))
    fig = new_figure()
    ax = fig.subplots()
    values = [v for _, vs in series for v in vs]
    if values:
        bins = np.histogram_bin_edges(values, bins=int(min(30, max(5, len(values) // 2))))
        for label, vs in series:
            ax.hist(vs, bins=bins, histtype='step', linewidth=1.5, label=f'{label} (n={len(vs)})')
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, 'no values', ha='center', va='center', transform=ax.transAxes)
    ax.set_xlabel('mean CIEDE2000 ΔE per image (bicubic LR vs degraded LR)')
    ax.set_ylabel('images')
    ax.set_title('Colour shift per degradation source (paper §4.3)')
    fig.tight_layout()
    fig.savefig(path)


def describe_classifier(info):
    """One line naming the classifier the diversity numbers rest on (path, SHA-256, network, held-out accuracy,
    classes, training steps and the clean threshold it applies)."""
    digest = f', sha256 {info["sha256"][:16]}…' if info.get('sha256') else ''
    network = f' ({info["network"]})' if info.get('network') else ''
    cut = info.get('clean_threshold')
    rule = f', clean when P(clean) ≥ {cut:.3f}' if cut is not None else ''
    return (f'classifier `{info["path"]}`{digest}{network}: held-out accuracy {_fmt(info.get("holdout_accuracy"))} '
            f'over {len(info["classes"])} classes ({info["steps"] if info.get("steps") else "?"} training steps{rule})')


def _markdown(report):
    paper = report['paper_classes']
    diversity = ('entropy H (nats) of the predicted ImageNet-C corruption types (one vote per image, its argmax '
                 'over the 15 corruptions), and H / log 15, as in paper §4.3' if paper else
                 'share of images classified clean (no degradation but bicubic), and entropy H (nats) of the '
                 'predicted ImageNet-C corruption types of the images not classified clean (one vote per image), '
                 'and H / log 15 (paper §4.3, with a clean class; the paper\'s own 15-class score is `paper_entropy` '
                 'in analysis.json)')
    lines = ['# Dataset analysis', '',
             'Colour shift: mean CIEDE2000 ΔE between the bicubic LR (recomputed from HR) and the degraded LR '
             f'(paper §4.3). Diversity: {diversity}.', '']
    clf = report['classifier']
    if clf:
        lines += [f'The diversity numbers rest on the {describe_classifier(clf)}.', '']
    for note in report['notes']:
        lines += [f'> {note}', '']
    lines += ['## By source (pooled over datasets)', '',
              '| source | model | epoch | images | ΔE mean | ΔE std | clean share | entropy H | H / log 15 |',
              '|' + '---|' * 9]
    for name, s in report['by_source'].items():
        lines.append(f'| {name} | {s["type"] or "–"} | {s["epoch"] if s["epoch"] is not None else "–"} | {s["n"]} | '
                     f'{_fmt(s["delta_e_mean"])} | {_fmt(s["delta_e_std"])} | {_fmt(s.get("clean_share"), 2)} | '
                     f'{_fmt(s.get("entropy"))} | {_fmt(s.get("normalized_entropy"))} |')
    for ds_name, ds in report['datasets'].items():
        lines += ['', f'## {ds_name}', '',
                  f'`{ds["root"]}` ({ds["kind"]}, ×{ds["scale"]}, {ds["num_analyzed"]} of {ds["num_pairs"]} pairs '
                  'analysed).', '',
                  '| group | model | epoch | images | ΔE mean ± std | ΔE median | clean share | entropy H | '
                  'H / log 15 | most frequent classes |', '|' + '---|' * 10]
        for group, g in list(ds['groups'].items()) + [('**all**', ds['overall'])]:
            info = ds['sources'].get(group, {'type': None, 'epoch': None})
            top = ', '.join(f'{c} ({n})' for c, n in sorted(g.get('class_counts', {}).items(),
                                                              key=lambda kv: -kv[1])[:3]) or '–'
            de = g['delta_e']
            lines.append(f'| {group} | {info["type"] or "–"} | '
                         f'{info["epoch"] if info["epoch"] is not None else "–"} | {g["n"]} | '
                         f'{_fmt(de["mean"])} ± {_fmt(de["std"])} | {_fmt(de["median"])} | '
                         f'{_fmt(g.get("clean_share"), 2)} | {_fmt(g.get("entropy"))} | '
                         f'{_fmt(g.get("normalized_entropy"))} | {top} |')
        if ds.get('grid'):
            lines += ['', f'![{ds_name}]({ds["grid"]})']
    lines += ['', '## Files', ''] + [f'- `{f}`' for f in report['files']]
    return '\n'.join(lines) + '\n'


def _open_classifier(classifier, device, paper_classes):
    """The model, its description for the report and the classes its scores use (``None`` without a classifier).

    Raises:
        ValueError: a 15-class classifier without ``paper_classes``, or classes that are not undersr's.
    """
    from undersr.analysis.classifier import CLASSES, load_degradation_classifier
    from undersr.degrade import file_sha256

    if classifier is None:
        return None, None, None
    if isinstance(classifier, (str, os.PathLike)):
        model = load_degradation_classifier(str(classifier), device)
        path, digest = str(classifier), file_sha256(str(classifier))
    else:
        model, path, digest = classifier, '<in-memory model>', None
    meta = getattr(model, 'meta', {})
    classes = list(getattr(model, 'classes', CLASSES))
    if classes not in (list(CLASSES), list(CORRUPTIONS)):
        raise ValueError(f'{path}: the classifier predicts {classes}, not the ImageNet-C corruptions (and clean) of '
                         'undersr.analysis; retrain it with `undersr train-degradation-classifier`')
    if CLEAN not in classes and not paper_classes:
        raise ValueError(f'{path} predicts only the 15 ImageNet-C corruptions, without the "clean" class (a '
                         'checkpoint of an older undersr): pass --paper-classes for the paper\'s 15-class score, or '
                         'retrain it with `undersr train-degradation-classifier --out PATH` for the clean share')
    info = {'path': path, 'sha256': digest, 'network': meta.get('network', type(model).__name__),
            'holdout_accuracy': meta.get('accuracy'), 'steps': meta.get('steps'),
            'patch': getattr(model, 'patch', None), 'classes': classes, 'min_accuracy': MIN_ACCURACY,
            'clean_threshold': None if paper_classes else getattr(model, 'clean_threshold', None)}
    return model, info, list(CORRUPTIONS) if paper_classes else classes


def analyze(datasets, out_dir, classifier=None, max_images=None, grid_samples=2, crop=32, device='cpu',
            progress=True, paper_classes=False):
    """Analyses degraded datasets and writes the report files (see the module docstring).

    Args:
        datasets (Sequence[str]): Dataset folders (or ``GT_PATH,LQ_PATH``).
        out_dir (str): Output folder, created if needed.
        classifier (str | DegradationClassifier | None): Checkpoint of ``undersr train-degradation-classifier``
            (or a loaded model). ``None``: entropy is skipped with a notice.
        max_images (int | None): Analyse at most this many pairs per dataset (evenly spread over the sorted keys).
        grid_samples (int): Samples per group in the image grids.
        crop (int): Side of the LR crop shown in the grids (HR crop: ``crop · scale``).
        device (str): Device of the classifier.
        progress (bool): Show progress (a bar in a terminal, a line every 10 % in a log).
        paper_classes (bool): Score diversity as the paper does, every image forced into one of the 15
            corruptions (the 16-class classifier's clean class masked out; a 15-class checkpoint is used as is),
            without a clean share. Masking, rather than a separately trained 15-class network, keeps both scores
            on one classifier, so they differ only in how clean images are counted.

    Returns:
        dict: The report, as written to ``analysis.json`` (with ``nan`` instead of ``null``).
    """
    from undersr.analysis.classifier import predict_labels

    model, clf_info, classes = _open_classifier(classifier, device, paper_classes)
    os.makedirs(out_dir, exist_ok=True)
    notes = [] if model is not None else [NO_CLASSIFIER_NOTICE]
    if clf_info is not None:
        accuracy = clf_info['holdout_accuracy']
        if accuracy is None or accuracy < MIN_ACCURACY:
            notes.append(f'warning: the classifier\'s held-out accuracy ({_fmt(accuracy)}) is below {MIN_ACCURACY}: '
                         'its entropy and clean share are unreliable. Train longer or on more photos (`undersr '
                         'train-degradation-classifier --steps N --images DIR`) and check its confusion matrix.')

    opened, used = [], set()
    for spec in datasets:
        ds = open_dataset(spec)
        base, n = ds.name, 2
        while ds.name in used:
            ds.name, n = f'{base}_{n}', n + 1
        used.add(ds.name)
        opened.append(ds)
    subsets = {ds.name: _evenly(ds.pairs, max_images) for ds in opened}
    key_sets = [{k for k, _, _ in subsets[ds.name]} for ds in opened]
    shared = set.intersection(*key_sets) if len(key_sets) > 1 else set()

    results, grids_rows = {}, {}
    for ds in opened:
        subset = subsets[ds.name]
        order = sorted(subset, key=lambda p: (p[0] not in shared, p[0]))
        chosen = {}
        for key, _, _ in order:
            picks = chosen.setdefault(ds.groups[key], [])
            if len(picks) < grid_samples:
                picks.append(key)
        wanted = {k for picks in chosen.values() for k in picks}
        crops, samples = {}, []
        for key, gi, li in progress_bar(subset, desc=f'analysing {ds.name}', disable=not progress, leave=False):
            hr, lq = _rgb(ds.gt, gi), _rgb(ds.lq, li)
            record = {'key': key, 'group': ds.groups[key], 'delta_e': delta_e_to_bicubic(hr, lq, ds.scale)}
            if model is not None:
                label, corruption, confidence = (v[0] for v in predict_labels(model, [lq]))
                label = corruption if paper_classes else label
                record.update(predicted=classes[label], class_index=int(label), corruption_index=int(corruption),
                              confidence=float(confidence))
            samples.append(record)
            if key in wanted:
                clean = bicubic_lr(hr, ds.scale)
                h, w = min(clean.shape[0], lq.shape[0]), min(clean.shape[1], lq.shape[1])
                c = min(crop, h, w)
                top, left = (h - c) // 2, (w - c) // 2
                s = ds.scale
                crops[key] = [to_uint8(hr[top * s:(top + c) * s, left * s:(left + c) * s]),
                              to_uint8(clean[top:top + c, left:left + c]), to_uint8(lq[top:top + c, left:left + c])]
        groups = {}
        for group in _group_order(ds.sources):
            members = [s for s in samples if s['group'] == group]
            if members:
                groups[group] = _group_stats(members, classes)
        results[ds.name] = {
            'root': os.path.abspath(ds.root), 'kind': 'generated' if ds.manifest else 'paired', 'scale': ds.scale,
            'num_pairs': len(ds.pairs), 'num_analyzed': len(samples),
            'sources': {g: ds.sources[g] for g in groups}, 'groups': groups,
            'overall': _group_stats(samples, classes), 'samples': samples}
        rows = []
        for group in groups:
            row = [_text_cell([*group.split('@', 1), f'n={groups[group]["n"]}'], 128)]
            for key in chosen.get(group, []):
                row += crops[key]
            rows.append(row)
        grids_rows[ds.name] = (rows, max(len(p) for p in chosen.values()))

    # Pool each source over the datasets (the same checkpoint may have made several datasets).
    by_source = {}
    for ds_name, ds in results.items():
        for s in ds['samples']:
            entry = by_source.setdefault(s['group'], {**ds['sources'][s['group']], 'datasets': [], 'samples': []})
            if ds_name not in entry['datasets']:
                entry['datasets'].append(ds_name)
            entry['samples'].append(s)
    for name, entry in by_source.items():
        members = entry.pop('samples')
        stats = summarize([s['delta_e'] for s in members])
        entry.update(n=stats['n'], delta_e_mean=stats['mean'], delta_e_std=stats['std'])
        if model is not None:
            entry.update({k: v for k, v in _diversity(members, classes).items() if k != 'n'})
    by_source = {k: by_source[k] for k in _group_order(by_source)}

    files = ['analysis.json', 'analysis.md', 'delta_e_hist.png', 'delta_e_vs_epoch.png']
    _plot_histograms(results, osp.join(out_dir, 'delta_e_hist.png'))
    _plot_vs_epoch(by_source, 'delta_e_mean', 'mean CIEDE2000 ΔE (bicubic LR vs degraded LR)',
                   'Colour shift over training (paper §4.3)', osp.join(out_dir, 'delta_e_vs_epoch.png'))
    if model is not None:
        _plot_vs_epoch(by_source, 'entropy', 'entropy H of predicted corruption types (nats)' if paper_classes else
                       'entropy H of the corruption types of the images not classified clean (nats)',
                       'Degradation diversity over training (paper §4.3)', osp.join(out_dir, 'entropy_vs_epoch.png'),
                       reference=(math.log(len(CORRUPTIONS)), 'log 15 (uniform)'))
        files.append('entropy_vs_epoch.png')
    if model is not None and not paper_classes:
        _plot_vs_epoch(by_source, 'clean_share', 'share of images classified clean',
                       'Undegraded share over training', osp.join(out_dir, 'clean_share_vs_epoch.png'))
        files.append('clean_share_vs_epoch.png')
    for ds_name, (rows, per_row) in grids_rows.items():
        grid_file = f'grid_{_safe(ds_name)}.png'
        labels = ['source'] + ['HR', 'bicubic LR', 'degraded LR'] * per_row
        grid = image_grid(rows, cell=128, labels=labels)
        save_image(osp.join(out_dir, grid_file), np.ascontiguousarray(grid[..., ::-1]))  # RGB → BGR
        results[ds_name]['grid'] = grid_file
        files.append(grid_file)

    report = {'classifier': clf_info, 'notes': notes, 'by_source': by_source, 'datasets': results, 'files': files,
              'classes': classes, 'paper_classes': bool(paper_classes)}
    with open(osp.join(out_dir, 'analysis.json'), 'w') as f:
        json.dump(json_safe(report), f, indent=1, ensure_ascii=False)
    with open(osp.join(out_dir, 'analysis.md'), 'w') as f:
        f.write(_markdown(report))
    for note in notes:
        print(f'undersr analyze: {note}', file=sys.stderr)
    return report
