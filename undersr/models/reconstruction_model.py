"""Training the image-reconstruction networks whose early checkpoints make the degradations (paper §3.2)."""
from collections import OrderedDict
from os import path as osp

from undersr.checkpoint import save_reconstruction
from undersr.visualize import image_grid, save_image

import torch
from basicsr.losses import build_loss
from basicsr.metrics import calculate_metric
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger, tensor2img
from basicsr.utils.dist_util import master_only
from basicsr.utils.registry import MODEL_REGISTRY
from torch.nn import functional as F


@MODEL_REGISTRY.register()
class ReconstructionModel(SRModel):
    """Trains VQVAE, VQVAE2, VanillaVAE, MAE or DDIM with its own loss, and saves checkpoints by epoch.

    The paper trains every network for 4, 8, 16, 32 and 64 epochs and uses the *early* checkpoints. BasicSR counts
    iterations, so the options speak in epochs instead (``undersr.basicsr_fixes`` turns them into iterations once
    the training set's length is known)::

        train:
          total_epochs: 64
          save_checkpoint_epochs: [4, 8, 16, 32, 64]   # -> models/net_g_ep4.pth, ... (self-describing)
          pixel_opt: {type: MSELoss}                    # reconstruction term of VQ and VAE families
          commitment_weight: 0.25                       # VQ families: beta of van den Oord et al. 2017
          kl_weight: 1.0e-4                             # VanillaVAE: beta of the KL term

    Loss terms, logged under these names: VQ ``l_recon + l_commit``; VAE ``l_recon + l_kl``; MAE ``l_mae`` (MSE
    on masked patches); DDIM ``l_eps`` (MSE between predicted and true noise). Each ``net_g_ep<N>.pth`` holds
    ``params``, ``network_g``, ``epoch`` and ``iter``: :func:`undersr.checkpoint.load_reconstruction` rebuilds the
    network from the file alone. Validation reports PSNR/SSIM of the reconstruction against its input and, with
    ``val.save_img``, writes a grid ``input | reconstruction`` per validation run.
    """

    def init_training_settings(self):
        self.net_g.train()
        train_opt = self.opt['train']
        self.family = self.get_bare_model(self.net_g).family
        self.cri_pix = build_loss(train_opt.get('pixel_opt') or {'type': 'MSELoss'}).to(self.device)
        self.commitment_weight = train_opt.get('commitment_weight', 0.25)
        self.kl_weight = train_opt.get('kl_weight', 1e-4)
        self.save_epochs = set(train_opt.get('save_checkpoint_epochs') or [])
        self.setup_optimizers()
        self.setup_schedulers()

    def feed_data(self, data):
        self.gt = data['gt'].to(self.device)
        self.lq = self.gt  # the network reconstructs its input

    def compute_losses(self, out):
        """Loss terms of this model's family from the output dict of the network's ``forward``.

        Returns:
            OrderedDict[str, Tensor]: scalar terms, already weighted.
        """
        losses = OrderedDict()
        if self.family in ('vq', 'vae'):
            losses['l_recon'] = self.cri_pix(out['recon'], self.gt)
        if self.family == 'vq':
            losses['l_commit'] = self.commitment_weight * out['commit']
        elif self.family == 'vae':
            losses['l_kl'] = self.kl_weight * self.get_bare_model(self.net_g).kl(out['mu'], out['logvar'])
        elif self.family == 'mae':
            per_patch = (out['pred'] - out['target']).pow(2).mean(dim=-1)  # (N, L)
            losses['l_mae'] = (per_patch * out['mask']).sum() / out['mask'].sum().clamp(min=1)
        elif self.family == 'ddim':
            losses['l_eps'] = F.mse_loss(out['eps_pred'], out['eps'])
        return losses

    def optimize_parameters(self, current_iter):
        self.optimizer_g.zero_grad()
        losses = self.compute_losses(self.net_g(self.gt))
        sum(losses.values()).backward()
        self.optimizer_g.step()
        self.log_dict = self.reduce_loss_dict(losses)
        self.save_epoch_checkpoint(current_iter)

    @master_only
    def save_epoch_checkpoint(self, current_iter):
        """Writes ``net_g_ep<N>.pth`` when ``current_iter`` completes epoch N and N is in ``save_checkpoint_epochs``."""
        per_epoch = self.opt['train'].get('iters_per_epoch')
        if not per_epoch or current_iter % per_epoch:
            return
        epoch = current_iter // per_epoch
        if epoch in self.save_epochs:
            path = osp.join(self.opt['path']['models'], f'net_g_ep{epoch}.pth')
            save_reconstruction(path, self.get_bare_model(self.net_g), self.opt['network_g'], epoch, current_iter)
            get_root_logger().info(f'Saved the epoch-{epoch} reconstruction checkpoint {path}.')

    def test(self):
        net = self.get_bare_model(self.net_g)
        was_training = net.training
        net.eval()
        # A fixed generator: validation of stochastic reconstructions (MAE with masking) is comparable over time.
        self.output = net.reconstruct(self.lq, generator=torch.Generator(self.device).manual_seed(0))
        net.train(was_training)

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        dataset_name = dataloader.dataset.opt['name']
        metrics = self.opt['val'].get('metrics') or {}
        if metrics and not hasattr(self, 'metric_results'):
            self._initialize_best_metric_results(dataset_name)
        self.metric_results = {m: 0 for m in metrics}
        rows = []
        for count, val_data in enumerate(dataloader, 1):
            self.feed_data(val_data)
            self.test()
            recon, gt = tensor2img(self.output), tensor2img(self.gt)
            for name, opt_ in metrics.items():
                self.metric_results[name] += calculate_metric({'img': recon, 'img2': gt}, opt_)
            if len(rows) < 8:
                rows.append([gt, recon])
        if save_img and rows:
            save_image(osp.join(self.opt['path']['visualization'], dataset_name, f'recon_{current_iter}.png'),
                       image_grid(rows, labels=['input', 'reconstruction']))
        for name in self.metric_results:
            self.metric_results[name] /= count
            self._update_best_metric_result(dataset_name, name, self.metric_results[name], current_iter)
        if metrics:
            self._log_validation_metric_values(current_iter, dataset_name, tb_logger)
