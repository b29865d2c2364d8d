"""``undersr demo``: the paper's experiment in miniature, on photos that ship with installed packages.

Steps (each a BasicSR run of an option file under ``options/demo/``; the copies that ran, with their overrides,
land in ``DIR/options/``):

1. write the data: training tiles and 64² patches from the training-side photos, their validation parts, and the
   six held-aside photos under plain bicubic ×4 and three realistic degradations (:mod:`undersr.demo.degradations`);
2. train a small VQ-VAE-2 for a few epochs, keeping epoch checkpoints (paper §3.2), and pre-train a compact SR
   network once on bicubic pairs, half of them with noise on the LR (the stand-in for official weights);
3. per seed, fine-tune it on undertrained degradations made on the fly (paper §3), as the control on bicubic pairs
   of the same tiles for as many iterations, and as a ceiling (an oracle) on the same tiles under the test's own
   realistic degradations, all from that one pre-trained model;
4. run every model on the validation and test sets (``test.py``'s pipeline);
5. score them: PSNR-Y and SSIM-Y against HR, NIQE on LR photos without HR;
6. write ``DIR/report.md`` (tables with seed spread, issue 11's target, pictures), ``DIR/metrics.csv``, the
   weights in ``DIR/models/``, and ``undersr upscale --compare``'s side-by-side page of the seed-0 models on the
   no-ground-truth LR photos (``DIR/upscale/compare/index.html`` and ``grid.png``).
"""
import os
import resource
import subprocess
import sys
import time
from os import path as osp

from undersr.demo import figures, options
from undersr.demo.degradations import REALISTIC
from undersr.demo.evaluate import NIQE_SET, degradation_strength, evaluate, split_name
from undersr.demo.pipeline import FULL, METHOD, PRETRAINED, QUICK, Demo, ablation_variants
from undersr.demo.report import report_path, write_report
from undersr.demo.summary import per_photo_table, per_seed, write_csv
from undersr.device import resolve_device

STEPS = 6


def cpu_seconds(demo=None):
    """CPU seconds (user + system) of this process and of the runs in ``demo``'s process pool."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime + (demo.run.pool_cpu if demo else 0.0)


def git_commit():
    """The repository's commit (with ``-dirty`` for uncommitted changes), or ``'unknown'`` outside a checkout."""
    here = osp.dirname(osp.abspath(__file__))
    try:
        return subprocess.run(['git', 'describe', '--always', '--dirty', '--abbrev=12'], cwd=here,
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'


def run(out='demo_out', device='auto', quick=False, workers=None, ablation=False):
    """Runs the whole demo into ``out``; returns ``(report path, whether issue 11's target was met)``.

    Args:
        out (str): Output folder.
        device (str): ``'auto'``, ``'cpu'`` or ``'cuda'``.
        quick (bool): Every step with tiny sizes (for tests); the numbers mean nothing.
        workers (int | None): BasicSR runs at a time; default 2 on a CPU with at least 2 cores (1 with ``quick``
            or on a GPU).
        ablation (bool): Also fine-tune the variants of :data:`ABLATION` (each epoch alone, no colour correction)
            and report them (the paper's two findings in miniature).
    """
    start, cpu_start, commit = time.time(), cpu_seconds(), git_commit()  # the code as it starts
    size = QUICK if quick else FULL
    device = resolve_device(device)
    if workers is None:
        workers = 1 if quick or device.type == 'cuda' else min(2, os.cpu_count() or 1)
    # --quick's tensors are tiny: one thread each (extra threads only spin)
    demo = Demo(out, size, 1 if device.type == 'cuda' else 0, workers, threads=1 if quick else None)
    seeds = size['seeds']
    variants = {'finetuned': METHOD, **(ablation_variants(demo.recon_epochs()) if ablation else {})}

    def stage(i, text):
        print(f'\n[{i}/{STEPS}] {text} ({time.time() - start:.0f} s so far, CPU {cpu_seconds(demo) - cpu_start:.0f} s)',
              flush=True)

    try:
        stage(1, 'writing the training, validation and held-aside test data')
        demo.prepare_data()
        stage(2, 'training VQ-VAE-2 and pre-training the SR model')
        demo.run([('train', demo.recon_options()),
                  ('train', demo.sr_options('sr_pretrain', f'demo_{PRETRAINED}', split_name(PRETRAINED)[1]))])
        recon = demo.export_recon()
        demo.export_sr([PRETRAINED])
        stage(3, 'fine-tuning on undertrained degradations, the bicubic control and the test-degradation ceiling'
              + (f' ({len(variants)} variants)' if ablation else ''))
        jobs = []
        for s in seeds:
            jobs += [('train', demo.sr_options('sr_finetune', f'demo_sr_{v}_seed{s}', s, demo.finetune_extra(m)))
                     for v, m in variants.items()]
            jobs += [('train', demo.sr_options(f'sr_{m}', f'demo_sr_{m}_seed{s}', s)) for m in ('control', 'ceiling')]
        demo.run(jobs)
        models = [PRETRAINED] + [f'sr_{m}_seed{s}' for s in seeds for m in ('control', 'ceiling', *variants)]
        demo.export_sr(models[1:])
        stage(4, 'running every model on the validation and held-aside test sets')
        demo.run([('test', demo.test_options(m)) for m in models])
    finally:
        demo.run.close()
    stage(5, 'scoring')
    rows = evaluate(demo, models)
    write_csv(osp.join(demo.out, 'metrics.csv'), rows)
    table = per_seed(rows)
    stage(6, 'writing report.md and its pictures')
    figures.training_pairs(demo, recon, METHOD['color_correct'], osp.join(demo.out, 'training_pairs.png'),
                           strength=METHOD['strength'])
    seed0 = {'pre-trained': PRETRAINED, 'control': f'sr_control_seed{seeds[0]}',
             'fine-tuned': f'sr_finetuned_seed{seeds[0]}'}
    for subset in (*REALISTIC, NIQE_SET):
        figures.comparison(demo, {**seed0, 'ceiling': f'sr_ceiling_seed{seeds[0]}'}, subset,
                           osp.join(demo.out, f'comparison_{subset}.png'))
    figures.metrics_plot(table, osp.join(demo.out, 'metrics.png'))
    compare_page = demo.compare(seed0)
    if ablation:
        figures.ablation_plot(table, variants, osp.join(demo.out, 'ablation.png'))
    command = ' '.join(['undersr', 'demo', *sys.argv[2:]]) if sys.argv[1:2] == ['demo'] else 'undersr demo'
    info = {'command': command, 'commit': commit, 'wall_min': (time.time() - start) / 60,
            'cpu_min': (cpu_seconds(demo) - cpu_start) / 60,
            'threads': f'{workers} run(s) at a time on {os.cpu_count()} CPU core(s), device {device.type}',
            'quick': quick, 'seeds': seeds, 'method': METHOD, 'recon_epochs': demo.recon_epochs(),
            'iters': demo.iterations(), 'network': demo.network(), 'variants': variants if ablation else None,
            'pretrain_data': options.load_template('sr_pretrain')['datasets']['train'],
            'finetune_noise': options.load_template('sr_finetune').get('lq_noise'),
            'strength': degradation_strength(demo, recon, METHOD['color_correct'], METHOD['strength']),
            'compare': osp.relpath(compare_page, demo.out), 'per_photo': per_photo_table(rows)}
    passed = write_report(report_path(demo.out), table, info)
    print(f'\nDone in {(time.time() - start) / 60:.1f} min: {report_path(demo.out)} '
          f"(issue 11's target {'met' if passed else 'not met'})")
    return report_path(demo.out), passed
