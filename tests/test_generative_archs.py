"""CPU tests of the VAE, MAE and DDIM reconstruction networks (tiny configurations)."""
import undersr  # noqa: F401  (registers with BasicSR; first: the torchvision shim)
from undersr.archs.arch_util import crop_to, pad_to_multiple
from undersr.archs.ddim_arch import DDIM
from undersr.archs.mae_arch import MAE
from undersr.archs.recon_base import ReconstructionNet
from undersr.archs.vanilla_vae_arch import VanillaVAE

import pytest
import torch
from basicsr.utils.registry import ARCH_REGISTRY

TINY = {
    'VanillaVAE': dict(hidden_channels=8, latent_channels=4, num_downsamples=2),
    'MAE': dict(patch_size=4, embed_dim=16, depth=1, num_heads=2, decoder_embed_dim=16, decoder_depth=1,
                decoder_num_heads=2),
    'DDIM': dict(base_channels=8, channel_mults=(1, 2), num_inference_steps=4),
}
CLASSES = {'VanillaVAE': VanillaVAE, 'MAE': MAE, 'DDIM': DDIM}
LOSS_TERMS = {'VanillaVAE': ['l_recon', 'l_kl'], 'MAE': ['l_mae'], 'DDIM': ['l_eps']}


def tiny(name, seed=0, **overrides):
    torch.manual_seed(seed)
    return CLASSES[name](**{**TINY[name], **overrides})


def images(n, h, w, seed=0):
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def training_loss(model, x):
    """The sum of the network's own loss terms, as ReconstructionModel back-propagates it."""
    return sum(model.loss(x, model(x, generator=torch.Generator().manual_seed(1))).values())


# ----------------------------------------------------------------------------------------------- shared helpers
@pytest.mark.parametrize('h,w,multiple', [(61, 67, 8), (3, 2, 8), (1, 1, 4), (16, 24, 8)])
def test_pad_to_multiple_pads_bottom_right_and_crops_back(h, w, multiple):
    x = images(2, h, w)
    xp, size = pad_to_multiple(x, multiple)
    assert size == (h, w)
    assert xp.shape[-2] % multiple == 0 and xp.shape[-1] % multiple == 0
    assert xp.shape[-2] - h < multiple and xp.shape[-1] - w < multiple
    assert torch.equal(crop_to(xp, size), x)


def test_pad_to_multiple_reflects_when_possible():
    x = images(1, 5, 6)
    xp, _ = pad_to_multiple(x, 4)  # 5 -> 8 rows (pad 3 < 5), 6 -> 8 columns (pad 2 < 6): reflect
    assert torch.equal(xp[..., 5, :6], x[..., 3, :])
    assert torch.equal(xp[..., :5, 6], x[..., :, 4])
    small, _ = pad_to_multiple(images(1, 2, 2), 8)  # pad 6 >= 2: replicate
    assert torch.equal(small[..., 7, 7], small[..., 1, 1])


# ----------------------------------------------------------------------------------------------- common interface
@pytest.mark.parametrize('name', list(CLASSES))
def test_registered_defaults_build_and_interface(name):
    model = ARCH_REGISTRY.get(name)()
    assert type(model) is CLASSES[name]
    assert isinstance(model, ReconstructionNet)
    assert isinstance(model.stride, int) and model.stride > 1


@pytest.mark.parametrize('name', list(CLASSES))
def test_loss_terms_are_named_finite_scalars(name):
    model = tiny(name).train()
    x = images(2, 16, 24)
    terms = model.loss(x, model(x, generator=torch.Generator().manual_seed(1)))
    assert list(terms) == LOSS_TERMS[name]
    assert all(t.ndim == 0 and torch.isfinite(t) and t >= 0 for t in terms.values())


def test_vae_kl_term_scales_with_kl_weight():
    x = images(2, 16, 16)
    small, large = tiny('VanillaVAE', kl_weight=1e-4).eval(), tiny('VanillaVAE', kl_weight=1e-2).eval()
    a, b = small.loss(x, small(x)), large.loss(x, large(x))  # same seed, same weights: only beta differs
    assert torch.allclose(b['l_kl'], 100 * a['l_kl'])
    assert torch.equal(b['l_recon'], a['l_recon'])


def test_mae_loss_counts_only_masked_patches():
    """He et al. 2022, §3: the loss is computed on masked patches only."""
    model = tiny('MAE', mask_ratio=0.5).train()
    x = images(2, 16, 16)
    out = model(x, generator=torch.Generator().manual_seed(1))
    visible = out['mask'] == 0
    assert visible.any() and (~visible).any()
    changed = dict(out, pred=torch.where(visible[..., None], out['pred'] + 5.0, out['pred']))
    assert torch.equal(model.loss(x, changed)['l_mae'], model.loss(x, out)['l_mae'])
    masked = dict(out, pred=torch.where(visible[..., None], out['pred'], out['pred'] + 5.0))
    assert model.loss(x, masked)['l_mae'] > model.loss(x, out)['l_mae']


@pytest.mark.parametrize('name', list(CLASSES))
def test_reconstruct_any_size_in_unit_range(name):
    model = tiny(name).eval()
    x = images(2, 61, 67)
    y = model.reconstruct(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1
    assert not torch.allclose(y, x, atol=1e-3)  # an untrained network does not reproduce its input


@pytest.mark.parametrize('name', list(CLASSES))
def test_reconstruct_keeps_train_mode_and_builds_no_graph(name):
    model = tiny(name).train()
    y = model.reconstruct(images(1, 16, 16))
    assert model.training and not y.requires_grad


@pytest.mark.parametrize('name', list(CLASSES))
def test_training_forward_backward(name):
    model = tiny(name).train()
    loss = training_loss(model, images(2, 16, 24))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
    total = sum(p.grad.abs().sum() for p in model.parameters())
    assert total > 0
    zero = [n for n, p in model.named_parameters() if p.grad.abs().sum() == 0]
    assert not zero, zero


@pytest.mark.parametrize('name', list(CLASSES))
def test_state_dict_round_trip_is_bit_identical(name):
    extra = {'recon_mask_ratio': 0.5} if name == 'MAE' else {}
    src = tiny(name, seed=0, **extra).eval()
    dst = tiny(name, seed=1, **extra).eval()
    x = images(1, 20, 28)
    before = dst.reconstruct(x, generator=torch.Generator().manual_seed(3))
    dst.load_state_dict(src.state_dict())
    a = src.reconstruct(x, generator=torch.Generator().manual_seed(3))
    b = dst.reconstruct(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert not torch.equal(a, before)  # the weights did change


@pytest.mark.parametrize('name', list(CLASSES))
def test_reconstruct_under_autocast(name):
    # An untrained DDIM's full inversion is chaotic (bf16 rounding gets amplified by 1 / sqrt(alpha_bar) ~ 160), so
    # the comparison with float32 uses a short inversion there.
    model = tiny(name, **({'inversion_strength': 0.1} if name == 'DDIM' else {})).eval()
    x = images(1, 19, 21)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y = model.reconstruct(x)
    ref = model.reconstruct(x)
    assert y.shape == x.shape and torch.isfinite(y.float()).all()
    assert (y.float() - ref).abs().max() < 0.1


# ----------------------------------------------------------------------------------------------- VAE
def test_vae_kl():
    zeros = torch.zeros(2, 4, 3, 3)
    assert VanillaVAE.kl(zeros, zeros).item() == 0.0
    assert VanillaVAE.kl(torch.ones_like(zeros), zeros).item() == pytest.approx(0.5)
    assert VanillaVAE.kl(zeros, torch.full_like(zeros, 1.0)).item() > 0
    assert VanillaVAE.kl(zeros, torch.full_like(zeros, -1.0)).item() > 0
    assert VanillaVAE().kl(zeros, zeros).ndim == 0


def test_vae_shapes_sampling_and_deterministic_reconstruct():
    model = tiny('VanillaVAE').train()
    x = images(2, 16, 24)
    out1 = model(x, generator=torch.Generator().manual_seed(0))
    out2 = model(x, generator=torch.Generator().manual_seed(1))
    assert out1['recon'].shape == x.shape
    assert out1['mu'].shape == out1['logvar'].shape == (2, 4, 4, 6)
    assert out1['recon'].min() >= 0 and out1['recon'].max() <= 1
    assert not torch.equal(out1['recon'], out2['recon'])  # the latent is sampled in training
    rec = model.reconstruct(x)
    assert torch.equal(rec, model.reconstruct(x))
    assert torch.allclose(rec, model.decode(out1['mu']).detach(), atol=1e-6)  # decodes the posterior mean


# ----------------------------------------------------------------------------------------------- MAE
def test_mae_patchify_round_trip():
    model = tiny('MAE')
    x = images(2, 12, 20)
    patches = model.patchify(x)
    assert patches.shape == (2, 15, 4 * 4 * 3)
    assert torch.equal(patches[0, 1], x[0, :, 0:4, 4:8].permute(1, 2, 0).reshape(-1))
    assert torch.equal(model.unpatchify(patches, (3, 5)), x)


@pytest.mark.parametrize('ratio,masked', [(0.75, 12), (0.5, 8), (0.0, 0)])
def test_mae_training_mask_ratio_per_sample(ratio, masked):
    model = tiny('MAE', mask_ratio=ratio).train()
    x = images(4, 16, 16)  # 16 patches
    out = model(x, generator=torch.Generator().manual_seed(0))
    assert out['pred'].shape == out['target'].shape == (4, 16, 48)
    assert out['mask'].shape == (4, 16)
    assert set(out['mask'].unique().tolist()) <= {0.0, 1.0}
    assert out['mask'].sum(1).tolist() == [masked] * 4
    if masked:
        assert len({tuple(row.tolist()) for row in out['mask']}) > 1  # masks differ between samples
    assert torch.equal(out['target'], model.patchify(x))
    assert torch.equal(out['recon'], model.unpatchify(out['pred'], (4, 4)))


def test_mae_norm_pix_loss_target():
    model = tiny('MAE', norm_pix_loss=True).train()
    out = model(images(2, 16, 16))
    assert torch.allclose(out['target'].mean(-1), torch.zeros(2, 16), atol=1e-5)
    assert model.reconstruct(images(1, 13, 9)).shape == (1, 3, 13, 9)


def test_mae_reconstruct_default_is_deterministic():
    model = tiny('MAE').eval()
    assert model.recon_mask_ratio == 0.0
    x = images(2, 24, 20)
    a = model.reconstruct(x, generator=torch.Generator().manual_seed(0))
    b = model.reconstruct(x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and torch.equal(a, model.reconstruct(x))


def test_mae_reconstruct_with_mask_depends_only_on_seed():
    model = tiny('MAE', recon_mask_ratio=0.5).eval()
    x = images(2, 24, 20)
    a = model.reconstruct(x, generator=torch.Generator().manual_seed(0))
    b = model.reconstruct(x, generator=torch.Generator().manual_seed(0))
    c = model.reconstruct(x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_mae_reconstruct_is_whole_decoder_output():
    model = tiny('MAE', recon_mask_ratio=0.5).eval()
    x = images(1, 16, 16)
    y = model.reconstruct(x, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        pred, mask, grid = model._run(x, 0.5, torch.Generator().manual_seed(5))
    assert mask.sum() == 8
    assert torch.allclose(y, model.unpatchify(pred, grid).clamp(0, 1))
    # Pasting the visible input patches back would give a different image: the output is not the input there.
    visible = (mask == 0)[..., None]
    pasted = model.unpatchify(torch.where(visible, model.patchify(x), pred), grid).clamp(0, 1)
    assert not torch.allclose(y, pasted, atol=1e-3)
    assert not torch.allclose(model.patchify(y)[visible.expand_as(pred)], model.patchify(x)[visible.expand_as(pred)],
                              atol=1e-3)


def test_mae_rejects_bad_ratios():
    with pytest.raises(ValueError):
        MAE(mask_ratio=1.0)
    with pytest.raises(ValueError):
        MAE(recon_mask_ratio=-0.1)


# ----------------------------------------------------------------------------------------------- DDIM
def test_ddim_training_outputs():
    model = tiny('DDIM').train()
    x = images(3, 16, 16)
    out = model(x, generator=torch.Generator().manual_seed(0))
    assert out['eps_pred'].shape == out['eps'].shape == x.shape
    assert out['t'].shape == (3,) and ((0 <= out['t']) & (out['t'] < 1000)).all()
    again = model(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out['eps'], again['eps']) and torch.equal(out['t'], again['t'])
    assert not any('alphas' in k or 'betas' in k for k in model.state_dict())


def test_ddim_timestep_grid():
    model = tiny('DDIM')
    grid = model.inference_timesteps()
    assert len(grid) == 5 and grid[0] == 0 and grid[-1] == 999
    assert model.inference_timesteps(100, 0.5)[-1] == round(0.5 * 999)
    assert len(model.inference_timesteps(100, 1.0)) == 101
    assert model.inference_timesteps(10, 0.003) == [0, 1, 2, 3]  # t_max = 3 < steps: duplicates dropped
    assert model.inference_timesteps(10, 0.0) == [0]


@pytest.mark.parametrize('override', [None, 7])
def test_ddim_unet_calls_follow_num_inference_steps(override):
    model = tiny('DDIM', num_inference_steps=3).eval()
    calls = []
    handle = model.unet.register_forward_hook(lambda mod, args, out: calls.append(args[1].clone()))
    try:
        model.reconstruct(images(2, 9, 11), num_inference_steps=override)
    finally:
        handle.remove()
    steps = override or 3
    assert len(calls) == 2 * steps
    ts = [int(t[0]) for t in calls]
    assert ts[:steps] == model.inference_timesteps(steps)[:-1]  # inversion: 0 ... up
    assert ts[steps:] == model.inference_timesteps(steps)[:0:-1]  # sampling: t_max ... down


def test_ddim_zero_strength_returns_input():
    model = tiny('DDIM', inversion_strength=0.0).eval()
    x = images(1, 13, 10)
    calls = []
    handle = model.unet.register_forward_hook(lambda *a: calls.append(1))
    assert torch.allclose(model.reconstruct(x), x, atol=1e-6)
    handle.remove()
    assert not calls
    y = tiny('DDIM').eval().reconstruct(x, inversion_strength=0.0)
    assert torch.allclose(y, x, atol=1e-6)


def test_ddim_inversion_and_sampling_are_inverse_for_zero_noise_prediction():
    # With eps == 0 each DDIM step only rescales x, so inverting then sampling must give the input back; this checks
    # the alpha bookkeeping of both loops and the [0, 1] <-> [-1, 1] mapping.
    model = tiny('DDIM', num_inference_steps=6, inversion_strength=0.4).eval()
    torch.nn.init.zeros_(model.unet.conv_out.weight)
    torch.nn.init.zeros_(model.unet.conv_out.bias)
    x = images(2, 15, 17)
    assert torch.allclose(model.reconstruct(x), x, atol=1e-5)
