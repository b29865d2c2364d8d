"""Helpers shared by the benchmark scripts: machine information and a robust timer."""
import os
import platform
import time

import torch


def machine_info(device):
    """One line describing the machine and the device the benchmark runs on."""
    cpu = platform.processor() or platform.machine()
    text = (f'python {platform.python_version()}, torch {torch.__version__}, {os.cpu_count()} CPUs ({cpu}), '
            f'{torch.get_num_threads()} torch threads')
    if torch.device(device).type == 'cuda':
        text += f', GPU {torch.cuda.get_device_name(device)}'
    return text


def seconds_per_call(fn, device, repeats=5, warmup=1):
    """Median wall time of ``fn()`` in seconds, synchronising CUDA around each call."""
    sync = torch.cuda.synchronize if torch.device(device).type == 'cuda' else (lambda: None)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def default_device():
    return 'cuda' if torch.cuda.is_available() else 'cpu'
