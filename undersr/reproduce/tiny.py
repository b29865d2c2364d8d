"""``undersr reproduce PLAN --tiny``: the whole plan end to end on a CPU in a few minutes.

The plan is unchanged (every network, epoch, dataset, fine-tune, test and the table); what shrinks is

* the data: a miniature of every official download (:mod:`undersr.prepare.miniature`: a few small offline photos
  in the official archive layouts) is written under ``ROOT/downloads`` and turned into our layouts by the real
  ``undersr prepare`` code;
* the networks: each architecture keeps its structure with small widths and depths (:data:`TINY_NETWORKS`); the
  "official" weights of each backbone are random tiny networks written where the options expect them;
* the schedules: a training set of one batch (so an epoch is one iteration: the paper's 64 epochs are 64
  iterations); :data:`FINETUNE_ITERS` fine-tuning iterations on 32² crops at a learning rate of
  :data:`FINETUNE_LR` and without EMA (so that fine-tunes on different datasets differ); no validation during
  training and no training states (the runs are too short to resume); 128² crops for ``undersr generate``; no
  perceptual loss (its VGG19 weights cannot be made up); no NIQE (it needs larger images).

The numbers it produces mean nothing; it proves that the plan's commands, option files and stages work together.
"""
import copy
import os
from os import path as osp

from undersr.prepare import miniature
from undersr.prepare.datasets import subset_name
from undersr.reproduce.steps import FinetuneStep
from undersr.weights import atomic_save

import torch
from basicsr.utils.registry import ARCH_REGISTRY

TINY_NETWORKS = {
    'VQVAE2': dict(hidden_channels=16, res_channels=8, num_res_blocks=1, num_embeddings=32, embedding_dim=8),
    'VQVAE': dict(hidden_channels=16, res_channels=8, num_res_blocks=1, num_embeddings=32, embedding_dim=8),
    'MAE': dict(patch_size=8, embed_dim=16, depth=1, num_heads=2, decoder_embed_dim=16, decoder_depth=1,
                decoder_num_heads=2),
    'VanillaVAE': dict(hidden_channels=8, latent_channels=4, num_downsamples=2),
    'DDIM': dict(base_channels=8, channel_mults=[1, 2], num_inference_steps=2),
    'HAT': dict(embed_dim=16, depths=[1], num_heads=[2], window_size=4, squeeze_factor=4, img_size=16),
    'SwinIR': dict(embed_dim=16, depths=[1], num_heads=[2], window_size=4, img_size=16),
    'EDSR': dict(num_feat=8, num_block=1),
    'RRDBNet': dict(num_feat=8, num_block=1, num_grow_ch=4),
    'VGGStyleDiscriminator': dict(num_feat=8),
}
RECON_SIZE = 32  # crops of the reconstruction networks (a multiple of every stride: VQ-VAE-2 8, MAE 8)
SUBSET = 6  # the Tiny-ImageNet subset: 6 of the miniature's 8 images, one batch
FINETUNE_ITERS = 2
FINETUNE_LR = 1e-3  # large enough that two iterations on different datasets give different models
SR_PATCH = 32  # HR crops of the SR trainings
CROP = 128  # undersr generate --crop: the miniature's DF2K images whole (ESRGAN's discriminator needs 128² crops)


def shrink_network(net):
    """A network option with the tiny sizes of its type (unknown types are kept as they are)."""
    return {**net, **TINY_NETWORKS.get(net['type'], {})}


class TinyProfile:
    """Shrinks a plan's options (see the module docstring). The Tiny-ImageNet subset of the options is replaced by
    the miniature's (:attr:`meta_info`)."""

    meta_info = osp.join('datasets', 'tiny-imagenet-200', subset_name(SUBSET, 0))

    def shrink(self, opt, stage):
        """A copy of an option dict for ``stage`` (``'recon'``, ``'finetune'`` or ``'test'``), shrunk."""
        opt = copy.deepcopy(opt)
        opt['num_gpu'] = 0
        for key in [k for k in opt if k.startswith('network_')]:
            opt[key] = shrink_network(opt[key])
        if stage == 'test':
            if opt.get('tile'):
                opt['tile'] = {'tile_size': 16, 'tile_pad': 4}
            opt['val']['pbar'] = False
            opt['val']['metrics'] = {k: v for k, v in opt['val']['metrics'].items() if v['type'] != 'calculate_niqe'}
            return opt
        train = opt['datasets']['train']
        train.update(num_worker_per_gpu=0, prefetch_mode=None)
        opt['datasets'] = {'train': train}  # no validation during training
        opt.pop('val', None)
        opt['logger'].update(print_freq=10 ** 6, use_tb_logger=False, save_checkpoint_freq=10 ** 6)
        opt['train'].pop('perceptual_opt', None)
        if stage == 'recon':
            train.update(gt_size=RECON_SIZE, batch_size_per_gpu=SUBSET)
            if train.get('resize'):
                train['resize'] = RECON_SIZE
            if 'meta_info' in train:
                train['meta_info'] = self.meta_info
        else:
            # A VGG-style discriminator takes only its own input size (128 or 256): keep the template's crop then.
            train.update(gt_size=(opt.get('network_d') or {}).get('input_size', SR_PATCH), batch_size_per_gpu=2)
            opt['train']['total_iter'] = FINETUNE_ITERS
            opt['train']['optim_g']['lr'] = FINETUNE_LR
            opt['train']['ema_decay'] = 0  # the weights tested are the trained ones, not an average near the start
        return opt

    @staticmethod
    def generate_args(args):
        """``undersr generate`` arguments for the miniature: small crops, one per image, everything inline."""
        return {**args, 'crop': CROP, 'crops-per-image': 1, 'workers': 0, 'delta-e-every': 0, 'device': 'cpu'}


def build_miniature(root):
    """Writes the miniature downloads under ``root/downloads`` and prepares them into ``root/datasets``."""
    downloads = miniature.write_downloads(osp.join(root, 'downloads'))
    miniature.prepare_all(downloads, osp.join(root, 'datasets'), subset=SUBSET, seed=0)


def write_official_weights(steps, root):
    """Random tiny networks where the fine-tunes expect official weights (``path.pretrain_network_g``), under both
    ``params`` and ``params_ema``. Files that exist are kept."""
    for step in steps:
        if not isinstance(step, FinetuneStep):
            continue
        path = (step.option.get('path') or {}).get('pretrain_network_g')
        if not path or osp.isfile(osp.join(root, path)):
            continue
        net = dict(step.option['network_g'])
        torch.manual_seed(0)
        state = ARCH_REGISTRY.get(net.pop('type'))(**net).state_dict()
        os.makedirs(osp.dirname(osp.join(root, path)), exist_ok=True)
        atomic_save({'params': state, 'params_ema': state}, osp.join(root, path))
