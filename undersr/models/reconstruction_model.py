"""Training the image-reconstruction networks whose early checkpoints make the degradations (paper §3.2)."""
from os import path as osp

from undersr.archs.recon_base import save_reconstruction
from undersr.visualize import image_grid, save_image

import torch
from basicsr.metrics import calculate_metric
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger, tensor2img
from basicsr.utils.dist_util import master_only
from basicsr.utils.registry import MODEL_REGISTRY

# Training options of earlier versions that are now network options, with what to write instead.
MOVED_TRAIN_OPTIONS = {
    'pixel_opt': 'the reconstruction term is the network\'s own MSE; delete the key.',
    'commitment_weight': 'move it to network_g (an argument of VQVAE and VQVAE2).',
    'kl_weight': 'move it to network_g (an argument of VanillaVAE).',
}


@MODEL_REGISTRY.register()
class ReconstructionModel(SRModel):
    """Trains any reconstruction network (VQVAE, VQVAE2, VanillaVAE, MAE, DDIM) with its own loss, and saves
    checkpoints by epoch.

    The paper trains every network for 4, 8, 16, 32 and 64 epochs and uses the *early* checkpoints. BasicSR counts
    iterations, so the options speak in epochs instead (``undersr.basicsr_fixes`` turns them into iterations once
    the training set's length is known)::

        train:
          total_epochs: 64
          save_checkpoint_epochs: [4, 8, 16, 32, 64]   # -> models/net_g_ep4.pth, ... (self-describing)

    The loss is the network's own (:meth:`~undersr.archs.recon_base.ReconstructionNet.loss`), and its weights are
    network options (``network_g.commitment_weight`` of the VQ models, ``network_g.kl_weight`` of the VAE). Its
    terms are logged under their names: VQ ``l_recon + l_commit``; VAE ``l_recon + l_kl``; MAE ``l_mae``; DDIM
    ``l_eps``. Each ``net_g_ep<N>.pth`` holds ``params``, ``network_g``, ``epoch`` and ``iter``:
    :func:`undersr.archs.recon_base.load_reconstruction` rebuilds the network from the file alone. Validation
    reports PSNR/SSIM of the reconstruction against its input and, with ``val.save_img``, writes a grid
    ``input | reconstruction`` per validation run.
    """

    def init_training_settings(self):
        self.net_g.train()
        train_opt = self.opt['train']
        moved = sorted(set(train_opt) & set(MOVED_TRAIN_OPTIONS))
        if moved:
            raise ValueError(f'ReconstructionModel: train.{moved[0]} is not read any more: '
                             f'{MOVED_TRAIN_OPTIONS[moved[0]]}')
        self.save_epochs = set(train_opt.get('save_checkpoint_epochs') or [])
        self.setup_optimizers()
        self.setup_schedulers()

    def feed_data(self, data):
        self.gt = data['gt'].to(self.device)
        self.lq = self.gt  # the network reconstructs its input

    def optimize_parameters(self, current_iter):
        self.optimizer_g.zero_grad()
        losses = self.get_bare_model(self.net_g).loss(self.gt, self.net_g(self.gt))
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
