"""Achieved FLOP/s of VQ-VAE-2 reconstruction against the device's measured peak for the same mix of operations.

The FLOPs of one ``reconstruct`` call (convolutions, transposed convolutions and matrix products, 2 per
multiply-add) are counted with :class:`torch.utils.flop_counter.FlopCounterMode`. The peak is measured in the same
run: every convolution layer of the network, with its kernel shape, channels, stride and batch, runs alone on
inputs from its size in the network up to large ones (output sides doubling up to ``--peak-size``), and its best
rate counts as its peak (on a GPU the large sizes win; on a CPU mid-sized inputs that stay in cache can be
faster). The codebook search's matrix product runs with many rows. The peak of the mix is the FLOP count divided
by the time the layers would take at their peak rates (a FLOP-weighted harmonic mean). A large square matrix
product is timed for reference (oneDNN's convolutions can beat it on a CPU where the BLAS does not use every
vector unit). Both are done in the contiguous (NCHW) and channels_last memory formats; the profiler splits the
time of one call into convolutions, matrix products and everything else (activations, additions,
concatenations, padding, the codebook argmin).

Usage::

    python benchmarks/bench_efficiency.py                 # default VQ-VAE-2, 16 LR images of 64² (256² HR / 4)
    python benchmarks/bench_efficiency.py --batch-size 1 --lr-size 256 --device cuda
    python benchmarks/bench_efficiency.py --smoke
"""
import argparse
import sys

import torch
from common import TINY_CONFIGS, default_device, machine_info, seconds_per_call, synchronize
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

CONV_OPS = ('convolution', 'mkldnn_convolution', 'cudnn_convolution', 'conv2d', 'conv_transpose2d')
MATMUL_OPS = ('aten::mm', 'aten::addmm', 'aten::bmm', 'aten::matmul')


def count_flops(fn):
    """Total FLOPs of ``fn()`` and the count per operator (FlopCounterMode's convention: 2 per multiply-add)."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    per_op = {str(op).split('.')[-2] if '.' in str(op) else str(op): n
              for op, n in counter.get_flop_counts().get('Global', {}).items()}
    return counter.get_total_flops(), per_op


def conv_layers(net, x):
    """The convolution layers ``net.reconstruct(x)`` runs, with their input shape: list of (module, shape)."""
    seen = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen.append((mod, tuple(inp[0].shape))))
             for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        net.reconstruct(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


def layer_flops(module, shape):
    """FLOPs (2 per multiply-add) of one call of a Conv2d or ConvTranspose2d on an input of ``shape``."""
    n, c, h, w = shape
    kh, kw = module.kernel_size
    per_position = 2 * kh * kw * module.in_channels * module.out_channels // module.groups
    if isinstance(module, nn.ConvTranspose2d):
        return n * h * w * per_position  # every input pixel is spread over kh x kw outputs
    out_h = (h + 2 * module.padding[0] - module.dilation[0] * (kh - 1) - 1) // module.stride[0] + 1
    out_w = (w + 2 * module.padding[1] - module.dilation[1] * (kw - 1) - 1) // module.stride[1] + 1
    return n * out_h * out_w * per_position


def layer_key(module, shape):
    return (type(module).__name__, module.in_channels, module.out_channels, module.kernel_size, module.stride,
            module.padding, tuple(shape))


def describe(key):
    kind, cin, cout, k, stride, _, shape = key
    return (f'{"convT" if kind == "ConvTranspose2d" else "conv"} {k[0]}x{k[1]}/{stride[0]} {cin}->{cout} '
            f'@{shape[2]}²')



def output_side(module, shape):
    """Output height of ``module`` on an input of ``shape`` (square images)."""
    h, k, stride, pad = shape[2], module.kernel_size[0], module.stride[0], module.padding[0]
    if isinstance(module, nn.ConvTranspose2d):
        return (h - 1) * stride - 2 * pad + k + module.output_padding[0]
    return (h + 2 * pad - k) // stride + 1


def isolated_rate(module, batch, out_size, device, channels_last, repeats):
    """FLOP/s of ``module`` alone on a (batch, C, ·, ·) input whose output is about ``out_size``² pixels."""
    stride = module.stride[0]
    if isinstance(module, nn.ConvTranspose2d):
        in_size = max(1, out_size // stride)
    else:
        in_size = out_size * stride
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.rand(batch, module.in_channels, in_size, in_size, device=device).contiguous(memory_format=fmt)
    module = module.to(memory_format=fmt)
    with torch.inference_mode():
        seconds = seconds_per_call(lambda: module(x), device, repeats=repeats)
    return layer_flops(module, x.shape) / seconds


def peak_rate(module, shape, peak_size, device, channels_last, repeats):
    """A layer's best FLOP/s over output sides from its size in the network up to ``peak_size`` (doubling).

    Large inputs saturate a GPU; on a CPU mid-sized ones that stay in cache can be faster, so every size is tried.

    Returns:
        tuple[float, float, int]: FLOP/s at the network's size, the best FLOP/s, and the output side giving it.
    """
    side = max(1, output_side(module, shape))
    sides = [side]
    while sides[-1] * 2 <= max(peak_size, side):
        sides.append(sides[-1] * 2)
    rates = [isolated_rate(module, shape[0], s, device, channels_last, repeats) for s in sides]
    best = max(range(len(sides)), key=rates.__getitem__)
    return rates[0], rates[best], sides[best]


def matmul_rate(m, k, n, device, repeats):
    """FLOP/s of an (m, k) @ (k, n) float32 product."""
    a, b = torch.rand(m, k, device=device), torch.rand(k, n, device=device)
    return 2 * m * k * n / seconds_per_call(lambda: a @ b, device, repeats=repeats)


def profile_split(fn, device):
    """Seconds of one ``fn()`` call spent in convolutions, matrix products and other operators (profiler).

    On the CPU each operator's own (self) time is classified by name. On CUDA the kernels do not carry the
    operator's name, so the device time under ``aten::convolution`` and under ``aten::mm``/``addmm``/``bmm`` is
    taken and everything else is the rest of the total device time.
    """
    from torch.profiler import ProfilerActivity, profile
    cuda = torch.device(device).type == 'cuda'
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        fn()
        synchronize(device)
    events = prof.key_averages()
    if cuda:
        total = sum(e.self_device_time_total for e in events) / 1e6
        conv = sum(e.device_time_total for e in events if e.key == 'aten::convolution') / 1e6
        matmul = sum(e.device_time_total for e in events if e.key in ('aten::mm', 'aten::addmm', 'aten::bmm')) / 1e6
        return {'conv': conv, 'matmul': matmul, 'other': max(0.0, total - conv - matmul)}
    split = {'conv': 0.0, 'matmul': 0.0, 'other': 0.0}
    for event in events:
        seconds = event.self_cpu_time_total / 1e6
        if any(name in event.key for name in CONV_OPS):
            split['conv'] += seconds
        elif event.key in MATMUL_OPS:
            split['matmul'] += seconds
        else:
            split['other'] += seconds
    return split


def measure(net, x, args, channels_last):
    """Achieved FLOP/s of ``net.reconstruct(x)``, the op-mix peak and the per-layer table, in one memory format."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    x = x.contiguous(memory_format=fmt)
    with torch.inference_mode():
        total, per_op = count_flops(lambda: net.reconstruct(x))
        seconds = seconds_per_call(lambda: net.reconstruct(x), args.device, repeats=args.repeats)
        layers = conv_layers(net, x)
        split = profile_split(lambda: net.reconstruct(x), args.device)
    groups = {}
    for module, shape in layers:
        entry = groups.setdefault(layer_key(module, shape), {'module': module, 'shape': shape, 'flops': 0,
                                                             'calls': 0})
        entry['flops'] += layer_flops(module, shape)
        entry['calls'] += 1
    for entry in groups.values():
        entry['in_model'], entry['rate'], entry['side'] = peak_rate(entry['module'], entry['shape'], args.peak_size,
                                                                    args.device, channels_last, args.repeats)
    conv_flops = sum(e['flops'] for e in groups.values())
    matmul_flops = max(0, total - conv_flops)
    ideal = sum(e['flops'] / e['rate'] for e in groups.values())
    if matmul_flops:  # the codebook search: (rows, D) @ (D, K) with many rows
        q = net.quantizer_bottom if hasattr(net, 'quantizer_bottom') else None
        d, k = (q.embedding_dim, q.num_embeddings) if q is not None else (64, 512)
        ideal += matmul_flops / matmul_rate(1 << 16, d, k, args.device, args.repeats)
    return {'total': total, 'per_op': per_op, 'seconds': seconds, 'achieved': total / seconds,
            'peak': total / ideal, 'groups': groups, 'split': split, 'conv_flops': conv_flops}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default=default_device())
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--lr-size', type=int, default=64, help='side of the LR images the network sees')
    parser.add_argument('--peak-size', type=int, default=128, help='output side of the peak micro-benchmarks')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--smoke', action='store_true', help='tiny network and sizes: seconds')
    args = parser.parse_args(argv)
    if args.smoke:
        args.batch_size, args.lr_size, args.peak_size, args.repeats = 2, 32, 32, 1

    from basicsr.utils.registry import ARCH_REGISTRY

    torch.manual_seed(0)
    net = ARCH_REGISTRY.get('VQVAE2')(**(TINY_CONFIGS['VQVAE2'] if args.smoke else {})).to(args.device).eval()
    x = torch.rand(args.batch_size, 3, args.lr_size, args.lr_size, device=args.device)
    print(machine_info(args.device))
    print(f'workload: VQVAE2.reconstruct on {args.batch_size} x 3 x {args.lr_size}², peak layers at '
          f'{args.peak_size}² outputs, {args.repeats} timed calls')
    big = 512 if args.smoke else 2048
    square = matmul_rate(big, big, big, args.device, args.repeats)

    results = {}
    for channels_last in (False, True):
        label = 'channels_last' if channels_last else 'NCHW'
        r = results[label] = measure(net, x, args, channels_last)
        print(f'\n[{label}] {r["total"] / 1e9:.3f} GFLOP per call ({r["conv_flops"] / r["total"]:.1%} in '
              f'convolutions), {r["seconds"] * 1e3:.2f} ms -> {r["achieved"] / 1e9:.1f} GFLOP/s')
        print(f'  {"layer (input side)":<32}{"calls":>6}{"GFLOP":>8}{"share":>7}{"alone GFLOP/s":>15}'
              f'{"best GFLOP/s":>14}{"output":>8}')
        for key, e in sorted(r['groups'].items(), key=lambda kv: -kv[1]['flops']):
            print(f'  {describe(key):<32}{e["calls"]:>6}{e["flops"] / 1e9:>8.3f}{e["flops"] / r["total"]:>7.1%}'
                  f'{e["in_model"] / 1e9:>15.1f}{e["rate"] / 1e9:>14.1f}{e["side"]:>7}²')
        split = r['split']
        busy = sum(split.values()) or 1.0
        print(f'  profiler: convolutions {split["conv"] / busy:.0%}, matrix products {split["matmul"] / busy:.0%}, '
              f'other operators {split["other"] / busy:.0%} of operator time')
        print(f'  op-mix peak {r["peak"] / 1e9:.1f} GFLOP/s -> achieved {r["achieved"] / r["peak"]:.1%} of peak; '
              f'{r["achieved"] / square:.1%} of the {big}³ matmul')
    print(f'\nreference: {big}x{big} @ {big}x{big} float32 matmul {square / 1e9:.1f} GFLOP/s')
    a, b = results['NCHW'], results['channels_last']
    print(f'summary ({args.device}, VQVAE2 {args.batch_size}x{args.lr_size}²): NCHW {a["achieved"] / 1e9:.1f} GFLOP/s '
          f'= {a["achieved"] / a["peak"]:.0%} of its op-mix peak {a["peak"] / 1e9:.1f}; channels_last '
          f'{b["achieved"] / 1e9:.1f} GFLOP/s = {b["achieved"] / b["peak"]:.0%} of {b["peak"] / 1e9:.1f}; matmul '
          f'{square / 1e9:.1f} GFLOP/s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
