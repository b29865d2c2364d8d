"""``DIR/report.md``: what the demo ran, what it measured, and whether it met issue 11's target."""
from os import path as osp

from undersr.demo.degradations import DEGRADATIONS, REALISTIC
from undersr.demo.photos import CREDITS, TEST_PHOTOS, TRAIN_PHOTOS
from undersr.demo.summary import ablation_table, ceiling_table, differences_table, results_table, target_checks

TABLE_START, TABLE_END = '<!-- demo-table:start -->', '<!-- demo-table:end -->'


def main_table(table):
    """The held-aside results table between markers: the README quotes it (``tests/test_readme.py``)."""
    return f'{TABLE_START}\n{results_table(table, "test")}\n{TABLE_END}'


def write_report(path, table, info):
    """Writes ``report.md``.

    Args:
        path (str): Where to write.
        table (dict): :func:`undersr.demo.summary.per_seed` of all rows.
        info (dict): ``command``, ``commit``, ``wall_min``, ``cpu_min``, ``threads``, ``quick``, ``seeds``,
            ``method`` (the fine-tune's knobs), ``iters`` (``pretrain`` and ``finetune``), ``recon_epochs``,
            ``network`` (``network_g`` of the SR model), ``pretrain_data`` (its training dataset's options),
            ``finetune_noise`` (``sr_finetune.yml``'s ``lq_noise``), ``strength``
            (:func:`undersr.demo.evaluate.degradation_strength`), ``variants`` (``--ablation``'s, or ``None``),
            ``compare`` (the comparison page, relative to the report), ``per_photo``
            (:func:`undersr.demo.summary.per_photo_table` of all rows).
    """
    checks = target_checks(table)
    passed = all(ok for _, _, ok in checks)
    method = info['method']
    degradations = '\n'.join(f'  - `{name}`: {text}' + (' — realistic' if name in REALISTIC else '')
                             for name, (_, text) in DEGRADATIONS.items())
    check_rows = '\n'.join(f'| {text} | {value} | {"yes" if ok else "**no**"} |' for text, value, ok in checks)
    grid = osp.join(osp.dirname(info['compare']), 'grid.png')
    epochs = ', '.join(map(str, method['recon_epochs'])) + (' mixed per sample' if len(method['recon_epochs']) > 1
                                                            else '')
    network = ', '.join(f'{k}={v}' for k, v in info['network'].items() if k in ('num_feat', 'num_conv', 'act_type'))
    keep_noise = (' The fine-tune and the control add the pre-training\'s LR noise, so that they differ only in the LR '
                  'source (docs/demo-choices.md, section 10).') if info['finetune_noise'] else ''
    text = f"""# undersr demo{' (--quick: sizes for tests, numbers meaningless)' if info['quick'] else ''}

The paper's experiment (arXiv 2503.02767) in miniature, on photos that ship inside installed packages.

- Command: `{info['command']}`
- Commit: `{info['commit']}`
- Wall time: {info['wall_min']:.1f} min; CPU time (all processes): {info['cpu_min']:.1f} min; {info['threads']}.

## What ran
1. **Reconstruction network** (`options/demo/recon_VQVAE2.yml`): a small VQ-VAE-2 trained on 32² patches of
   the bicubic LR of the training parts, checkpoints after epochs {', '.join(map(str, info['recon_epochs']))}.
2. **Pre-trained SR model** (`options/demo/sr_pretrain.yml`): {info['network']['type']} ({network}), trained from
   scratch for {info['iters']['pretrain']} iterations on bicubic ×4 pairs of the same training
   parts{noise_text(info['pretrain_data'])}, once (seed 0): every fine-tune and control seed starts from it, so its
   row has no seed spread.
3. **Fine-tune** (`options/demo/sr_finetune.yml`, `UndertrainedSRModel`, fresh degradations every iteration),
   **control** (`options/demo/sr_control.yml`, bicubic pairs of the same tiles) and **ceiling**
   (`options/demo/sr_ceiling.yml`, the same tiles under the test's realistic degradations), each
   {info['iters']['finetune']} iterations from the pre-trained model, seeds {', '.join(map(str, info['seeds']))}.
   Undertrained degradation: VQ-VAE-2 epoch(s) {epochs}, colour correction `{method['color_correct']}`,
   {strength_text(method.get('strength'))}.{keep_noise}
4. **Test** (`options/demo/test_sr.yml`, one copy per model): the six held-aside photos ({', '.join(TEST_PHOTOS)}),
   never read by any training step, under
{degradations}
   and, without ground truth, the same photos at their own resolution as LR input (NIQE).

The copies that ran, with every override, are in `options/`; BasicSR's logs in `experiments/` and `results/`.
Why these settings, with the validation numbers that chose them: `docs/demo-choices.md` in the repository.
Training-side photos: {', '.join(TRAIN_PHOTOS)} (the right quarter of each is the validation part;
{CREDITS}).

## Held-aside photos (mean ± std over seeds)
{main_table(table)}

Fine-tuned minus reference, paired by seed (mean ± std):

{differences_table(table)}

![metrics per method and set](metrics.png)

## Issue 11's target: {'met' if passed else 'not met'}
| criterion | measured | met |
|---|---|---|
{check_rows}

Pre-trained minus bicubic upsampling per held-aside photo, PSNR-Y (dB): how much of each set's margin above is one
photo's.

{info['per_photo']}

## Is the target within reach at this scale?
The ceiling (`options/demo/sr_ceiling.yml`) is the control's run on the same tiles, with the LR made by the test's
own three realistic degradations instead of bicubic: an oracle that sees the test's degradation family (never its
photos), so it chooses nothing (docs/demo-choices.md, section 13). Its gain over the control is what a fine-tune of
this size and length reaches when its training degradation is the test's. Where even that stays below the target,
the target is out of reach for this network and schedule unless the method beats training on the test's own
degradation.

{ceiling_table(table)}

## How strong is each degradation, and of which kind?
Means over the validation parts: PSNR of the degraded LR to the bicubic LR (higher: milder), and the high-frequency
ratio, the energy of the Laplacian of Y of the degraded LR over that of the bicubic LR (below 1: detail removed,
like blur; above 1: detail added, like noise). The fine-tune learns to undo the training degradation it sees: it
learns to restore detail, which helps where the test removed detail and sharpens noise where the test added it.

| degradation | PSNR to bicubic LR (dB) | high-frequency ratio |
|---|---|---|
{chr(10).join(f'| {k} | {p:.2f} | {r:.2f} |' for k, (p, r) in info['strength'].items())}

## Validation parts of the training-side photos (mean ± std over seeds)
These parts chose the settings; the held-aside photos chose nothing.

{results_table(table, 'val')}

{ablation_section(table, info.get('variants'))}## Pictures
Training pairs the fine-tune sees (HR | bicubic LR | degraded LR of each VQ-VAE-2 epoch checkpoint):

![training pairs](training_pairs.png)

Comparison crops (seed 0 of each method), one picture per test set:

{chr(10).join(f'![{s}](comparison_{s}.png)' for s in [*REALISTIC, 'lr-photos'])}

## Side by side on photos without ground truth
`undersr upscale --compare` ran the seed-0 pre-trained, control and fine-tuned models, with bicubic upsampling,
on the no-ground-truth LR photos: [the comparison page]({info['compare']}) (same crops side by side, a
before/after slider, NIQE per output) and, as one picture, [its grid]({grid}).

The same on your own photos: `undersr upscale PHOTOS/ --model models/sr_finetuned_seed0.pth --model
models/sr_pretrained_seed0.pth --opt options/test_sr_finetuned_seed0.yml --compare --out up/`.

Per-image numbers: `metrics.csv`. Weights: `models/` (`params` layout for `test.py`).
"""
    with open(path, 'w') as f:
        f.write(text)
    return passed


def noise_text(dataset_opt):
    """The pre-training's LR noise (``NoisyPairedImageDataset`` options) in words; ``''`` without noise."""
    if dataset_opt['type'] != 'NoisyPairedImageDataset':
        return ''
    low, high = dataset_opt['noise_range']
    return (f" ({dataset_opt['noise_prob']:.0%} of the LR crops with Gaussian noise of σ ~ U[{low}, {high}]/255, so "
            f"that it does not sharpen noise: docs/demo-choices.md, section 8)")


def strength_text(strength):
    """The fine-tune's ``strength`` knob in words."""
    if strength is None:
        return 'the reconstruction itself as the degraded LR (no `strength` blend)'
    return (f'`strength` {strength:g}: each sample blends its reconstruction with its clean LR by a factor drawn '
            f'from [0, {strength:g}]')


def ablation_section(table, variants):
    """The ``--ablation`` section (empty without it): the paper's two findings in miniature."""
    if not variants:
        return ''
    return f"""## Ablation: which reconstruction epoch, does lab-stats help, how strong? (fine-tuned minus control)
Each variant is fine-tuned like the main one (same pre-trained models, seeds, iterations and learning rate); only
the undertrained degradation changes. Mean ± std over seeds of the seed-paired difference from the control.

Validation parts:

{ablation_table(table, variants, 'val')}

Held-aside photos:

{ablation_table(table, variants, 'test')}

![ablation](ablation.png)

"""


def report_path(out):
    return osp.join(out, 'report.md')
