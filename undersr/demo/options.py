"""The demo's BasicSR runs: option templates under ``options/demo/``, written copies, and a pool of runs.

Each step reads its template, applies explicit overrides (``key:sub:key`` paths as BasicSR's ``--force_yml``
writes them; the seed cannot go through ``--force_yml``, which BasicSR applies after seeding), writes the copy to
``DIR/options/<name>.yml`` with a header that names the template and every override, and runs it through
:func:`undersr.basicsr_fixes.run_pipeline` exactly as ``python train.py -opt DIR/options/<name>.yml`` would.
Independent runs (seeds) go to a small process pool, one CPU thread each.
"""
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from os import path as osp

import yaml

TEMPLATES = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'options', 'demo')


def template_path(name):
    """``options/demo/<name>.yml`` of the repository."""
    return osp.join(TEMPLATES, f'{name}.yml')


def load_template(name):
    """The template ``options/demo/<name>.yml`` as a dict."""
    path = template_path(name)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} is missing: undersr demo runs the option files under options/demo/ of the '
                                'repository; restore it with `git checkout options/demo`')
    with open(path) as f:
        return yaml.safe_load(f)


def set_option(opt, key, value):
    """Sets ``opt[a][b][c] = value`` for ``key = 'a:b:c'`` (BasicSR's ``--force_yml`` notation)."""
    *parents, last = key.split(':')
    for part in parents:
        opt = opt.setdefault(part, {})
    opt[last] = value


def write_options(out, template, overrides):
    """Writes ``out/options/<name>.yml``: ``template`` with ``overrides`` applied.

    Args:
        out (str): The demo's output folder.
        template (str): Template name under ``options/demo/``.
        overrides (dict): ``{'a:b': value}``; ``'name'`` should be among them when a template runs several times.

    Returns:
        str: The path written.
    """
    opt = load_template(template)
    for key, value in overrides.items():
        set_option(opt, key, value)
    path = osp.join(out, 'options', f'{opt["name"]}.yml')
    os.makedirs(osp.dirname(path), exist_ok=True)
    header = [f'# Written by undersr demo from options/demo/{template}.yml with these overrides:']
    header += [f'#   {key}: {value}' for key, value in overrides.items()]
    with open(path, 'w') as f:
        f.write('\n'.join(header) + '\n')
        yaml.safe_dump(opt, f, sort_keys=False)
    return path


def _run(job):
    """Runs one option file in this process; ``job`` is ``(kind, root, path, threads)``. Returns its CPU seconds."""
    import undersr  # noqa: F401  (registers archs, models and fixes with BasicSR)
    from undersr.basicsr_fixes import run_pipeline

    import torch
    from basicsr.test import test_pipeline
    from basicsr.train import train_pipeline
    kind, root, path, threads = job
    if threads:
        torch.set_num_threads(threads)
    start = time.process_time()
    run_pipeline(train_pipeline if kind == 'train' else test_pipeline, root, ['-opt', path])
    return time.process_time() - start


class Runner:
    """Runs option files in this process (``workers`` 1) or in a pool of ``workers`` processes kept for all steps.

    Small convolutions scale poorly over threads (and idle OpenMP threads spin on a busy machine), so two one-thread
    runs side by side finish sooner on two cores than two two-thread runs one after the other.

    Args:
        root (str): BasicSR's root for every run (``experiments/``, ``results/``).
        workers (int): Parallel processes.
        threads (int | None): Torch threads of each run (``None``: in the pool ``cpu_count // workers``, in this
            process torch's default).
    """

    def __init__(self, root, workers, threads=None):
        self.root, self.workers, self.threads, self.pool = root, workers, threads, None
        self.pool_cpu = 0.0  # CPU seconds of the runs in pool processes (not in this process's own usage)

    def __call__(self, jobs):
        """Runs ``jobs``, a list of ``(kind, path)`` with kind ``'train'`` or ``'test'``, and waits for all."""
        if self.workers <= 1:
            for kind, path in jobs:
                _run((kind, self.root, path, self.threads))
            return
        if self.pool is None:
            self.pool = ProcessPoolExecutor(self.workers, mp_context=get_context('spawn'))
        threads = self.threads or max(1, (os.cpu_count() or 1) // self.workers)
        self.pool_cpu += sum(self.pool.map(_run, [(kind, self.root, path, threads) for kind, path in jobs]))

    def close(self):
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None
