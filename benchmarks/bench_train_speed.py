"""SR training step time with ``train.amp``, ``train.channels_last`` and ``train.compile``, as ratios to float32.

A step is what ``train.py`` runs per iteration, through our registered models and BasicSR's ``build_model``:
``feed_data`` and ``optimize_parameters`` (forward, L1 loss, backward, Adam step, EMA update with decay 0.999).
Every setting gets its own model built from the same seed, so all start from the same weights.

Networks, ``--size cpu`` (the default on a CPU): the widths and attention geometry of HAT-S (XPixelGroup/HAT
``train_HAT-S_SRx4_finetune_from_SRx2.yml``: 144 channels, 6 heads, window 16, compress and squeeze ratio 24) with
2 groups of 2 blocks instead of 6 of 6, batch 2 of 32² LR; and BasicSR's EDSR-M (64 features, 16 blocks), batch 4
of 32² LR. ``--size official`` (the default on CUDA): HAT as ``options/finetune_hat_vqvae2.yml`` (the paper's main
backbone) and the official HAT-S, batch 4 of 64² LR each (gt_size 256, as their option files), and EDSR-L as
``options/finetune_edsr_vqvae2.yml``, batch 16 of 48² LR.

Timing: after ``--warmup`` steps of every setting (compilation happens there), ``--rounds`` rounds each time
``--steps`` steps of every setting, in an order that rotates from round to round; a setting's time in a round is
the median of its steps, and its speed-up in that round is float32's time in the same round divided by its own.
The table gives the median over the rounds and the range of the per-round speed-ups, which shows the noise of a
shared machine, and the L1 loss of each setting's last step against float32's (all settings train the same steps on
the same batch from the same weights with the same random draws, so this is their numerical drift; compiled code
draws HAT's stochastic depth from its own generator, so with ``compile`` it also includes other DropPath masks).
``--clock cpu --threads 1`` times the process's CPU seconds instead of wall seconds: on a machine that other
processes keep busy, it leaves out the time the scheduler gives them. ``--profile`` adds ``torch.profiler`` tables
of one HAT-S step in float32 and in bf16 (+ channels_last).

Usage::

    python benchmarks/bench_train_speed.py                         # CPU sizes, every setting
    python benchmarks/bench_train_speed.py --profile --rounds 3 --settings float32 bf16 bf16+channels_last
    python benchmarks/bench_train_speed.py --device cuda           # official HAT, HAT-S, EDSR-L on a GPU
    python benchmarks/bench_train_speed.py --smoke
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

from common import ROOT, default_device, hr_batch, machine_info, synchronize, timings

HAT_S = {'type': 'HAT', 'upscale': 4, 'in_chans': 3, 'img_size': 64, 'window_size': 16, 'compress_ratio': 24,
         'squeeze_factor': 24, 'conv_scale': 0.01, 'overlap_ratio': 0.5, 'img_range': 1., 'depths': [6] * 6,
         'embed_dim': 144, 'num_heads': [6] * 6, 'mlp_ratio': 2, 'upsampler': 'pixelshuffle',
         'resi_connection': '1conv'}
EDSR_M = {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 64, 'num_block': 16, 'upscale': 4,
          'res_scale': 1, 'img_range': 255., 'rgb_mean': [0.4488, 0.4371, 0.4040]}
SETTINGS = {
    'float32': {},
    'bf16': {'amp': 'bf16'},
    'fp16': {'amp': 'fp16'},
    'channels_last': {'channels_last': True},
    'compile': {'compile': True},
    'bf16+channels_last': {'amp': 'bf16', 'channels_last': True},
    'bf16+channels_last+compile': {'amp': 'bf16', 'channels_last': True, 'compile': True},
    'fp16+channels_last': {'amp': 'fp16', 'channels_last': True},
}


def option_network(name):
    """``network_g`` of ``options/<name>.yml``."""
    import yaml
    with open(os.path.join(ROOT, 'options', f'{name}.yml')) as f:
        return yaml.safe_load(f)['network_g']


def workloads(size, smoke=False):
    """``{name: (network_g, model_type, batch, lr_size)}`` of the benchmark."""
    if smoke:
        return {'HAT-S': (dict(HAT_S, embed_dim=12, depths=[1], num_heads=[2], window_size=4, compress_ratio=3,
                               squeeze_factor=3), 'HATModel', 1, 8),
                'EDSR': (dict(EDSR_M, num_feat=8, num_block=1), 'AmpSRModel', 1, 8)}
    if size == 'official':
        return {'HAT': (option_network('finetune_hat_vqvae2'), 'HATModel', 4, 64),
                'HAT-S': (HAT_S, 'HATModel', 4, 64),
                'EDSR-L': (option_network('finetune_edsr_vqvae2'), 'AmpSRModel', 16, 48)}
    return {'HAT-S': (dict(HAT_S, depths=[2, 2], num_heads=[6, 6]), 'HATModel', 2, 32),
            'EDSR-M': (EDSR_M, 'AmpSRModel', 4, 32)}


def model_options(network, model_type, setting, device, tmp):
    return {'model_type': model_type, 'scale': 4, 'num_gpu': 1 if device.type == 'cuda' else 0, 'dist': False,
            'is_train': True, 'rank': 0, 'world_size': 1, 'network_g': dict(network),
            'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None,
                     'visualization': tmp, 'models': tmp, 'training_states': tmp},
            'train': {'ema_decay': 0.999, 'optim_g': {'type': 'Adam', 'lr': 1e-4, 'betas': [0.9, 0.99]},
                      'scheduler': {'type': 'MultiStepLR', 'milestones': [10 ** 6], 'gamma': 0.5},
                      'total_iter': 10 ** 6, 'pixel_opt': {'type': 'L1Loss'}, **SETTINGS[setting]}}


def step_flops(network, batch):
    """Floating-point operations of one forward and backward pass of ``network`` (FlopCounterMode)."""
    from basicsr.archs import build_network
    from torch.utils.flop_counter import FlopCounterMode
    net = build_network(dict(network)).to(batch['lq'].device)
    with FlopCounterMode(display=False) as counter:
        net(batch['lq']).sub(batch['gt']).abs().mean().backward()
    return counter.get_total_flops()


def build_step(network, model_type, setting, batch, device, tmp):
    """A model of ``setting`` and a function running one training step on ``batch``."""
    import torch
    from basicsr.models import build_model
    if device.type == 'cuda':
        torch.cuda.set_device(device)  # BasicSR uses the current CUDA device
    torch.manual_seed(0)
    model = build_model(model_options(network, model_type, setting, device, tmp))
    count = [0]

    def step():
        count[0] += 1
        torch.manual_seed(count[0])  # the same stochastic-depth draws (HAT's DropPath) in every setting
        model.feed_data(batch)
        model.optimize_parameters(count[0])

    return model, step


def cpu_timings(fn, repeats):
    """CPU seconds of the process (all its threads) per call of ``fn()``, sorted: on a shared CPU, unlike wall time,
    this does not count the time the scheduler gives to other processes (``--clock cpu``)."""
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return sorted(times)


def profile_table(step, device, label, rows):
    """``torch.profiler`` table of one step (after the warm-up), sorted by self time."""
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == 'cuda' else [])
    with profile(activities=activities) as prof:
        step()
        synchronize(device)
    sort = 'self_cuda_time_total' if device.type == 'cuda' else 'self_cpu_time_total'
    return f'profile of one step, {label}:\n' + prof.key_averages().table(sort_by=sort, row_limit=rows)


def run_workload(name, workload, args, device, tmp):
    """Times every setting of one network; prints its rows; returns ``{setting: (median_s, speedups)}``."""
    from undersr.resize import bicubic_downsample

    import torch
    network, model_type, batch_size, lr_size = workload
    batch_size = args.batch_size or batch_size
    lr_size = args.lr_size or lr_size
    gt = hr_batch(batch_size, lr_size * 4, device)
    batch = {'gt': gt, 'lq': bicubic_downsample(gt, 4).clamp(0, 1)}
    flops = step_flops(network, batch)
    print(f'\n{name}: batch {batch_size} of {lr_size}² LR, {flops / 1e9:.1f} GFLOP per forward + backward')
    models, steps = {}, {}
    for setting in args.settings:
        if device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(device)
        models[setting], steps[setting] = build_step(network, model_type, setting, batch, device, tmp)
        timings(steps[setting], device, repeats=1, warmup=args.warmup)
        memory = f', peak {torch.cuda.max_memory_allocated(device) / 2 ** 30:.1f} GiB' if device.type == 'cuda' else ''
        print(f'  built and warmed up {setting}{memory}', flush=True)
    per_round = {setting: [] for setting in args.settings}
    for r in range(args.rounds):
        shift = r % len(args.settings)
        for setting in args.settings[shift:] + args.settings[:shift]:
            times = cpu_timings(steps[setting], args.steps) if args.clock == 'cpu' else \
                timings(steps[setting], device, args.steps, warmup=0)
            per_round[setting].append(statistics.median(times))
    # Every setting has now run the same number of steps on the same batch from the same weights.
    final_loss = {setting: models[setting].log_dict['l_pix'] for setting in args.settings}
    if args.profile and name.startswith('HAT-S'):
        for setting in ('float32', 'bf16', 'bf16+channels_last'):
            if setting in steps:
                print(profile_table(steps[setting], device, f'{name} {setting}', args.profile_rows))
    results = {}
    print(f'{"model":<8}{"setting":<28}{"ms/step":>10}{"GFLOP/s":>9}{"speed-up":>10}{"range over rounds":>20}'
          f'{"final L1 vs float32":>22}')
    for setting in args.settings:
        speedups = [f / s for f, s in zip(per_round['float32'], per_round[setting])]
        median = statistics.median(per_round[setting])
        results[setting] = (median, speedups)
        print(f'{name:<8}{setting:<28}{median * 1e3:>10.1f}{flops / median / 1e9:>9.1f}'
              f'{statistics.median(speedups):>9.2f}x{min(speedups):>12.2f}-{max(speedups):.2f}x'
              f'{(final_loss[setting] / final_loss["float32"] - 1) * 100:>+21.3f}%', flush=True)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default=default_device())
    parser.add_argument('--size', choices=['cpu', 'official'],
                        help='network sizes (default: official on CUDA, cpu otherwise)')
    parser.add_argument('--models', nargs='+', help='subset of the networks of --size')
    parser.add_argument('--settings', nargs='+', default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument('--batch-size', type=int, help='override the batch size of every network')
    parser.add_argument('--lr-size', type=int, help='override the LR crop side of every network')
    parser.add_argument('--rounds', type=int, default=5, help='interleaved rounds (default: %(default)s)')
    parser.add_argument('--steps', type=int, default=3, help='timed steps per setting and round')
    parser.add_argument('--warmup', type=int, default=2, help='untimed steps per setting (compilation)')
    parser.add_argument('--threads', type=int, help="torch threads (default: torch's)")
    parser.add_argument('--clock', choices=['wall', 'cpu'], default='wall',
                        help='wall time, or CPU time of the process (CPU only; use with --threads 1 on a busy '
                             'machine: OpenMP threads spin while they wait for a descheduled peer)')
    parser.add_argument('--profile', action='store_true', help='profiler tables of HAT-S float32 vs bf16')
    parser.add_argument('--profile-rows', type=int, default=15)
    parser.add_argument('--smoke', action='store_true', help='tiny networks, one round: seconds')
    args = parser.parse_args(argv)

    import torch
    device = torch.device(args.device)
    if args.clock == 'cpu' and device.type != 'cpu':
        parser.error('--clock cpu measures the CPU; use the wall clock on a GPU')
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.smoke:
        args.rounds, args.steps, args.warmup = 1, 1, 1
        args.settings = [s for s in args.settings if 'compile' not in s]  # compiling takes tens of seconds
    if 'float32' not in args.settings:
        args.settings.insert(0, 'float32')  # the reference of every ratio
    chosen = workloads(args.size or ('official' if device.type == 'cuda' else 'cpu'), args.smoke)
    chosen = {name: chosen[name] for name in (args.models or chosen)}
    print(machine_info(device))
    print(f'{args.rounds} rounds x {args.steps} timed steps per setting after {args.warmup} warm-up steps, '
          f'{args.clock} clock; speed-up = float32 time / setting time in the same round')
    summary = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, workload in chosen.items():
            results = run_workload(name, workload, args, device, tmp)
            best = max(results, key=lambda s: statistics.median(results[s][1]))
            summary.append(f'{name} best {best} {statistics.median(results[best][1]):.2f}x '
                           f'(float32 {results["float32"][0] * 1e3:.0f} ms/step)')
    print(f'\nmachine after the run: {machine_info(device).split(", ")[-1]}')
    print(f'summary ({device}, speed-up of a training step vs float32): ' + '; '.join(summary))
    return 0


if __name__ == '__main__':
    sys.exit(main())
