"""The demo's steps: data, reconstruction network, pre-training, fine-tune and control per seed, tests."""
import os
import shutil
from os import path as osp

from undersr.demo import options
from undersr.demo.data import prepare

# Sizes of the full run and of --quick (every step, tiny). Keys are option paths of the templates' copies.
FULL = {
    'data': dict(patches=2048, patch=32, tile=192, stride=96, val_crop=256, test_crop=384, lr_photo=128),
    'recon': {},
    'pretrain': {},
    'finetune': {},
    'seeds': (0, 1, 2),
}
QUICK = {
    'data': dict(patches=32, patch=16, tile=96, stride=96, val_crop=96, test_crop=128, lr_photo=64),
    'recon': {'datasets:train:batch_size_per_gpu': 8, 'datasets:train:gt_size': 16, 'network_g:hidden_channels': 16,
              'network_g:res_channels': 8, 'network_g:num_embeddings': 32, 'network_g:embedding_dim': 8},
    'pretrain': {'datasets:train:batch_size_per_gpu': 4, 'datasets:train:gt_size': 64, 'network_g:num_feat': 8,
                 'network_g:num_conv': 2, 'train:total_iter': 6, 'train:scheduler:periods': [6]},
    'finetune': {'datasets:train:batch_size_per_gpu': 4, 'datasets:train:gt_size': 64, 'train:total_iter': 4},
    'seeds': (0, 1, 2),
}
# One pre-trained model (this seed), the start of every fine-tune and control seed: issue 11 allows reusing it, and
# round 1's three pre-training seeds differed by at most 0.07 dB / 0.0015 SSIM-Y on validation (docs/demo-choices.md)
# while costing two fifths of the demo's CPU time.
PRETRAINED = 'sr_pretrained_seed0'
# The method's knobs for the fine-tune, chosen on the validation parts (docs/demo-choices.md): every checkpoint mixed
# per sample, no colour correction, each sample blended with its clean LR by s ~ U[0, 1] (section 17).
METHOD = dict(recon_epochs=(2, 4, 8, 16), weights=None, color_correct='none', strength=1.0)


def ablation_variants(epochs):
    """``undersr demo --ablation``: each reconstruction epoch alone, the other colour option, other strengths.

    Returns:
        dict: Variant name -> fine-tune knobs (as :data:`METHOD`).
    """
    variants = {f'ep{e}': dict(METHOD, recon_epochs=(e, )) for e in epochs if (e, ) != tuple(METHOD['recon_epochs'])}
    other = 'none' if METHOD['color_correct'] == 'lab-stats' else 'lab-stats'
    variants[f'colour-{other}'] = dict(METHOD, color_correct=other)
    chosen = METHOD['strength']  # the dial of docs/demo-choices.md: the unblended reconstruction and a neighbour
    for strength in (None, 2 * chosen if 2 * chosen <= 1 else chosen / 2) if chosen else (0.25, ):
        variants[f'strength-{strength or "none"}'] = dict(METHOD, strength=strength)
    return variants


class Demo:
    """Paths and settings of one demo run under ``out``.

    Args:
        out (str): Output folder (BasicSR's root for the runs: ``experiments/``, ``results/``, ``options/``).
        size (dict): :data:`FULL` or :data:`QUICK`.
        num_gpu (int): BasicSR's ``num_gpu`` for every run.
        workers (int): Runs at a time.
        threads (int | None): Torch threads per run (see :class:`undersr.demo.options.Runner`).
    """

    def __init__(self, out, size, num_gpu, workers, threads=None):
        self.out, self.size, self.num_gpu, self.workers = osp.abspath(out), size, num_gpu, workers
        self.data, self.models = osp.join(self.out, 'data'), osp.join(self.out, 'models')
        os.makedirs(self.models, exist_ok=True)
        self.run = options.Runner(self.out, workers, threads)

    def model(self, name):
        return osp.join(self.models, f'{name}.pth')

    def prepare_data(self):
        return prepare(self.data, self.size['data'])

    def _common(self, name, seed):
        return {'name': name, 'manual_seed': seed, 'num_gpu': self.num_gpu}

    def recon_options(self):
        """The reconstruction network's option copy."""
        return options.write_options(self.out, 'recon_VQVAE2', {
            **self._common('demo_recon_VQVAE2', 0), **self._data_roots(options.load_template('recon_VQVAE2')),
            **self.size['recon']})

    def recon_epochs(self):
        """The epochs whose checkpoints step 1 keeps."""
        opt = options.load_template('recon_VQVAE2')
        return self.size['recon'].get('train:save_checkpoint_epochs', opt['train']['save_checkpoint_epochs'])

    def export_recon(self):
        """Copies ``net_g_ep<N>.pth`` to ``models/recon_ep<N>.pth``; returns those paths."""
        folder = osp.join(self.out, 'experiments', 'demo_recon_VQVAE2', 'models')
        paths = []
        for epoch in self.recon_epochs():
            paths.append(self.model(f'recon_ep{epoch}'))
            shutil.copy(osp.join(folder, f'net_g_ep{epoch}.pth'), paths[-1])
        return paths

    def network(self):
        """``network_g`` of ``sr_pretrain.yml`` (with the size's overrides): every SR step uses it."""
        opt = options.load_template('sr_pretrain')
        for key, value in self.size['pretrain'].items():
            options.set_option(opt, key, value)
        return opt['network_g']

    def _data_roots(self, opt):
        """Overrides that move a template's ``demo_out/data/...`` dataset folders to this run's ``data/``."""
        overrides = {}
        for key, dataset in opt['datasets'].items():
            for root in ('dataroot_gt', 'dataroot_lq'):
                if root in dataset:
                    relative = osp.relpath(dataset[root], 'demo_out/data')
                    overrides[f'datasets:{key}:{root}'] = osp.join(self.data, relative)
        return overrides

    def sr_options(self, template, name, seed, extra=None):
        """An SR step's option copy: the template's data paths under ``data/``, this size, seed and network."""
        overrides = {**self._common(name, seed), 'network_g': self.network(),
                     **self._data_roots(options.load_template(template))}
        overrides.update(self.size['pretrain' if template == 'sr_pretrain' else 'finetune'])
        if template != 'sr_pretrain':
            overrides['path:pretrain_network_g'] = self.sr_weights(PRETRAINED)
        overrides.update(extra or {})
        return options.write_options(self.out, template, overrides)

    def finetune_extra(self, method):
        """Overrides of ``sr_finetune.yml`` for the method's knobs (epochs, weights, colour, strength, lr, iters)."""
        extra = {'degradation:recon': [self.model(f'recon_ep{e}') for e in method['recon_epochs']],
                 'degradation:weights': method.get('weights'), 'degradation:color_correct': method['color_correct'],
                 'degradation:strength': method.get('strength')}
        for key in ('lr', 'total_iter'):
            if method.get(key) is not None:
                extra['train:optim_g:lr' if key == 'lr' else 'train:total_iter'] = method[key]
        return extra

    def sr_weights(self, model_name):
        """``models/<model_name>.pth``: the weights (``params``) of ``sr_<method>_seed<s>``."""
        return self.model(model_name)

    def export_sr(self, model_names):
        """Copies each finished run's ``experiments/demo_<name>/models/net_g_latest.pth`` to ``models/<name>.pth``."""
        for name in model_names:
            shutil.copy(osp.join(self.out, 'experiments', f'demo_{name}', 'models', 'net_g_latest.pth'),
                        self.sr_weights(name))

    def test_options(self, model_name):
        """The test option copy for ``model_name``: SR images land in results/test_<model_name>/."""
        opt = options.load_template('test_sr')
        overrides = {**self._common(f'test_{model_name}', 0), 'network_g': self.network(),
                     'path:pretrain_network_g': self.sr_weights(model_name), **self._data_roots(opt)}
        return options.write_options(self.out, 'test_sr', overrides)

    def sr_image(self, model_name, dataset, image):
        """Path of the SR image that the test of ``model_name`` wrote for ``image`` of ``dataset``."""
        return osp.join(self.out, 'results', f'test_{model_name}', 'visualization', dataset,
                        f'{image}_test_{model_name}.png')

    def compare(self, models):
        """``undersr upscale --compare`` of ``models`` on the no-ground-truth LR photos (issue 17, item 3).

        Args:
            models (dict[str, str]): Column label -> ``models/<name>.pth`` name (e.g. seed 0 of each method).

        Returns:
            str: ``DIR/upscale/compare/index.html`` (beside it ``grid.png``; the outputs in ``DIR/upscale/<label>/``).
        """
        from undersr.upscale import compare_models
        # every SR step shares one network (network()), so one test option copy describes all the checkpoints
        opt = osp.join(self.out, 'options', f'test_{next(iter(models.values()))}.yml')
        return compare_models([osp.join(self.data, 'test', 'lr_photos')],
                              {label: self.sr_weights(name) for label, name in models.items()},
                              osp.join(self.out, 'upscale'), opts=[opt], device='cuda' if self.num_gpu else 'cpu')

    def iterations(self):
        """``{'pretrain': N, 'finetune': M}``: the SR runs' ``train.total_iter`` with this size."""
        result = {}
        for step, template in (('pretrain', 'sr_pretrain'), ('finetune', 'sr_finetune')):
            default = options.load_template(template)['train']['total_iter']
            result[step] = self.size[step].get('train:total_iter', default)
        return result
