"""Fixes for BasicSR 1.4.2 on CPU, on current PyTorch and under ``torchrun``.

BasicSR is the training framework we build on, and its last release assumes CUDA in several places. Each fix
below replaces one BasicSR function or method with a device-agnostic one that keeps its signature, so stock
option files behave the same with ``num_gpu: 0`` and on GPUs. :func:`apply` installs them once; importing
``undersr.archs``, ``undersr.data`` or ``undersr.models`` calls it.

=============================  =========================================================================
BasicSR 1.4.2 problem          Fix
=============================  =========================================================================
resume maps onto CUDA          :func:`load_resume_state` loads on CPU; ``auto_resume`` honours root_path
``init_dist`` needs GPUs       :func:`init_dist` uses ``LOCAL_RANK``, and gloo when there is no CUDA
``num_gpu: 1`` without CUDA    :func:`parse_options` runs on the CPU with one warning naming the option
DDP ``device_ids`` on CPU      :func:`model_to_device` passes ``device_ids`` only for CUDA devices
``prefetch_mode: cuda``        falls back to the CPU prefetcher, with a warning, when there is no CUDA
VGG19 download                 :class:`VGGFeatureExtractor` raises an error naming the missing file
``filter2D`` ``.view`` on CPU  :func:`filter2D` uses ``reshape``
Real-ESRGAN models ``.cuda()`` registered models build their helpers on ``self.device``
weights layouts, bad files     ``BaseModel.load_network`` uses :func:`undersr.weights.load_weights`
Real-ESRGAN models registered  :func:`replace_registered` swaps BasicSR's own registry entries (documented)
``--local-rank`` (torch >= 2)  :func:`accept_torchrun_args` rewrites it to BasicSR's ``--local_rank``
gloo group left at exit        :func:`run_pipeline` destroys it, so a finished torchrun exits cleanly
empty epochs train nothing     :func:`create_train_val_dataloader` stops with an error instead
=============================  =========================================================================

It also teaches BasicSR epochs, the unit of the paper (§3.2: checkpoints after 4, 8, ... epochs):
``train.total_epochs`` replaces ``train.total_iter``, and ``logger.save_checkpoint_freq: epoch`` or
``val.val_freq: epoch`` mean once per epoch. An epoch is one pass over the training set, whatever the batch size
and number of processes; ``train.iters_per_epoch`` is filled in for the model.
"""
import logging
import os
import sys
import warnings
from os import path as osp

from undersr.weights import load_weights

import torch
from torch.nn import functional as F

_applied = False
_original_create_loaders = None
logger = logging.getLogger('basicsr')


def load_resume_state(opt):
    """Device-agnostic ``basicsr.train.load_resume_state``: finds the newest ``*.state`` and loads it on CPU.

    Optimizers move their state onto the parameters' device when it is loaded, so CPU is always right.
    """
    from basicsr.train import check_resume
    from basicsr.utils import scandir

    path = opt['path'].get('resume_state')
    if opt['auto_resume']:
        folder = opt['path']['training_states']
        states = sorted(scandir(folder, suffix='.state'), key=lambda s: int(s.split('.')[0])) \
            if osp.isdir(folder) else []
        if states:
            path = opt['path']['resume_state'] = osp.join(folder, states[-1])
    if not path:
        return None
    if not osp.isfile(path):
        raise FileNotFoundError(f'resume state not found: {path}. Fix `path.resume_state` or use --auto_resume.')
    # Training states hold optimizer and scheduler objects written by this project: trusted.
    state = torch.load(path, map_location='cpu', weights_only=False)
    check_resume(opt, state['iter'])
    return state


def init_dist(launcher, backend='nccl', **kwargs):
    """``basicsr.utils.dist_util.init_dist`` that also works on CPU-only machines (gloo backend)."""
    import torch.distributed as dist
    from basicsr.utils import dist_util
    if launcher != 'pytorch':
        return dist_util.init_dist(launcher, backend, **kwargs)
    if torch.cuda.is_available() and backend != 'gloo':  # gloo: CPU processes, e.g. `generate --device cpu`
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', 0)))
    elif not torch.cuda.is_available() and backend != 'gloo':
        warnings.warn(f'dist_params.backend: {backend} needs CUDA, which is not available here; using the gloo '
                      'backend instead (set backend: gloo to silence this)')
        backend = 'gloo'
    dist.init_process_group(backend=backend, **kwargs)


def parse_options(original):
    """Wraps BasicSR's ``parse_options`` so that ``num_gpu`` > 0 on a machine without CUDA runs on the CPU.

    Upstream option files say ``num_gpu: 1``; without this, BasicSR picks the CUDA device anyway and the run dies
    in torch's "Found no NVIDIA driver on your system". One warning names the option and the fix instead.
    """

    def parse(root_path, is_train=True):
        opt, args = original(root_path, is_train)
        if opt['num_gpu'] and not torch.cuda.is_available():
            warnings.warn(f'num_gpu: {opt["num_gpu"]} asks for GPUs, but CUDA is not available here: running on '
                          'the CPU (set num_gpu: 0, or auto, to silence this)')
            opt['num_gpu'] = 0
        return opt, args
    return parse


def model_to_device(self, net):
    """``BaseModel.model_to_device``, giving DistributedDataParallel ``device_ids`` only on CUDA."""
    from torch.nn.parallel import DataParallel, DistributedDataParallel
    net = net.to(self.device)
    if self.opt['dist']:
        device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
        net = DistributedDataParallel(
            net, device_ids=device_ids, find_unused_parameters=self.opt.get('find_unused_parameters', False))
    elif self.opt['num_gpu'] > 1:
        net = DataParallel(net)
    return net


def load_network(self, net, load_path, strict=True, param_key='params'):
    """``BaseModel.load_network`` accepting every official layout, with errors that name file and keys."""
    net = self.get_bare_model(net)
    load_weights(net, load_path, param_key=param_key, strict=strict)
    logger.info(f'Loaded {type(net).__name__} from {load_path} (preferred key: {param_key}).')


def make_prefetcher(loader, opt):
    """Replaces ``CUDAPrefetcher`` in ``basicsr.train``: the CPU prefetcher when CUDA is not in use."""
    from basicsr.data.prefetch_dataloader import CPUPrefetcher, CUDAPrefetcher
    if opt['num_gpu'] != 0 and torch.cuda.is_available():
        return CUDAPrefetcher(loader, opt)
    warnings.warn('prefetch_mode: cuda needs a CUDA device; using the CPU prefetcher')
    return CPUPrefetcher(loader)


def filter2D(img, kernel):
    """``basicsr.utils.img_process_util.filter2D`` that accepts non-contiguous tensors.

    Args:
        img (Tensor): (B, C, H, W).
        kernel (Tensor): (1, k, k) shared by the batch, or (B, k, k), k odd.

    Returns:
        Tensor: (B, C, H, W), reflect-padded correlation.
    """
    k = kernel.size(-1)
    if k % 2 == 0:
        raise ValueError(f'filter2D needs an odd kernel size, got {k}')
    b, c, h, w = img.shape
    img = F.pad(img, (k // 2, ) * 4, mode='reflect')
    if kernel.size(0) == 1:
        out = F.conv2d(img.reshape(b * c, 1, *img.shape[-2:]), kernel.reshape(1, 1, k, k))
    else:
        weight = kernel.reshape(b, 1, k, k).repeat_interleave(c, dim=0)
        out = F.conv2d(img.reshape(1, b * c, *img.shape[-2:]), weight, groups=b * c)
    return out.reshape(b, c, h, w)


def _checked_vgg_init(original_init):
    from basicsr.archs import vgg_arch

    def __init__(self, *args, **kwargs):
        if not osp.isfile(vgg_arch.VGG_PRETRAIN_PATH):
            raise FileNotFoundError(
                f'VGG19 weights for PerceptualLoss not found at {osp.abspath(vgg_arch.VGG_PRETRAIN_PATH)} '
                '(relative to the working directory). Download vgg19-dcbb9e9d.pth from torchvision '
                '(download.pytorch.org/models/vgg19-dcbb9e9d.pth) and put it there; undersr never downloads.')
        original_init(self, *args, **kwargs)
    return __init__


def _device_agnostic(model_cls):
    """Subclass of a Real-ESRGAN model that builds its JPEG simulator, sharpener and pool on ``self.device``."""
    from basicsr.utils import DiffJPEG, USMSharp

    class DeviceAgnostic(model_cls):

        def __init__(self, opt):
            super(model_cls, self).__init__(opt)  # skip model_cls.__init__, which calls .cuda()
            self.jpeger = DiffJPEG(differentiable=False).to(self.device)
            self.usm_sharpener = USMSharp().to(self.device)
            self.queue_size = opt.get('queue_size', 180)

        @torch.no_grad()
        def _dequeue_and_enqueue(self):
            if not hasattr(self, 'queue_lr'):
                assert self.queue_size % self.lq.size(0) == 0, \
                    f'queue_size {self.queue_size} must be divisible by the batch size {self.lq.size(0)}'
                self.queue_lr = self.lq.new_zeros((self.queue_size, *self.lq.shape[1:]))
                self.queue_gt = self.gt.new_zeros((self.queue_size, *self.gt.shape[1:]))
                self.queue_ptr = 0
            super()._dequeue_and_enqueue()

    DeviceAgnostic.__name__ = DeviceAgnostic.__qualname__ = model_cls.__name__
    DeviceAgnostic.__doc__ = model_cls.__doc__
    return DeviceAgnostic


def create_train_val_dataloader(opt, logger):
    """``basicsr.train.create_train_val_dataloader`` with epoch-based lengths and a check for empty epochs."""
    train_opt = opt['train']
    if train_opt.get('total_epochs'):
        train_opt.setdefault('total_iter', 1)  # BasicSR requires it; replaced below once the epoch length is known
    train_loader, sampler, val_loaders, total_epochs, total_iters = _original_create_loaders(opt, logger)
    dataset_opt = opt['datasets']['train']
    per_epoch = len(train_loader) // dataset_opt.get('dataset_enlarge_ratio', 1)
    if per_epoch == 0:
        raise ValueError(
            f'training set {dataset_opt.get("name")} has {len(train_loader.dataset)} images, fewer than '
            f'batch_size_per_gpu ({dataset_opt["batch_size_per_gpu"]}) x processes ({opt["world_size"]}); BasicSR '
            'drops incomplete batches, so nothing would train. Lower the batch size or add images.')
    train_opt['iters_per_epoch'] = per_epoch
    if train_opt.get('total_epochs'):
        total_epochs = int(train_opt['total_epochs'])
        total_iters = train_opt['total_iter'] = total_epochs * per_epoch
        logger.info(f'Epoch-based training: {total_epochs} epochs x {per_epoch} iterations = {total_iters}.')
    for section, key in (('logger', 'save_checkpoint_freq'), ('val', 'val_freq')):
        if opt.get(section, {}).get(key) == 'epoch':
            opt[section][key] = per_epoch
    return train_loader, sampler, val_loaders, total_epochs, total_iters


def run_pipeline(pipeline, root_path, argv=None):
    """Runs BasicSR's ``train_pipeline`` or ``test_pipeline`` the way ``train.py``/``test.py`` do.

    Accepts ``--local-rank`` and tears the process group down at the end: a gloo group left to the interpreter's
    exit can abort the process ("terminate called without an active exception") and fail a finished torchrun.
    With ``argv`` it runs in-process as ``python train.py ARGV`` would (``undersr compare``, the demo): each run
    gets its own log file, which BasicSR's once-only logger set-up would otherwise deny every run but the first.

    Args:
        pipeline (callable): ``basicsr.train.train_pipeline`` or ``basicsr.test.test_pipeline``.
        root_path (str): BasicSR's root: ``experiments/``, ``results/`` and relative paths live under it.
        argv (list[str] | None): Arguments instead of ``sys.argv[1:]``, e.g. ``['-opt', 'x.yml']``.
    """
    saved = sys.argv
    if argv is not None:
        sys.argv = [saved[0], *argv]
        _reset_basicsr_logger()
    accept_torchrun_args()
    try:
        pipeline(root_path)
    finally:
        destroy_dist()
        if argv is not None:
            _reset_basicsr_logger()
            sys.argv = saved


def _reset_basicsr_logger():
    """Closes the ``basicsr`` logger's handlers so that the next ``get_root_logger`` call sets it up anew."""
    from basicsr.utils import logger as basicsr_logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    basicsr_logger.initialized_logger.pop('basicsr', None)


def destroy_dist():
    """Destroys the default process group, if there is one (see :func:`run_pipeline` for why it matters)."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def accept_torchrun_args(argv=None):
    """Rewrites ``--local-rank`` (passed by ``torch.distributed.launch`` on PyTorch >= 2) to ``--local_rank``."""
    argv = sys.argv if argv is None else argv
    for i, arg in enumerate(argv):
        if arg == '--local-rank' or arg.startswith('--local-rank='):
            argv[i] = arg.replace('--local-rank', '--local_rank', 1)
    return argv


def replace_registered(registry, name, obj):
    """Replaces the object that BasicSR itself registered as ``name`` (a documented override).

    BasicSR's ``Registry.register`` refuses a name twice and offers no way to replace an entry, yet its own
    ``RealESRGANModel`` must be swapped for the device-agnostic one under the name BasicSR gave it
    (``<name>_basicsr``), so that stock option files get the fix. This writes ``registry._obj_map``, the one
    private detail we rely on; ``tests/test_basicsr_fixes.py`` fails if BasicSR's registry stops working this way.

    Raises:
        KeyError: ``name`` is not registered (BasicSR changed its names).
    """
    if name not in registry._obj_map:
        raise KeyError(f'{name} is not in BasicSR\'s {registry._name} registry; BasicSR changed, update undersr')
    registry._obj_map[name] = obj


def apply():
    """Installs all fixes listed in the module docstring. Idempotent."""
    global _applied
    if _applied:
        return
    import basicsr.test
    import basicsr.train
    from basicsr.archs.vgg_arch import VGGFeatureExtractor
    from basicsr.models import base_model, realesrgan_model, realesrnet_model
    from basicsr.utils import img_process_util, options
    from basicsr.utils.registry import MODEL_REGISTRY

    global _original_create_loaders
    _original_create_loaders = basicsr.train.create_train_val_dataloader
    basicsr.train.create_train_val_dataloader = create_train_val_dataloader
    basicsr.train.load_resume_state = load_resume_state
    basicsr.train.CUDAPrefetcher = make_prefetcher
    for pipeline in (basicsr.train, basicsr.test):
        pipeline.parse_options = parse_options(pipeline.parse_options)
    options.init_dist = init_dist
    base_model.BaseModel.model_to_device = model_to_device
    base_model.BaseModel.load_network = load_network
    VGGFeatureExtractor.__init__ = _checked_vgg_init(VGGFeatureExtractor.__init__)
    for module in (img_process_util, realesrgan_model, realesrnet_model):
        module.filter2D = filter2D
    for module, name in ((realesrgan_model, 'RealESRGANModel'), (realesrnet_model, 'RealESRNetModel')):
        fixed = _device_agnostic(getattr(module, name))
        replace_registered(MODEL_REGISTRY, f'{name}_basicsr', fixed)
        setattr(module, name, fixed)
    _applied = True
