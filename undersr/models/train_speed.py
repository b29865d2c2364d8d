"""Mixed precision, channels_last and ``torch.compile`` for BasicSR training, read from the ``train:`` options.

BasicSR 1.4.2 trains in float32 only. :class:`TrainSpeedMixin`, put in front of a BasicSR model class, adds

.. code-block:: yaml

    train:
      amp: bf16             # bf16 | fp16 | none (default): autocast of the networks' forward passes
      channels_last: true   # default false: networks and their inputs in the channels_last memory format
      compile: true         # default false: torch.compile of every trained network's forward

The defaults leave training exactly as BasicSR's. What each option does:

* ``amp``: every network the model trains (``net_g``, ``net_d``) and ``net_g_ema`` runs its forward under
  ``torch.autocast(device, dtype)`` and hands back a float32 output, so the pixel, perceptual and GAN losses and
  everything BasicSR computes between them stay in float32, and backward runs outside autocast. Validation and
  ``test.py`` use the same autocast (``test.py`` reads ``train.amp`` too when its option file has one).
  Parameters, optimizer states and the EMA copy stay float32: autocast casts operands, never parameters.
  ``fp16`` adds a :class:`torch.amp.GradScaler`: each loss term's gradient is multiplied by the scale as it enters
  the graph (what ``scaler.scale(loss).backward()`` does, while the logged losses stay unscaled), every optimizer
  steps through ``scaler.step`` (skipped when a gradient overflowed) and the scale is updated once per iteration.
  Its state is saved in the training state (``<iter>.state``, key ``grad_scaler``) and restored on resume.
  ``bf16`` has float32's exponent range and needs no scaler.
* ``channels_last``: the networks' parameters and 4-D inputs use ``torch.channels_last`` (NHWC), which cuDNN and
  oneDNN convolutions prefer.
* ``compile``: the trained networks' forward is wrapped once in :func:`torch.compile`. Training calls it;
  validation and testing (``net.eval()``) call the eager forward, since their images differ in size from one
  another and each new size would compile again. Checkpoints keep their keys: the modules are not replaced.

The options act on the networks themselves (their ``forward``), not on a model's ``optimize_parameters``, so the
same mixin serves ``SRModel``, ``SwinIRModel`` and ``ESRGANModel`` (two networks, two optimizers) alike. fp16
scaling relies on every loss term coming from a ``cri_*`` loss module of the model, as in all of BasicSR's models.
DataParallel (``num_gpu`` > 1 without ``--launcher``) is refused with these options: its replicas would call the
original network; use one process per GPU (``torchrun ... --launcher pytorch``).

This module has no ``_model.py`` suffix: it registers no model. The registered models put the mixin first, e.g.
``class AmpSRModel(TrainSpeedMixin, SRModel)`` (:mod:`undersr.models.amp_model`, :mod:`undersr.models.hat_model`).
"""
from os import path as osp

from undersr.degrade import resolve_amp
from undersr.weights import atomic_save

import torch
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only
from torch import nn

AMP_MODES = ('bf16', 'fp16', 'none')


def parse_train_speed(opt, model_name):
    """Reads ``train.amp``, ``train.channels_last`` and ``train.compile`` of BasicSR options ``opt``.

    Returns:
        tuple[str, bool, bool]: The amp mode (one of :data:`AMP_MODES`), channels_last and compile.

    Raises:
        ValueError: An unknown amp mode or a non-boolean switch; the message names the option and the valid values.
    """
    train = opt.get('train') or {}
    amp = train.get('amp') or 'none'
    if amp not in AMP_MODES:
        raise ValueError(f'{model_name}: train.amp must be one of {", ".join(AMP_MODES)}; got {amp!r}')
    switches = []
    for key in ('channels_last', 'compile'):
        value = train.get(key)
        if value not in (None, True, False):
            raise ValueError(f'{model_name}: train.{key} must be true or false; got {value!r}')
        switches.append(bool(value))
    return amp, *switches


class _ScaleGrad(torch.autograd.Function):
    """Identity in the forward pass; multiplies the incoming gradient by the GradScaler's scale."""

    @staticmethod
    def forward(ctx, loss, scaler):
        ctx.scaler = scaler
        return loss.view_as(loss)

    @staticmethod
    def backward(ctx, grad):
        return ctx.scaler.scale(grad), None


class ScaledLoss(nn.Module):
    """A BasicSR loss module whose outputs carry the GradScaler's scale into backward, their values unchanged.

    Args:
        loss (nn.Module): The loss, returning a tensor or a tuple of tensors / ``None`` (``PerceptualLoss``).
        scaler (torch.amp.GradScaler): The model's scaler.
    """

    def __init__(self, loss, scaler):
        super().__init__()
        self.loss = loss
        self.scaler = scaler

    def forward(self, *args, **kwargs):
        out = self.loss(*args, **kwargs)
        if isinstance(out, tuple):
            return tuple(self._scaled(value) for value in out)
        return self._scaled(out)

    def _scaled(self, value):
        return value if value is None else _ScaleGrad.apply(value, self.scaler)


class ScaledStep:
    """Stands in for an optimizer in BasicSR's ``optimize_parameters``: ``step()`` goes through the GradScaler
    (which unscales the gradients and skips the step when one overflowed); everything else is the optimizer's."""

    def __init__(self, optimizer, scaler):
        self.optimizer = optimizer
        self.scaler = scaler

    def step(self):
        return self.scaler.step(self.optimizer)

    def __getattr__(self, name):
        return getattr(self.optimizer, name)


class FastForward:
    """The replacement ``forward`` of a network: channels_last inputs, autocast, compiled in training mode, and a
    float32 output.

    Args:
        net (nn.Module): The network; its own ``forward`` is kept as the eager path.
        device_type (str): ``'cpu'`` or ``'cuda'``, for :class:`torch.autocast`.
        amp_dtype (torch.dtype | None): Autocast dtype, ``None`` for float32.
        channels_last (bool): Convert 4-D tensor inputs to ``torch.channels_last``.
        compile (bool): Use ``torch.compile(net.forward)`` while ``net.training``.
    """

    def __init__(self, net, device_type, amp_dtype, channels_last, compile):
        self.net = net
        self.eager = net.forward
        self.compiled = torch.compile(self.eager) if compile else self.eager
        self.device_type, self.amp_dtype, self.channels_last = device_type, amp_dtype, channels_last

    def __call__(self, *args, **kwargs):
        if self.channels_last:
            args = [x.contiguous(memory_format=torch.channels_last) if torch.is_tensor(x) and x.dim() == 4 else x
                    for x in args]
        forward = self.compiled if self.net.training else self.eager
        if self.amp_dtype is None:
            out = forward(*args, **kwargs)
        else:
            with torch.autocast(self.device_type, dtype=self.amp_dtype):
                out = forward(*args, **kwargs)
        return out.float() if torch.is_tensor(out) and out.is_floating_point() else out


class TrainSpeedMixin:
    """Makes a BasicSR model train (and test) with ``train.amp``, ``train.channels_last`` and ``train.compile``.

    Put it first among the bases, e.g. ``class M(TrainSpeedMixin, SRModel)``; see the module docstring.

    Attributes:
        amp (str): ``'bf16'``, ``'fp16'`` or ``'none'``.
        channels_last (bool): Whether the networks run in channels_last.
        compile (bool): Whether the trained networks' forward is compiled.
        grad_scaler (torch.amp.GradScaler): Enabled only when training with ``fp16``.
    """

    def __init__(self, opt):
        name = type(self).__name__
        self.amp, self.channels_last, self.compile = parse_train_speed(opt, name)
        self.speed_options = self.amp != 'none' or self.channels_last or self.compile
        if self.speed_options and opt['num_gpu'] > 1 and not opt['dist']:
            raise ValueError(f'{name}: train.amp, train.channels_last and train.compile need one process per GPU; '
                             f'launch with torchrun --nproc_per_node {opt["num_gpu"]} train.py ... --launcher pytorch')
        super().__init__(opt)
        if self.amp_dtype == torch.bfloat16 and self.device.type == 'cuda' and not torch.cuda.is_bf16_supported():
            raise ValueError(f'{name}: this GPU has no bfloat16; use train.amp: fp16')
        self.grad_scaler = torch.amp.GradScaler(self.device.type, enabled=self.is_train and self.amp == 'fp16')
        if self.grad_scaler.is_enabled():
            self._scale_losses_and_steps()

    def model_to_device(self, net):
        """BasicSR's ``model_to_device`` (DDP wrapping) after applying the options to the bare network."""
        return super().model_to_device(self.speed_up(net, compile=self.compile))

    def speed_up(self, net, compile=False):
        """Puts ``net`` in channels_last and gives it a :class:`FastForward` when an option asks for it.

        Args:
            net (nn.Module): A bare network (not wrapped in DDP).
            compile (bool): Whether to compile its training forward.

        Returns:
            nn.Module: ``net`` itself.
        """
        if not self.speed_options:
            return net
        if self.channels_last:
            net.to(memory_format=torch.channels_last)
        net.forward = FastForward(net, self.device.type, self.amp_dtype, self.channels_last, compile)
        return net

    @property
    def amp_dtype(self):
        """torch.dtype | None: The autocast dtype of ``train.amp`` (``None``: float32)."""
        return resolve_amp(self.amp, self.device)

    def init_training_settings(self):
        super().init_training_settings()
        if hasattr(self, 'net_g_ema'):  # validation runs on it; it stays float32 and is never compiled
            self.speed_up(self.net_g_ema)

    def _scale_losses_and_steps(self):
        """fp16: wraps the ``cri_*`` losses in :class:`ScaledLoss` and the ``optimizer_*`` in :class:`ScaledStep`."""
        for name, value in list(vars(self).items()):
            if name.startswith('cri_') and isinstance(value, nn.Module):
                setattr(self, name, ScaledLoss(value, self.grad_scaler))
            elif name.startswith('optimizer_') and isinstance(value, torch.optim.Optimizer):
                setattr(self, name, ScaledStep(value, self.grad_scaler))

    def optimize_parameters(self, current_iter):
        super().optimize_parameters(current_iter)
        if self.grad_scaler.is_enabled():
            self.grad_scaler.update()

    @master_only
    def save_training_state(self, epoch, current_iter):
        """BasicSR's training state plus, with fp16, ``grad_scaler`` (the GradScaler's ``state_dict``)."""
        if not self.grad_scaler.is_enabled() or current_iter == -1:
            return super().save_training_state(epoch, current_iter)
        state = {'epoch': epoch, 'iter': current_iter, 'optimizers': [o.state_dict() for o in self.optimizers],
                 'schedulers': [s.state_dict() for s in self.schedulers],
                 'grad_scaler': self.grad_scaler.state_dict()}
        atomic_save(state, osp.join(self.opt['path']['training_states'], f'{current_iter}.state'))

    def resume_training(self, resume_state):
        """BasicSR's resume of optimizers and schedulers, and of the GradScaler when both runs use fp16."""
        super().resume_training(resume_state)
        saved = resume_state.get('grad_scaler')
        if self.grad_scaler.is_enabled():
            if saved:
                self.grad_scaler.load_state_dict(saved)
                get_root_logger().info(f'Resumed the fp16 GradScaler at scale {self.grad_scaler.get_scale():g}.')
            else:
                get_root_logger().info('The training state has no GradScaler (not an fp16 run): it starts afresh.')
