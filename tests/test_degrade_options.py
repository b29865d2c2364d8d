"""Speed options of the Degrader (channels_last, autocast, torch.compile) and ``undersr generate --amp``."""
import json
import os

from undersr.degrade import Degrader, amp_deviation, compare_levels, resolve_amp, use_channels_last
from undersr.sample_data import load

import cv2
import numpy as np
import pytest
import torch

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')


def hr_batch(n=3, size=64):
    crops = [load(name)[:size, :size] for name in ('astronaut', 'coffee', 'chelsea')[:n]]
    return torch.stack([torch.from_numpy(c).permute(2, 0, 1).float() / 255 for c in crops])


def test_channels_last_gives_the_same_output(tiny_recon):
    hr = hr_batch()
    plain = Degrader([str(tiny_recon)], channels_last=False)
    fast = Degrader([str(tiny_recon)], channels_last=True)
    assert not plain.sources[0].channels_last and fast.sources[0].channels_last
    assert fast.sources[0].net.encoder_bottom.body[0].weight.is_contiguous(memory_format=torch.channels_last)
    a, b = plain(hr, [1, 2, 3]), fast(hr, [1, 2, 3])
    torch.testing.assert_close(b['lq'], a['lq'], atol=1e-5, rtol=0)
    assert b['lq'].is_contiguous()  # callers get the usual layout back


def test_channels_last_auto_policy():
    assert use_channels_last(None, 'cpu', 'VQVAE2') and use_channels_last(None, 'cpu', 'DDIM')
    assert not use_channels_last(None, 'cpu', 'VQVAE') and not use_channels_last(None, 'cpu', 'MAE')
    assert all(use_channels_last(None, 'cuda', name) for name in ('VQVAE', 'MAE', 'VQVAE2'))
    assert not use_channels_last(False, 'cuda', 'VQVAE2') and use_channels_last(True, 'cpu', 'MAE')


def test_mixed_sources_with_channels_last_match_single_source_runs(tiny_recon, tiny_recon_b):
    hr = hr_batch()
    recon = [str(tiny_recon), str(tiny_recon_b)]
    mixed = Degrader(recon, weights=[1, 1], channels_last=True)
    out = mixed(hr, [5, 6, 7])
    assert set(out['source'].tolist()) == {0, 1}
    for i, source in enumerate(out['source'].tolist()):
        alone = Degrader([recon[source]], channels_last=False)(hr[i:i + 1], [5 + i])
        torch.testing.assert_close(alone['lq'][0], out['lq'][i], atol=1e-5, rtol=0)


def test_amp_modes_resolve_per_device(tiny_recon):
    assert resolve_amp(None, 'cpu') is None and resolve_amp('auto', 'cpu') is None  # never on the CPU by itself
    assert resolve_amp('bf16', 'cpu') is torch.bfloat16 and resolve_amp('fp16', 'cuda') is torch.float16
    with pytest.raises(ValueError, match='amp must be one of'):
        Degrader([str(tiny_recon)], amp='int8')
    assert Degrader([str(tiny_recon)]).amp_dtype is None


def test_compare_levels_counts_8bit_levels():
    ref = torch.full((1, 3, 4, 4), 100 / 255)
    same = compare_levels(ref, ref + 0.3 / 255)  # rounds to the same level
    assert same == {'max_levels': 0, 'mean_levels': 0.0, 'fraction_changed': 0.0, 'within_one_level': True}
    one = ref.clone()
    one[0, 0, 0, 0] += 1 / 255
    assert compare_levels(ref, one)['max_levels'] == 1 and compare_levels(ref, one)['within_one_level']
    two = ref.clone()
    two[0, 1, 2, 3] -= 2 / 255
    result = compare_levels(ref, two)
    assert result['max_levels'] == 2 and not result['within_one_level']
    assert result['fraction_changed'] == pytest.approx(1 / 48)


def test_bf16_autocast_on_cpu_stays_within_one_level(tiny_recon):
    result = amp_deviation([str(tiny_recon)], hr_batch(), [1, 2, 3], amp='bf16', device='cpu')
    assert result['within_one_level'], result
    assert result['fraction_changed'] > 0  # bf16 really ran: some values moved by one level


@needs_cuda
def test_auto_amp_on_cuda_stays_within_one_level(tiny_recon):
    assert resolve_amp('auto', 'cuda') in (torch.bfloat16, None)
    for amp in ('auto', 'fp16'):
        result = amp_deviation([str(tiny_recon)], hr_batch().cuda(), [1, 2, 3], amp=amp, device='cuda')
        assert result['within_one_level'], (amp, result)


def test_compile_option_wraps_reconstruct(tiny_recon, monkeypatch):
    # Compiling takes 15-35 s on a 2-core CPU, so only the wiring is tested here; docs/benchmarks.md has the
    # measured equivalence (max |compiled - eager| = 0 on the CPU).
    compiled = []
    monkeypatch.setattr(torch, 'compile', lambda fn, **kw: compiled.append(fn) or fn)
    source = Degrader([str(tiny_recon)], compile=True).sources[0]
    assert compiled == [source.net.reconstruct]
    Degrader([str(tiny_recon)])
    assert len(compiled) == 1  # off by default


def test_generate_amp_is_recorded_and_stays_within_one_level(tmp_path, sample_pairs, tiny_recon):
    from undersr.generate import main as generate
    base = ['--hr', str(sample_pairs / 'gt'), '--recon', str(tiny_recon), '--format', 'folder', '--workers', '0',
            '--delta-e-every', '0', '--device', 'cpu']
    generate(base + ['--out', str(tmp_path / 'fp32')])
    generate(base + ['--out', str(tmp_path / 'bf16'), '--amp', 'bf16'])
    with open(tmp_path / 'bf16' / 'manifest.json') as f:
        assert json.load(f)['amp'] == 'bf16'
    with open(tmp_path / 'fp32' / 'manifest.json') as f:
        assert 'amp' not in json.load(f)  # float32 runs keep the manifest of earlier versions
    names = sorted(os.listdir(tmp_path / 'fp32' / 'lq'))
    for name in names:
        a = cv2.imread(str(tmp_path / 'fp32' / 'lq' / name)).astype(int)
        b = cv2.imread(str(tmp_path / 'bf16' / 'lq' / name)).astype(int)
        assert np.abs(a - b).max() <= 1
    with pytest.raises(SystemExit, match="amp: 'bf16' -> None"):
        generate(base + ['--out', str(tmp_path / 'bf16')])
