"""Plan files: the grid of an experiment (reconstruction networks, generated datasets, fine-tunes, tests, table).

A plan is a YAML file (``options/reproduce/table1.yml`` is the paper's Table 1; docs/reproduce.md describes every
key). :func:`load_plan` reads and checks it and expands its ``finetune`` blocks into :class:`Run` entries, one per
(backbone, dataset or grid point). Errors name the plan file and the key.
"""
import itertools
import os
import re
import string
from dataclasses import dataclass, field
from os import path as osp

import yaml

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PLANS_DIR = osp.join(REPO, 'options', 'reproduce')
TABLE_AXES = ('backbone', 'recon', 'epoch', 'dataset', 'test_set')


class PlanError(ValueError):
    """A plan file that cannot be used; the message names the file and the key."""


@dataclass
class Recon:
    """A reconstruction network to train: its option file and option overrides."""
    label: str
    option: str
    overrides: dict = field(default_factory=dict)


@dataclass
class Backbone:
    """An SR network: its training option template, run-name pattern, test options and official weights."""
    label: str
    template: str
    name: str
    tests: list
    official: str = None
    overrides: dict = field(default_factory=dict)


@dataclass
class Run:
    """One SR training: a backbone on a generated dataset (``recon``, ``epoch``) or at a grid point.

    Attributes:
        name (str): Experiment name (``experiments/<name>/``).
        label (str): Row label in ``undersr compare``.
        backbone (str): Key of :attr:`Plan.backbones`.
        attrs (dict): ``backbone``, ``recon``, ``epoch``, ``dataset`` (``<recon>_ep<epoch>``) and grid variables;
            the table's rows and columns are chosen among them.
        overrides (dict): Option overrides of this run (templated values already filled in).
    """
    name: str
    label: str
    backbone: str
    attrs: dict
    overrides: dict = field(default_factory=dict)

    @property
    def dataset(self):
        """``(recon, epoch)`` of the generated dataset it trains on, or ``None``."""
        return (self.attrs['recon'], self.attrs['epoch']) if 'recon' in self.attrs else None


@dataclass
class Plan:
    """A loaded plan (see the module docstring)."""
    name: str
    title: str
    path: str
    recon: dict
    epochs: list
    generate: dict
    backbones: dict
    runs: list
    table: dict


def find_plan(name):
    """The path of a plan: an existing file, or the name of a built-in plan in ``options/reproduce/``.

    Raises:
        PlanError: neither.
    """
    if osp.isfile(name):
        return name
    built_in = osp.join(PLANS_DIR, f'{name}.yml')
    if osp.isfile(built_in):
        return built_in
    names = sorted(f[:-4] for f in os.listdir(PLANS_DIR) if f.endswith('.yml')) if osp.isdir(PLANS_DIR) else []
    raise PlanError(f'no plan {name!r}: not a file, and not one of the built-in plans {names} ({PLANS_DIR})')


def _fill(value, attrs):
    """Fills ``{name}`` fields of strings inside ``value`` from ``attrs``; a string that is a single field keeps the
    attribute's type (``'{epoch}'`` → 8)."""
    if isinstance(value, str):
        whole = re.fullmatch(r'\{(\w+)\}', value)
        return attrs[whole[1]] if whole else value.format(**attrs)
    if isinstance(value, dict):
        return {k: _fill(v, attrs) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, attrs) for v in value]
    return value


def _fields(pattern):
    return {f for _, f, _, _ in string.Formatter().parse(pattern) if f}


def load_plan(name):
    """Reads, checks and expands a plan.

    Args:
        name (str): A plan file, or the name of a built-in plan (``table1``, ``table2``, ``colorshift``).

    Returns:
        Plan

    Raises:
        PlanError: the file is missing or invalid; the message names the file and the key.
    """
    path = find_plan(name)
    try:
        with open(path) as f:
            raw = yaml.safe_load(f)
    except yaml.YAMLError as err:
        raise PlanError(f'{path}: not valid YAML ({err})') from err

    def fail(key, text):
        raise PlanError(f'{path}: `{key}`: {text} (docs/reproduce.md describes the plan format)')

    if not isinstance(raw, dict) or not raw.get('name'):
        fail('name', 'a plan is a mapping with at least `name`, `backbones` and `finetune`')
    unknown = set(raw) - {'name', 'title', 'reconstruction', 'epochs', 'generate', 'backbones', 'finetune', 'table'}
    if unknown:
        fail(sorted(unknown)[0], 'unknown key')
    recon = {}
    for label, spec in (raw.get('reconstruction') or {}).items():
        spec = {'option': spec} if isinstance(spec, str) else spec or {}
        if not spec.get('option'):
            fail(f'reconstruction.{label}', 'needs `option` (a training option file)')
        recon[label] = Recon(label, spec['option'], spec.get('set') or {})
    epochs = [int(e) for e in raw.get('epochs') or []]
    generate = raw.get('generate') or {}
    if recon and not (epochs and generate.get('hr') and generate.get('out')):
        fail('generate', 'a plan with `reconstruction` needs `epochs` and `generate: {hr, out}`')
    backbones = {}
    for label, spec in (raw.get('backbones') or {}).items():
        spec = spec or {}
        for key in ('template', 'name'):
            if not spec.get(key):
                fail(f'backbones.{label}.{key}', 'missing')
        backbones[label] = Backbone(label, spec['template'], spec['name'], list(spec.get('tests') or []),
                                    spec.get('official'), spec.get('set') or {})
    if not backbones:
        fail('backbones', 'at least one backbone is needed')
    runs = []
    for i, block in enumerate(raw.get('finetune') or []):
        runs += _expand(block, f'finetune[{i}]', recon, epochs, backbones, fail)
    if not runs:
        fail('finetune', 'no runs: give at least one block with `backbones`')
    names = [r.name for r in runs]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        fail('finetune', f'two runs are both named {duplicate!r}; make `backbones.*.name` tell them apart')
    table = dict(raw.get('table') or {})
    table.setdefault('metrics', ['psnr', 'ssim', 'lpips'])
    axes = set(TABLE_AXES) | {k for r in runs for k in r.attrs}
    for key in ('rows', 'columns'):
        if table.get(key) not in axes:
            fail(f'table.{key}', f'one of {sorted(axes)}')
    return Plan(raw['name'], raw.get('title') or raw['name'], path, recon, epochs, generate, backbones, runs, table)


def _expand(block, where, recon, epochs, backbones, fail):
    """The runs of one ``finetune`` block: backbones × (recon × epochs) × grid."""
    unknown = set(block) - {'backbones', 'recon', 'epochs', 'grid', 'label', 'set'}
    if unknown:
        fail(f'{where}.{sorted(unknown)[0]}', 'unknown key')
    chosen = block.get('backbones') or []
    for b in chosen:
        if b not in backbones:
            fail(f'{where}.backbones', f'{b!r} is not in `backbones`')
    datasets = [{}]
    if block.get('recon'):
        for r in block['recon']:
            if r not in recon:
                fail(f'{where}.recon', f'{r!r} is not in `reconstruction`')
        block_epochs = [int(e) for e in block.get('epochs') or epochs]
        missing = sorted(set(block_epochs) - set(epochs))
        if missing:
            fail(f'{where}.epochs', f'epoch {missing[0]} is not in the plan\'s `epochs`')
        datasets = [{'recon': r, 'epoch': e, 'dataset': f'{r}_ep{e}'} for r in block['recon'] for e in block_epochs]
    grid = block.get('grid') or {}
    points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    parts = (['{recon} ep{epoch}'] if block.get('recon') else []) + [f'{k} {{{k}}}' for k in grid]
    label = block.get('label') or ', '.join(parts) or '{backbone}'
    runs = []
    for backbone, data, point in itertools.product(chosen, datasets, points):
        attrs = {'backbone': backbone, **data, **point}
        name = backbones[backbone].name
        for key, pattern in (('name', name), ('label', label)):
            unknown_fields = _fields(pattern) - set(attrs)
            if unknown_fields:
                fail(f'{where}', f'{key} pattern {pattern!r} uses {sorted(unknown_fields)}, which this block does '
                     f'not define (it has {sorted(attrs)})')
        runs.append(Run(name.format(**attrs), label.format(**attrs), backbone, attrs,
                        _fill(block.get('set') or {}, attrs)))
    return runs
