"""``train.amp``, ``train.channels_last`` and ``train.compile`` of our BasicSR models (undersr.models.train_speed)."""
import os

import undersr  # noqa: F401  (registers with BasicSR; first: the torchvision shim)
from undersr.basicsr_fixes import run_pipeline
from undersr.models.train_speed import TrainSpeedMixin, parse_train_speed

import pytest
import torch
import yaml
from basicsr.models import build_model
from basicsr.utils.registry import MODEL_REGISTRY

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FINETUNE_OPTIONS = sorted(name for name in os.listdir(os.path.join(ROOT, 'options')) if name.startswith('finetune_'))
NETWORKS = {  # (network_g, model_type): a tiny EDSR and a tiny HAT
    'EDSR': ({'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 1, 'upscale': 4,
              'res_scale': 1, 'img_range': 255., 'rgb_mean': [0.4488, 0.4371, 0.4040]}, 'AmpSRModel'),
    'HAT': ({'type': 'HAT', 'upscale': 4, 'in_chans': 3, 'img_size': 16, 'window_size': 4, 'compress_ratio': 4,
             'squeeze_factor': 4, 'conv_scale': 0.01, 'overlap_ratio': 0.5, 'img_range': 1., 'depths': [1],
             'embed_dim': 16, 'num_heads': [2], 'mlp_ratio': 2, 'upsampler': 'pixelshuffle',
             'resi_connection': '1conv'}, 'HATModel'),
}
DISCRIMINATOR = {'type': 'VGGStyleDiscriminator', 'num_in_ch': 3, 'num_feat': 4, 'input_size': 128}
# bf16 keeps 8 significant bits (relative rounding 2^-9 ~ 0.2 % per operation): over a few iterations of a tiny
# network the L1 loss stays within 1 % of float32's (measured: at most 0.04 % for HAT, 0.0003 % for EDSR).
LOSS_RTOL = 1e-2


def model_options(tmp_path, network='EDSR', ema_decay=0.999, **train):
    net, model_type = NETWORKS[network]
    return {'model_type': model_type, 'scale': 4, 'num_gpu': 0, 'dist': False, 'is_train': True, 'rank': 0,
            'world_size': 1, 'network_g': dict(net),
            'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None,
                     'visualization': str(tmp_path), 'models': str(tmp_path), 'training_states': str(tmp_path)},
            'train': {'ema_decay': ema_decay, 'optim_g': {'type': 'Adam', 'lr': 1e-3},
                      'scheduler': {'type': 'MultiStepLR', 'milestones': [10 ** 6], 'gamma': 0.5},
                      'total_iter': 10, 'pixel_opt': {'type': 'L1Loss'}, **train}}


def gan_options(tmp_path, **train):
    opt = model_options(tmp_path, ema_decay=0, **train)
    opt.update(model_type='AmpESRGANModel', network_d=dict(DISCRIMINATOR))
    opt['train'].update(optim_d={'type': 'Adam', 'lr': 1e-3},
                        gan_opt={'type': 'GANLoss', 'gan_type': 'vanilla', 'loss_weight': 0.1})
    return opt


def batch(size=32, seed=0):
    gt = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(seed))
    return {'lq': torch.nn.functional.avg_pool2d(gt, 4), 'gt': gt}


def build(opt, seed=0):
    torch.manual_seed(seed)
    return build_model(opt)


def train(model, iters, data=None, first=1):
    """Runs ``iters`` training steps on one batch; returns the logged losses of each."""
    data = data or batch()
    logs = []
    for it in range(first, first + iters):
        torch.manual_seed(it)  # the same random draws (e.g. HAT's stochastic depth) whatever ran before
        model.feed_data(data)
        model.optimize_parameters(it)
        logs.append(dict(model.log_dict))
    return logs


def bare(model, name='net_g'):
    return model.get_bare_model(getattr(model, name))


# --- options --------------------------------------------------------------------------------------------------


def test_options_default_off_and_bad_values_name_the_valid_ones():
    assert parse_train_speed({}, 'M') == ('none', False, False)
    assert parse_train_speed({'train': {'amp': 'bf16', 'channels_last': True, 'compile': False}}, 'M') == \
        ('bf16', True, False)
    with pytest.raises(ValueError, match=r'M: train.amp must be one of bf16, fp16, none; got .fp32.'):
        parse_train_speed({'train': {'amp': 'fp32'}}, 'M')
    with pytest.raises(ValueError, match=r'train.channels_last must be true or false'):
        parse_train_speed({'train': {'channels_last': 'yes'}}, 'M')


def test_data_parallel_is_refused_with_the_torchrun_command(tmp_path):
    opt = model_options(tmp_path, amp='bf16')
    opt['num_gpu'] = 2
    with pytest.raises(ValueError, match='torchrun --nproc_per_node 2 .* --launcher pytorch'):
        build_model(opt)


@pytest.mark.parametrize('name', FINETUNE_OPTIONS)
def test_every_finetune_option_names_a_model_that_reads_the_options(name):
    with open(os.path.join(ROOT, 'options', name)) as f:
        opt = yaml.safe_load(f)
    assert issubclass(MODEL_REGISTRY.get(opt['model_type']), TrainSpeedMixin)
    assert {k: opt['train'][k] for k in ('amp', 'channels_last', 'compile')} == \
        {'amp': 'none', 'channels_last': False, 'compile': False}


def test_defaults_leave_the_networks_untouched(tmp_path):
    model = build(model_options(tmp_path))
    assert 'forward' not in vars(bare(model)) and 'forward' not in vars(model.net_g_ema)
    assert not model.grad_scaler.is_enabled()


# --- parity ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize('network', list(NETWORKS))
def test_bf16_training_matches_float32(tmp_path, network):
    """Four iterations from the same seed in float32 and with bf16 autocast (+ channels_last)."""
    reference = build(model_options(tmp_path, network))
    fast = build(model_options(tmp_path, network, amp='bf16', channels_last=True))
    dtypes = []
    bare(fast).conv_first.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    ref_losses = [log['l_pix'] for log in train(reference, 4)]
    fast_losses = [log['l_pix'] for log in train(fast, 4)]
    assert fast_losses == pytest.approx(ref_losses, rel=LOSS_RTOL)
    assert dtypes == [torch.bfloat16] * 4  # bf16 did run
    assert ref_losses[-1] < ref_losses[0] and fast_losses[-1] < fast_losses[0]  # both learn
    # Parameters, the EMA copy and the outputs stay float32; the EMA follows net_g as in float32.
    for model in (fast, reference):
        assert {p.dtype for p in model.net_g.parameters()} | {p.dtype for p in model.net_g_ema.parameters()} == \
            {torch.float32}
    ema_drift = [(a - b).abs().max() for a, b in zip(fast.net_g_ema.parameters(), reference.net_g_ema.parameters())]
    assert max(ema_drift) < 1e-3
    assert fast.output.dtype == torch.float32


@pytest.mark.parametrize('network', list(NETWORKS))
def test_validation_runs_under_the_same_autocast(tmp_path, network):
    reference = build(model_options(tmp_path, network))
    fast = build(model_options(tmp_path, network, amp='bf16'))
    fast.net_g_ema.load_state_dict(reference.net_g_ema.state_dict())
    lq = batch(size=40)['lq']  # 10x10: HAT pads it to its window
    outputs = []
    for model in (reference, fast):
        model.feed_data({'lq': lq})
        model.test()
        outputs.append(model.output)
    assert outputs[1].dtype == torch.float32 and outputs[1].shape == outputs[0].shape == (2, 3, 40, 40)
    difference = (outputs[1] - outputs[0]).abs().max()
    assert 0 < difference < 0.05  # same weights: only bf16 rounding separates them


@pytest.mark.parametrize('name', ['RealHATMSEModel', 'RealHATGANModel'])
def test_hat_real_world_models_test_under_the_option_files_autocast(name):
    """HAT's own Real-world option files name these classes; ``test.py`` with ``train.amp`` runs them in bf16."""
    outputs = []
    for amp in ('none', 'bf16'):
        opt = {'model_type': name, 'scale': 4, 'num_gpu': 0, 'dist': False, 'is_train': False,
               'network_g': dict(NETWORKS['HAT'][0]), 'path': {'pretrain_network_g': None, 'strict_load_g': True},
               'train': {'amp': amp}}
        torch.manual_seed(0)
        model = build_model(opt)
        model.lq = batch(size=40)['lq']
        model.test()
        outputs.append(model.output)
    assert outputs[1].dtype == torch.float32 and outputs[1].shape == outputs[0].shape == (2, 3, 40, 40)
    assert 0 < (outputs[1] - outputs[0]).abs().max() < 0.05  # same weights: only bf16 rounding separates them


@pytest.mark.parametrize('amp', ['bf16', 'fp16'])
def test_networks_hand_back_float32_for_the_losses(tmp_path, amp):
    model = build(gan_options(tmp_path, amp=amp))
    dtypes = []
    bare(model, 'net_d').linear2.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    assert model.net_d(torch.rand(1, 3, 128, 128)).dtype == torch.float32
    assert dtypes == [getattr(torch, {'bf16': 'bfloat16', 'fp16': 'float16'}[amp])]  # its last layer's output


def test_channels_last_converts_networks_and_inputs(tmp_path):
    model = build(model_options(tmp_path, channels_last=True))
    for net in (bare(model), model.net_g_ema):
        assert net.conv_first.weight.is_contiguous(memory_format=torch.channels_last)
    seen = []
    bare(model).conv_first.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    reference = build(model_options(tmp_path))
    logs = train(model, 2)
    assert seen and all(x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous() for x in seen)
    assert [log['l_pix'] for log in logs] == pytest.approx([log['l_pix'] for log in train(reference, 2)], rel=1e-5)


def test_compile_wraps_each_trained_forward_once_and_validation_stays_eager(tmp_path, monkeypatch):
    # Only the wiring: compiling takes tens of seconds on a CPU.
    compiled, calls = [], []

    def fake_compile(fn, **kwargs):
        compiled.append(fn)
        return lambda *args, **kw: calls.append(fn) or fn(*args, **kw)

    monkeypatch.setattr(torch, 'compile', fake_compile)
    model = build(gan_options(tmp_path, compile=True))
    assert compiled == [bare(model).forward.eager, bare(model, 'net_d').forward.eager]  # never net_g_ema
    train(model, 1, batch(size=128))
    assert set(map(id, calls)) == set(map(id, compiled))  # G and D trained through their compiled forward
    calls.clear()
    model.feed_data({'lq': batch()['lq']})
    model.test()
    assert calls == [] and model.output.shape == (2, 3, 32, 32)
    assert all(not key.startswith('_orig_mod') for key in bare(model).state_dict())  # checkpoints keep their keys


# --- fp16 and its GradScaler ----------------------------------------------------------------------------------


def max_relative_differences(model, other, name='net_g'):
    """Per parameter tensor of ``name``: max |grad difference| / max |grad of other| (0 where both are 0)."""
    return [float((a.grad - b.grad).abs().max() / b.grad.abs().max().clamp_min(1e-12))
            for a, b in zip(bare(model, name).parameters(), bare(other, name).parameters())]


def with_scale(model, scale):
    model.grad_scaler.load_state_dict(dict(model.grad_scaler.state_dict(), scale=scale))
    return model


def test_fp16_gradients_match_float32_and_losses_log_unscaled(tmp_path):
    reference, fast = build(model_options(tmp_path)), build(model_options(tmp_path, amp='fp16'))
    ref_logs, fast_logs = train(reference, 1), train(fast, 1)
    assert fast.grad_scaler.get_scale() == 2.0 ** 16  # the default scale, not lowered: the step was taken
    assert fast_logs[0]['l_pix'] == pytest.approx(ref_logs[0]['l_pix'], rel=1e-3)  # not 65536 times larger
    assert max(max_relative_differences(fast, reference)) < 0.03  # unscaled once: fp16 rounding only


def test_fp16_gan_gradients_do_not_depend_on_the_scale(tmp_path):
    """The GAN model: two networks, two optimizers, one scaler. Against float32 its tiny random discriminator is
    too ill-conditioned for a tight comparison (even bf16 moves its gradients by tens of percent), so two fp16 runs
    at scales 2^4 and 2^10 are compared: a scale applied twice or not undone would show as a factor 64."""
    data = batch(size=128)
    runs = [with_scale(build(gan_options(tmp_path, amp='fp16')), scale) for scale in (16.0, 1024.0)]
    logs = [train(model, 1, data)[0] for model in runs]
    assert [model.grad_scaler.get_scale() for model in runs] == [16.0, 1024.0]  # no overflow: both steps taken
    for name in ('net_g', 'net_d'):
        assert max(max_relative_differences(*runs, name)) < 0.1, name
    reference = train(build(gan_options(tmp_path)), 1, data)[0]
    for key in ('l_g_pix', 'l_g_gan', 'l_d_real', 'l_d_fake'):
        assert logs[0][key] == pytest.approx(reference[key], rel=1e-2) == logs[1][key], key


def test_fp16_overflow_skips_the_step_and_lowers_the_scale(tmp_path):
    model = with_scale(build(model_options(tmp_path, amp='fp16')), 2.0 ** 60)
    before = [p.detach().clone() for p in model.net_g.parameters()]
    train(model, 1)
    assert all(torch.equal(a, b) for a, b in zip(before, model.net_g.parameters()))
    assert model.grad_scaler.get_scale() == 2.0 ** 59


def test_training_state_carries_the_scaler_and_resume_restores_it(tmp_path):
    model = with_scale(build(model_options(tmp_path, amp='fp16')), 1024.0)
    train(model, 3)
    model.save_training_state(0, 3)
    state = torch.load(tmp_path / '3.state', weights_only=False)
    assert state['grad_scaler'] == model.grad_scaler.state_dict() == \
        dict(state['grad_scaler'], scale=1024.0, _growth_tracker=3)
    resumed = build(model_options(tmp_path, amp='fp16'))
    assert resumed.grad_scaler.state_dict() != state['grad_scaler']
    resumed.resume_training(state)
    assert resumed.grad_scaler.state_dict() == state['grad_scaler']

    plain = build(model_options(tmp_path))
    plain.save_training_state(0, 4)  # float32: BasicSR's training state, unchanged
    assert set(torch.load(tmp_path / '4.state', weights_only=False)) == {'epoch', 'iter', 'optimizers', 'schedulers'}


def test_auto_resume_of_an_fp16_run_continues_its_scaler(workdir, monkeypatch):
    """train.py, then train.py --auto_resume: the scaler's growth tracker counts on from the saved state."""
    from basicsr.train import train_pipeline
    monkeypatch.chdir(workdir)  # the option's data paths are relative, as with `python train.py` run there
    base = ['-opt', 'options/train/train_EDSR_x4_tiny_cpu.yml', '--force_yml', 'model_type=AmpSRModel',
            'train:amp=fp16', 'datasets:train:batch_size_per_gpu=1', 'val:val_freq=2']
    run_pipeline(train_pipeline, str(workdir), base + ['train:total_iter=2', 'logger:save_checkpoint_freq=2'])
    states = workdir / 'experiments' / 'train_EDSR_x4_tiny_cpu' / 'training_states'
    assert torch.load(states / '2.state', weights_only=False)['grad_scaler']['_growth_tracker'] == 2
    run_pipeline(train_pipeline, str(workdir), base + ['train:total_iter=4', 'logger:save_checkpoint_freq=4',
                                                       '--auto_resume'])
    assert torch.load(states / '4.state', weights_only=False)['grad_scaler']['_growth_tracker'] == 4

    # test.py reads train.amp too, when the test option file has it
    from basicsr.test import test_pipeline
    with open('options/test/test_EDSR_x4_tiny_cpu.yml') as f:
        opt = yaml.safe_load(f)
    opt.update(model_type='AmpSRModel', train={'amp': 'bf16'})
    (workdir / 'test_amp.yml').write_text(yaml.safe_dump(opt))
    run_pipeline(test_pipeline, str(workdir), ['-opt', 'test_amp.yml'])
    assert len(os.listdir(workdir / 'results' / opt['name'] / 'visualization' / 'sample')) == 3


def test_benchmark_smoke_run_prints_a_summary(run_py):
    proc = run_py(['benchmarks/bench_train_speed.py', '--smoke'], cwd=ROOT)
    assert [line for line in proc.stdout.splitlines() if line.startswith('summary')]
    assert 'bf16+channels_last' in proc.stdout and 'fp16' in proc.stdout
