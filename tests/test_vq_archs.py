"""Tests of the VQ-VAE / VQ-VAE-2 networks and their EMA quantiser (CPU, tiny configurations)."""
import undersr  # noqa: F401  (registers with BasicSR; first: the torchvision shim)
from undersr.archs.quantize import EMAQuantizer
from undersr.archs.recon_base import ReconstructionNet
from undersr.archs.vqvae2_arch import VQVAE2
from undersr.archs.vqvae_arch import VQVAE

import pytest
import torch
import torch.nn.functional as F

TINY = dict(hidden_channels=16, res_channels=8, num_res_blocks=1, num_embeddings=32, embedding_dim=8)
MODELS = [VQVAE, VQVAE2]
EMA_BUFFERS = ('codebook', 'cluster_size', 'embed_sum', 'initialized')


def make(cls, seed=0, **kwargs):
    torch.manual_seed(seed)
    return cls(**{**TINY, **kwargs})


def ema_state(model):
    return {k: v.clone() for k, v in model.state_dict().items() if k.rsplit('.', 1)[-1] in EMA_BUFFERS}


def train_steps(model, steps=2, size=32):
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        x = torch.rand(2, 3, size, size)
        loss = sum(model.loss(x, model(x)).values())
        opt.zero_grad()
        loss.backward()
        opt.step()


# --- quantiser --------------------------------------------------------------------------------------------------

def test_quantizer_picks_nearest_code_and_passes_gradient_straight_through():
    torch.manual_seed(0)
    quant = EMAQuantizer(num_embeddings=16, embedding_dim=4).eval()
    z = torch.randn(2, 4, 5, 3, requires_grad=True)
    z_q, commit, idx = quant(z)
    flat = z.detach().permute(0, 2, 3, 1).reshape(-1, 4)
    expected = torch.cdist(flat, quant.codebook).argmin(1).view(2, 5, 3)
    assert idx.dtype == torch.long and torch.equal(idx, expected)
    assert torch.allclose(z_q.detach(), quant.codebook[idx].permute(0, 3, 1, 2), atol=1e-6)
    assert commit.dim() == 0 and torch.isclose(commit, F.mse_loss(z.detach(), z_q.detach()))
    (z_q * 3).sum().backward()
    assert torch.allclose(z.grad, torch.full_like(z, 3.))  # identity Jacobian of the straight-through estimator


def test_quantizer_ema_moves_used_codes_to_cluster_means():
    torch.manual_seed(0)
    quant = EMAQuantizer(num_embeddings=8, embedding_dim=3, decay=0., eps=1e-9, data_init=False).train()
    before = quant.codebook.clone()
    z = torch.randn(1, 3, 6, 6)
    _, _, idx = quant(z)
    flat, idx = z.permute(0, 2, 3, 1).reshape(-1, 3), idx.flatten()
    for k in range(8):
        if (idx == k).any():
            assert torch.allclose(quant.codebook[k], flat[idx == k].mean(0), atol=1e-5)
    assert not torch.equal(quant.codebook, before)
    assert torch.equal(quant.cluster_size, torch.bincount(idx, minlength=8).float())


def test_quantizer_all_reduces_statistics_under_distributed(monkeypatch):
    """Two replicas with the same batch must update as one process seeing the batch twice."""
    torch.manual_seed(0)
    ref = EMAQuantizer(num_embeddings=8, embedding_dim=3, decay=0.9, data_init=False).train()
    quant = EMAQuantizer(num_embeddings=8, embedding_dim=3, decay=0.9, data_init=False).train()
    quant.load_state_dict(ref.state_dict())
    z = torch.randn(1, 3, 4, 4)
    ref(torch.cat([z, z]))
    calls = []

    def fake_all_reduce(tensor, *args, **kwargs):
        calls.append(tensor.shape)
        tensor.mul_(2)  # sum over two replicas holding identical statistics

    monkeypatch.setattr(torch.distributed, 'is_available', lambda: True)
    monkeypatch.setattr(torch.distributed, 'is_initialized', lambda: True)
    monkeypatch.setattr(torch.distributed, 'all_reduce', fake_all_reduce)
    quant(z)
    assert len(calls) == 2
    for name in EMA_BUFFERS:
        assert torch.allclose(getattr(quant, name), getattr(ref, name), atol=1e-6), name


def test_quantizer_data_init_on_first_training_step_only():
    torch.manual_seed(0)
    quant = EMAQuantizer(num_embeddings=6, embedding_dim=3, decay=1.).train()  # decay 1: EMA keeps the codes
    assert not quant.initialized and 'initialized' in quant.state_dict()
    z = torch.randn(1, 3, 4, 4) * 5 + 20
    quant(z, update=False)
    assert not quant.initialized and quant.codebook.abs().max() < 10
    quant(z)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 3)
    assert quant.initialized
    assert torch.cdist(quant.codebook, flat).min(1).values.max() < 1e-5  # every code is one of the latents
    assert len(quant.codebook.unique(dim=0)) == 6  # 16 latents >= 6 codes: drawn without replacement
    codebook = quant.codebook.clone()
    quant(torch.randn(1, 3, 4, 4))
    assert torch.allclose(quant.codebook, codebook)  # no second initialisation
    assert torch.equal(EMAQuantizer(6, 3, data_init=False).initialized, torch.tensor(1, dtype=torch.uint8))


def test_quantizer_data_init_takes_rank0_codebook_under_distributed(monkeypatch):
    torch.manual_seed(0)
    quant = EMAQuantizer(num_embeddings=4, embedding_dim=2, decay=1.).train()
    rank0 = torch.arange(8.).view(4, 2)

    def fake_broadcast(tensor, src, *args, **kwargs):
        assert src == 0
        tensor.copy_(rank0)

    monkeypatch.setattr(torch.distributed, 'is_available', lambda: True)
    monkeypatch.setattr(torch.distributed, 'is_initialized', lambda: True)
    monkeypatch.setattr(torch.distributed, 'broadcast', fake_broadcast)
    monkeypatch.setattr(torch.distributed, 'all_reduce', lambda tensor, *args, **kwargs: None)
    quant(torch.randn(1, 2, 2, 2))  # fewer latents than codes: drawn with replacement
    assert torch.allclose(quant.codebook, rank0) and torch.allclose(quant.embed_sum, rank0)


def test_quantizer_distances_stay_float32_under_autocast():
    """Two codes 0.05 apart at magnitude 100: bfloat16 (spacing 0.5 there) cannot tell them apart."""
    quant = EMAQuantizer(num_embeddings=2, embedding_dim=2, data_init=False).train()
    quant.codebook.copy_(torch.tensor([[100., 0.], [100.05, 0.]]))
    quant.embed_sum.copy_(quant.codebook)
    z = torch.tensor([100.04, 0.]).view(1, 2, 1, 1).expand(1, 2, 3, 3).contiguous()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        z_q, commit, idx = quant(z)
        z_q16, _, _ = quant(z.bfloat16())
    assert (idx == 1).all()
    assert z_q.dtype == torch.float32 and z_q16.dtype == torch.bfloat16 and commit.dtype == torch.float32
    assert quant.codebook.dtype == torch.float32 and torch.isfinite(quant.codebook).all()


# --- models -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('name,stride', [('VQVAE', 4), ('VQVAE2', 8)])
def test_registered_with_interface(name, stride):
    from basicsr.utils.registry import ARCH_REGISTRY

    cls = ARCH_REGISTRY.get(name)
    assert issubclass(cls, ReconstructionNet) and cls.stride == stride
    model = cls(**TINY)
    assert not any(p is b for p in model.parameters() for b in model.buffers())
    assert all(name.rsplit('.', 1)[-1] not in EMA_BUFFERS for name, _ in model.named_parameters())


def test_default_vqvae2_size():
    n_params = sum(p.numel() for p in VQVAE2().parameters())
    assert 1_000_000 < n_params < 2_000_000


@pytest.mark.parametrize('cls', MODELS)
@pytest.mark.parametrize('size', [(61, 67), (5, 3)])
def test_reconstruct_any_size(cls, size):
    model = make(cls).eval()
    x = torch.rand(2, 3, *size)
    y = model.reconstruct(x, generator=torch.Generator().manual_seed(1))
    assert y.shape == x.shape and not y.requires_grad
    assert y.min() >= 0 and y.max() <= 1 and y.std() > 0


@pytest.mark.parametrize('cls', MODELS)
def test_training_forward_gives_encoder_gradients(cls):
    model = make(cls).train()
    x = torch.rand(2, 3, 64, 64)
    out = model(x, generator=torch.Generator().manual_seed(0))
    assert set(out) == {'recon', 'commit'}
    assert out['recon'].shape == x.shape and 0 <= out['recon'].min() and out['recon'].max() <= 1
    assert out['commit'].dim() == 0 and torch.isfinite(out['commit']) and out['commit'] > 0
    # Reconstruction loss only: the encoder can be reached only through the straight-through estimator.
    F.mse_loss(out['recon'], x).backward()
    encoder = model.encoder if cls is VQVAE else model.encoder_bottom
    grads = [p.grad for p in encoder.parameters()]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0


@pytest.mark.parametrize('cls', MODELS)
def test_loss_is_mse_plus_weighted_commitment(cls):
    x = torch.rand(2, 3, 32, 32)
    model = make(cls, commitment_weight=0.5).eval()
    out = model(x)
    terms = model.loss(x, out)
    assert list(terms) == ['l_recon', 'l_commit']
    assert torch.equal(terms['l_recon'], F.mse_loss(out['recon'], x))
    assert torch.equal(terms['l_commit'], 0.5 * out['commit'])


@pytest.mark.parametrize('cls', MODELS)
def test_forward_rejects_sizes_not_multiple_of_stride(cls):
    with pytest.raises(ValueError, match='multiples'):
        make(cls)(torch.rand(1, 3, 64 + cls.stride // 2, 64))


@pytest.mark.parametrize('cls', MODELS)
def test_ema_buffers_update_in_training_only(cls):
    model = make(cls)
    state = ema_state(model)
    assert len(state) == 4 * (1 if cls is VQVAE else 2)
    x = torch.rand(2, 3, 64, 64)
    model.train()
    model.reconstruct(x)
    model.encode(x)
    assert all(torch.equal(v, ema_state(model)[k]) for k, v in state.items())
    model.eval()
    model(x)
    assert all(torch.equal(v, ema_state(model)[k]) for k, v in state.items())
    model.train()
    for _ in range(2):  # the first step initialises the codebooks from the data, the second is a plain EMA step
        model(x)
        after = ema_state(model)
        changed = [k for k, v in state.items() if not torch.equal(v, after[k])]
        assert changed == [k for k, v in state.items()
                           if not k.endswith('initialized') or (v.item(), after[k].item()) == (0, 1)]
        state = after
    assert all(v.item() == 1 for k, v in state.items() if k.endswith('initialized'))


@pytest.mark.parametrize('cls', MODELS)
def test_state_dict_round_trip_is_bit_identical(cls):
    model = make(cls, seed=0)
    train_steps(model)
    model.eval()
    fresh = make(cls, seed=1).eval()
    x = torch.rand(1, 3, 29, 35)
    expected = model.reconstruct(x)
    assert not torch.equal(fresh.reconstruct(x), expected)
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh.reconstruct(x), expected)
    for k, v in ema_state(model).items():
        assert torch.equal(fresh.state_dict()[k], v)


def test_vqvae2_latent_sizes():
    model = make(VQVAE2).eval()
    idx_top, idx_bottom = model.encode(torch.rand(2, 3, 64, 96))
    assert idx_top.shape == (2, 8, 12) and idx_bottom.shape == (2, 16, 24)
    assert idx_top.dtype == idx_bottom.dtype == torch.long
    assert 0 <= min(idx_top.min(), idx_bottom.min()) and max(idx_top.max(), idx_bottom.max()) < 32


def test_vqvae_latent_size():
    idx = make(VQVAE).eval().encode(torch.rand(1, 3, 32, 48))
    assert idx.shape == (1, 8, 12) and idx.dtype == torch.long


@pytest.mark.parametrize('cls', MODELS)
def test_channels_last_and_autocast(cls):
    model = make(cls).eval()
    x = torch.rand(1, 3, 40, 48)
    expected = model.reconstruct(x)
    model = model.to(memory_format=torch.channels_last)
    assert torch.allclose(model.reconstruct(x.to(memory_format=torch.channels_last)), expected, atol=1e-5)
    model.train()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = model(x)
    assert out['commit'].dtype == torch.float32 and torch.isfinite(out['commit'])
    assert torch.isfinite(out['recon']).all()
    for k, v in ema_state(model).items():
        assert k.endswith('initialized') or v.dtype == torch.float32 and torch.isfinite(v).all(), k
