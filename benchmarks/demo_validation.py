"""Chooses `undersr demo`'s settings on the validation parts only: pre-training and fine-tune variants over seeds.

Runs the demo's own steps (:class:`undersr.demo.pipeline.Demo`, the option files under ``options/demo/``) at the
full size, but tests every model on the validation parts of the training-side photos only: the held-aside test
photos are never read. Finished runs are kept in ``--out`` and reused, so variants can be added one command at a
time. Prints, per variant, PSNR-Y / SSIM-Y (mean ± std over seeds) on each validation set, the difference to
bicubic upsampling with its lower bound (mean − 2 × std), the seed-paired differences to the control, and the CPU
seconds of every run, twice: over all validation parts, then over those of the everyday-scene photos
(``undersr.demo.photos.SCENE_PHOTOS``); writes the CPU seconds to ``OUT/validation.json``.

Examples (docs/demo-choices.md quotes their output)::

    python benchmarks/demo_validation.py --out /tmp/dv --pretrain pre:1000 --seeds 0 1 2 \\
        --finetune s0.25:pre:0.25 s0.5:pre:0.5 full:pre:none --control pre

A pre-training variant is ``NAME:ITERATIONS[:SIGMA]`` (``SIGMA``: ``NoisyPairedImageDataset`` with σ ~ U[0, SIGMA] /
255 on the share of LR crops that ``sr_pretrain.yml``'s ``noise_prob`` names, half where it names none; without
``SIGMA``, the template's own dataset). A fine-tune is ``NAME:PRETRAINED:STRENGTH[:EPOCHS]`` (strength ``none``: the
reconstruction itself; epochs ``+``-joined, default 16); ``--control PRETRAINED`` adds the bicubic control.
Fine-tunes and controls add the LR noise of their templates (``options/demo/sr_finetune.yml``'s ``lq_noise``,
``sr_control.yml``'s dataset). With ``--pretrain-seeds 0`` every fine-tune seed starts from the pre-trained model of
seed 0. ``--smoke`` runs one tiny variant of each kind at ``undersr demo --quick``'s sizes in a temporary folder
(for the tests).
"""
import argparse
import json
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from multiprocessing import get_context
from os import path as osp

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import undersr  # noqa: E402,F401  (registers with BasicSR)
from undersr.demo import options  # noqa: E402
from undersr.demo.degradations import DEGRADATIONS  # noqa: E402
from undersr.demo.evaluate import evaluate  # noqa: E402
from undersr.demo.photos import SCENE_PHOTOS  # noqa: E402
from undersr.demo.pipeline import FULL, METHOD, QUICK, Demo  # noqa: E402
from undersr.demo.summary import difference, per_seed, stats  # noqa: E402

import yaml  # noqa: E402

HEADER = '| method | ' + ' | '.join(DEGRADATIONS) + ' |\n' + '|---' * (len(DEGRADATIONS) + 1) + '|'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', help='working folder (reused between calls)')
    parser.add_argument('--smoke', action='store_true', help="tiny run at --quick's sizes (tests)")
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--pretrain-seeds', type=int, nargs='+', help='default: --seeds')
    parser.add_argument('--pretrain', nargs='*', default=[], metavar='NAME:ITERS[:SIGMA]')
    parser.add_argument('--finetune', nargs='*', default=[], metavar='NAME:PRETRAINED:STRENGTH[:EPOCHS]')
    parser.add_argument('--control', nargs='*', default=[], metavar='PRETRAINED')
    parser.add_argument('--workers', type=int, default=2)
    args = parser.parse_args(argv)
    if args.smoke:
        args.out = args.out or tempfile.mkdtemp(prefix='demo_validation_')
        args.pretrain, args.pretrain_seeds, args.seeds = ['pre:6:4'], [0], [0, 1]
        args.finetune, args.control, args.workers = ['mix:pre:0.5:2+16'], ['pre'], 1
    elif not args.out:
        parser.error('--out is required (or --smoke)')
    return args


def run_jobs(demo, jobs, workers, cpu):
    """Runs ``(model name, kind, option path)`` jobs not yet in ``cpu`` (two at a time); records CPU seconds."""
    todo = [job for job in jobs if job[0] not in cpu]
    if not todo:
        return
    with ProcessPoolExecutor(workers, mp_context=get_context('spawn')) if workers > 1 else nullcontext() as pool:
        seconds = (pool.map if pool else map)(options._run, [(kind, demo.out, path, 1) for _, kind, path in todo])
        for (name, _, _), value in zip(todo, seconds):
            cpu[name] = value
            print(f'{name}: {value:.0f} CPU-s', flush=True)


def val_test_options(demo, model):
    """``test_sr.yml`` for ``model`` with the validation datasets only."""
    path = demo.test_options(model)
    with open(path) as f:
        text = f.read()
    opt = yaml.safe_load(text)
    opt['datasets'] = {k: v for k, v in opt['datasets'].items() if k.startswith('val_')}
    with open(path, 'w') as f:
        f.write(''.join(line + '\n' for line in text.splitlines() if line.startswith('#')))
        yaml.safe_dump(opt, f, sort_keys=False)
    return path


def main(argv=None):
    args = parse_args(argv)
    demo = Demo(args.out, QUICK if args.smoke else FULL, 0, args.workers)
    state_path = osp.join(demo.out, 'validation.json')
    state = json.load(open(state_path)) if osp.isfile(state_path) else {'cpu': {}}
    cpu = state['cpu']
    if not osp.isdir(demo.data):
        demo.prepare_data()
    pre_seeds = args.pretrain_seeds or args.seeds
    jobs = [('recon', 'train', demo.recon_options())]  # alongside the pre-training, as in the demo
    noise_prob = options.load_template('sr_pretrain')['datasets']['train'].get('noise_prob', 0.5)
    for spec in args.pretrain:
        name, iters, *sigma = spec.split(':')
        extra = {'train:total_iter': int(iters), 'train:scheduler:periods': [int(iters)]}
        if sigma:
            extra.update({'datasets:train:type': 'NoisyPairedImageDataset', 'datasets:train:noise_prob': noise_prob,
                          'datasets:train:noise_range': [0, float(sigma[0])]})
        for s in pre_seeds:
            jobs.append((f'sr_{name}_seed{s}', 'train', demo.sr_options(
                'sr_pretrain', f'demo_sr_{name}_seed{s}', s, extra)))
    run_jobs(demo, jobs, args.workers, cpu)
    demo.export_recon()
    demo.export_sr([name for name, _, _ in jobs[1:]])

    def start(pretrained, seed):
        return {'path:pretrain_network_g': demo.sr_weights(
            f'sr_{pretrained}_seed{seed if seed in pre_seeds else pre_seeds[0]}')}

    jobs = []
    for spec in args.finetune:
        name, pretrained, strength, *epochs = spec.split(':')
        method = dict(METHOD, strength=None if strength == 'none' else float(strength),
                      recon_epochs=tuple(int(e) for e in (epochs[0] if epochs else '16').split('+')))
        for s in args.seeds:
            jobs.append((f'sr_{name}_seed{s}', 'train', demo.sr_options(
                'sr_finetune', f'demo_sr_{name}_seed{s}', s, {**demo.finetune_extra(method), **start(pretrained, s)})))
    for pretrained in args.control:
        for s in args.seeds:
            jobs.append((f'sr_control-{pretrained}_seed{s}', 'train', demo.sr_options(
                'sr_control', f'demo_sr_control-{pretrained}_seed{s}', s, start(pretrained, s))))
    run_jobs(demo, jobs, args.workers, cpu)
    demo.export_sr([name for name, _, _ in jobs])

    models = sorted(name for name in cpu if name.startswith('sr_'))
    run_jobs(demo, [(f'test_{m}', 'test', val_test_options(demo, m)) for m in models], args.workers, cpu)
    with open(state_path, 'w') as f:
        json.dump(state, f, indent=1)
    rows = evaluate(demo, models, splits=('val', ), niqe_set=False)
    report('All validation parts', per_seed(rows), args.control)
    report(f'Validation parts of the scene photos ({", ".join(SCENE_PHOTOS)})',
           per_seed([r for r in rows if r['image'] in SCENE_PHOTOS]), args.control)
    print('\nCPU seconds per run:', json.dumps({k: round(v) for k, v in sorted(cpu.items())}))
    print(f'summary: {len(models)} models scored on the validation parts of {demo.out}; '
          f'{sum(cpu.values()) / 60:.1f} CPU-min of runs')
    if args.smoke:
        shutil.rmtree(demo.out)


def report(title, table, controls):
    """Prints the validation table, each model minus bicubic upsampling, and differences to each control."""
    methods = sorted({key[2] for key in table})
    print(f'\n{title}, PSNR-Y / SSIM-Y, mean ± std over seeds')
    print(HEADER)
    for method in methods:
        cells = []
        for subset in DEGRADATIONS:
            (p, ps), (s, ss) = (stats(table[('val', subset, method)], m) for m in ('psnr_y', 'ssim_y'))
            cells.append(f'{p:.2f} ± {ps:.2f} / {s:.4f} ± {ss:.4f}')
        print(f'| {method} | ' + ' | '.join(cells) + ' |')
    print(f'\n{title}, minus bicubic upsampling: Δ PSNR-Y (dB), mean ± std over seeds '
          '(lower bound mean − 2 × std)')
    print(HEADER)
    for method in methods:
        if method != 'bicubic':
            cells = [difference(table, 'val', subset, method, 'bicubic', 'psnr_y')[:2] for subset in DEGRADATIONS]
            print(f'| {method} | ' + ' | '.join(f'{m:+.2f} ± {s:.2f} ({m - 2 * s:+.2f})' for m, s in cells) + ' |')
    for control in controls:
        reference = f'sr_control-{control}'
        print(f'\nMinus {reference}, paired by seed: Δ PSNR-Y (dB) / Δ SSIM-Y, mean ± std')
        print(HEADER)
        for method in methods:
            if method in ('bicubic', reference):
                continue
            cells = []
            for subset in DEGRADATIONS:
                p = difference(table, 'val', subset, method, reference, 'psnr_y')
                s = difference(table, 'val', subset, method, reference, 'ssim_y')
                cells.append(f'{p[0]:+.2f} ± {p[1]:.2f} / {s[0]:+.4f} ± {s[1]:.4f}')
            print(f'| {method} | ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
    main()
