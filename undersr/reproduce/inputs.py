"""What a plan's steps read that no step of the plan makes: present or missing, and how to get each.

:func:`check_inputs` is the one place where ``undersr reproduce`` and ``undersr prepare --check`` look at inputs.
The paths that an option file names are enumerated by the input preflight of ``train.py``/``test.py``
(:func:`undersr.preflight.check`), so both check the same inputs; here a dataset path also has to be a sound layout
of ``undersr prepare`` (:func:`undersr.prepare.datasets.verify`).
"""
import os
from dataclasses import dataclass
from os import path as osp

from undersr import preflight
from undersr.prepare.datasets import layout_of, verify
from undersr.prepare.sources import SOURCES, how_to_get
from undersr.reproduce.steps import CompareStep, GenerateStep, TrainStep

LPIPS_NOTE = 'optional: without it LPIPS is reported as nan'


@dataclass
class Finding:
    """One input of a step.

    Attributes:
        key (str): Where it is named: ``<step>: <option key>`` or ``<step>: --hr``.
        path (str): The file or folder, relative to the root.
        present (bool): It exists (a folder: non-empty; a dataset layout: also structurally sound).
        how (str): How to get it (the ``undersr prepare`` command and the official source).
        required (bool): The step fails without it (LPIPS weights are optional).
    """
    key: str
    path: str
    present: bool
    how: str
    required: bool = True


def _step_paths(step):
    """``(key, path, required)`` of every file or folder a step reads."""
    if isinstance(step, GenerateStep):
        args = step.args()
        found = [('--hr', args[args.index('--hr') + 1], True)]
        i = args.index('--recon') + 1
        while i < len(args) and not args[i].startswith('--'):
            found.append(('--recon', args[i], True))
            i += 1
        return found
    if isinstance(step, CompareStep):
        return [('tests', test.result_dir, True) for test in step.tests]
    if step.option is None:
        return []
    # The option files' inputs are what the input preflight of train.py/test.py finds (one place for both); key
    # problems have no path and are reported by train.py/test.py themselves.
    findings = preflight.check(step.option, is_train=isinstance(step, TrainStep))
    return [(f.key, f.path, not f.warning) for f in findings if f.path is not None]


def _how(path, required):
    layout, _ = layout_of(path)
    if layout:
        return layout.how()
    name = osp.basename(path)
    known = how_to_get(name) or next((s.text() for s in SOURCES.values() if name in s.files), '')
    text = f'get {known} and put it at {path}' if known else f'check the option that names {path}'
    return text if required else f'{text} ({LPIPS_NOTE})'


def _present(path):
    """The path exists (a folder: non-empty), and a dataset layout it belongs to is sound (:func:`verify`)."""
    if not osp.exists(path) or (osp.isdir(path) and not os.listdir(path)):
        return False
    layout, datasets_dir = layout_of(path)
    if layout is None:
        return True
    subset = path if layout.key == 'tinyimagenet' and osp.isfile(path) else None
    return not verify(layout.key, datasets_dir, subset)


def _reads(step, path):
    """Whether ``step`` reads ``path`` or something inside it."""
    path = osp.normpath(path)
    return any(osp.normpath(p) == path or osp.normpath(p).startswith(path + os.sep) for _, p, _ in _step_paths(step))


def waiting_for(step, earlier):
    """The steps of ``earlier`` whose outputs ``step`` reads and which are not complete (e.g. on another shard)."""
    return [e for e in earlier if not e.is_complete() and any(_reads(step, p) for p in e.outputs())]


def check_inputs(steps, made=()):
    """Every input of ``steps`` that no step makes, with whether it is present and how to get it.

    Args:
        steps (list[Step]): Steps of a plan, in order (:func:`undersr.reproduce.steps.build_steps`).
        made (Iterable[str]): Further paths made elsewhere (e.g. by steps of another shard).

    Returns:
        list[Finding]: One per distinct path, in the order the steps read them.
    """
    produced = {osp.normpath(p) for p in made}
    for step in steps:
        produced |= {osp.normpath(p) for p in step.outputs()}
    findings, seen = [], set()
    for step in steps:
        for key, path, required in _step_paths(step):
            norm = osp.normpath(path)
            if norm in seen or any(norm == p or norm.startswith(p + os.sep) for p in produced):
                continue
            seen.add(norm)
            findings.append(Finding(f'{step.name}: {key}', path, _present(path), _how(path, required), required))
    return findings
