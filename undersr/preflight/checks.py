"""The checks of the preflight: :func:`check` returns one :class:`Finding` per input and per key problem."""
import difflib
import inspect
import os
from dataclasses import dataclass
from os import path as osp
from typing import Optional

from undersr import lpips_metric
from undersr.archs.recon_base import ReconstructionNet
from undersr.data.image_source import is_lmdb
from undersr.degrade import Degrader
from undersr.image_io import IMAGE_EXTENSIONS
from undersr.models.tiling import TILE_OPTIONS
from undersr.preflight.hints import NEVER_DOWNLOADS, data_how, weights_how

import yaml
from basicsr.archs import vgg_arch
from basicsr.utils.options import _postprocess_yml_value, ordered_yaml
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY


@dataclass
class Finding:
    """One input of an option file, or one problem with its keys.

    Attributes:
        key (str): Dotted option key, e.g. ``datasets.train.dataroot_lq``.
        path (str | None): The path as the option gives it (``~`` expanded); ``None`` for a key problem.
        present (bool): The input is there (for a key: never, a key finding is a problem).
        how (str): What makes the input (a command, a README step, the official source), or for a key the
            nearest valid one.
        kind (str): ``images``, ``lmdb``, ``meta_info``, ``weights``, ``recon``, ``state``, ``vgg``, ``lpips`` or
            ``key``.
        problem (str): What is wrong, e.g. ``not found``; empty when present.
        warning (bool): A missing input the run can do without (LPIPS then reports ``nan``).
    """
    key: str
    path: Optional[str]
    present: bool
    how: str = ''
    kind: str = 'file'
    problem: str = ''
    warning: bool = False

    @property
    def blocking(self):
        """True when the run cannot start without this input."""
        return not self.present and not self.warning

    def line(self):
        """One line: status, key, path, what is wrong and what makes it."""
        if self.present or self.warning:
            status = 'ok' if self.present else 'WARNING'
        elif self.kind == 'key':
            status = 'UNKNOWN' if self.problem.startswith('unknown') else 'INVALID'
        else:
            status = 'MISSING'
        text = f'{status:<8}{self.key}' + (f': {self.path}' if self.path is not None else '')
        if not self.present:
            text += f' ({self.problem})' if self.problem else ''
            text += f' -> {self.how}' if self.how else ''
        return text


def format_findings(findings, only_missing=False):
    """The findings, one line each; ``only_missing`` leaves out the inputs that are present."""
    return '\n'.join(f.line() for f in findings if not (only_missing and f.present))


def load_options(path, force_yml=None, debug=False):
    """Reads an option file as BasicSR does, with its ``--force_yml`` and ``--debug`` changes.

    Args:
        path (str): YAML file.
        force_yml (list[str] | None): ``section:key=value`` entries (BasicSR's syntax and value parsing).
        debug (bool): ``--debug``: BasicSR prefixes the experiment name with ``debug_``.

    Returns:
        dict: The options, not yet processed by BasicSR's ``parse_options``.

    Raises:
        ValueError: the file holds no mapping, or a ``--force_yml`` entry is malformed or names a block that does
            not exist.
    """
    with open(path) as f:
        opt = yaml.load(f, Loader=ordered_yaml()[0]) or {}
    if not isinstance(opt, dict):
        raise ValueError(f'{path} holds a {type(opt).__name__}, not a mapping of options')
    for entry in force_yml or ():
        if '=' not in entry:
            raise ValueError(f'--force_yml {entry}: expected section:key=value')
        keys, value = entry.split('=', 1)
        *blocks, leaf = keys.strip().split(':')
        target = opt
        for block in blocks:
            if not isinstance(target.get(block), dict):
                raise ValueError(f'--force_yml {entry}: the option file has no block {block!r}')
            target = target[block]
        target[leaf] = _postprocess_yml_value(value.strip())
    if debug and not str(opt.get('name', '')).startswith('debug'):
        opt['name'] = f'debug_{opt.get("name")}'
    return opt


def check_file(path, is_train, root='.', auto_resume=False, root_path=None, force_yml=None, debug=False):
    """:func:`check` of the option file ``path``, read by :func:`load_options` (BasicSR's YAML loader)."""
    return check(load_options(path, force_yml, debug), is_train, root, auto_resume, root_path)


def check(opt, is_train, root='.', auto_resume=False, root_path=None):
    """Checks every path and undersr-defined key that ``opt`` names.

    Args:
        opt (dict): Parsed option YAML, not yet processed by BasicSR.
        is_train (bool): ``train.py`` (losses and resume states are checked) or ``test.py``.
        root (str): Where relative paths resolve: BasicSR's working directory.
        auto_resume (bool): ``--auto_resume``: a state in the experiment's ``training_states`` replaces
            ``path.resume_state``, as in BasicSR.
        root_path (str | None): BasicSR's root (``experiments/`` and ``options/`` live there); default ``root``.

    Returns:
        list[Finding]: Paths in option order (present or not), then key problems.
    """
    return _Preflight(opt, is_train, root, auto_resume, root_path or root).run()


class _Preflight:

    def __init__(self, opt, is_train, root, auto_resume, root_path):
        self.opt, self.is_train, self.root, self.auto_resume, self.root_path = opt, is_train, root, auto_resume, \
            root_path
        self.findings = []

    def run(self):
        self.registered('model_type', self.opt.get('model_type'), MODEL_REGISTRY, 'model')
        for phase, dataset in _blocks(self.opt.get('datasets')):
            self.dataset(f'datasets.{phase}', dataset)
        for key, network in _blocks(self.opt):
            if key.startswith('network_'):
                self.network(key, network)
        self.tile()
        # The Undertrained*Models degrade only while training; a degradation dataset does it in any phase.
        self.degradation('degradation', self.opt.get('degradation'), paths=self.is_train)
        self.pretrained(self.resume_iter() if self.is_train else None)
        if self.is_train:
            for key, loss in _blocks(self.opt.get('train')):
                if key.endswith('_opt'):
                    self.loss(f'train.{key}', loss)
        for key, metric in _blocks((self.opt.get('val') or {}).get('metrics')):
            self.metric(f'val.metrics.{key}', metric)
        return sorted(self.findings, key=lambda f: f.kind == 'key')  # stable: paths first, in option order

    # --- paths ---------------------------------------------------------------------------------------------------
    def resolve(self, path):
        return osp.join(self.root, osp.expanduser(str(path)))

    def add(self, key, path, present, how, kind, problem=''):
        self.findings.append(Finding(key, osp.expanduser(str(path)), present, how, kind, '' if present else problem))

    def file(self, key, path, how, kind):
        full = self.resolve(path)
        problem = '' if osp.isfile(full) and osp.getsize(full) else 'empty file' if osp.isfile(full) else 'not found'
        self.add(key, path, not problem, how, kind, problem)
        return not problem

    def dataset(self, prefix, dataset):
        self.registered(f'{prefix}.type', dataset.get('type'), DATASET_REGISTRY, 'dataset')
        lmdb = (dataset.get('io_backend') or {}).get('type') == 'lmdb'
        for key in ('dataroot_gt', 'dataroot_lq'):
            if dataset.get(key) is not None:
                self.image_root(f'{prefix}.{key}', str(dataset[key]), lmdb)
        for key in () if lmdb else ('meta_info_file', 'meta_info'):  # an LMDB lists its keys in meta_info.txt
            if dataset.get(key) is not None:
                self.file(f'{prefix}.{key}', dataset[key], data_how(dataset[key], self.opt.get('scale', 4)),
                          'meta_info')
        self.degradation(f'{prefix}.degradation', dataset.get('degradation'))

    def image_root(self, key, path, lmdb):
        full, how = self.resolve(path), data_how(path, self.opt.get('scale', 4))
        if not osp.isdir(full):
            problem = 'not a folder' if osp.exists(full) else 'not found'
        elif lmdb and not path.rstrip('/').endswith('.lmdb'):
            problem = 'BasicSR reads LMDBs only from folders named *.lmdb'
        elif lmdb and not is_lmdb(full):
            problem = 'not an LMDB: no data.mdb in it'
        elif lmdb and not osp.isfile(osp.join(full, 'meta_info.txt')):
            problem, path = 'the LMDB has no meta_info.txt (an unfinished write?)', osp.join(path, 'meta_info.txt')
        elif not lmdb and not is_lmdb(full) and not _has_image(full):
            problem = f'no images ({", ".join(IMAGE_EXTENSIONS)}) in it'
        else:
            problem = ''
        self.add(key, path, not problem, how, 'lmdb' if lmdb else 'images', problem)

    def pretrained(self, resume_iter):
        paths = self.opt.get('path') or {}
        ignored = paths.get('ignore_resume_networks') or ()
        for key, value in paths.items():
            if not key.startswith('pretrain_network') or value is None:
                continue
            network = key[len('pretrain_'):]
            if resume_iter is not None and network in self.opt and network not in ignored:
                continue  # BasicSR's check_resume loads the experiment's own file instead (below)
            self.file(f'path.{key}', value, weights_how(value, self.root_path), 'weights')
        if resume_iter is None:
            return
        models = osp.join(self.experiment_root(), 'models')
        for network in (k for k in self.opt if k.startswith('network_') and k not in ignored):
            name = f'net_{network[len("network_"):]}_{resume_iter}.pth'
            self.file(f'path.pretrain_{network}', osp.join(models, name),
                      f'resuming loads {name}, written with the state by the run being resumed; resume from a '
                      'state whose iteration has its network files', 'weights')

    def experiment_root(self):
        return osp.join(self.root_path, 'experiments', str(self.opt.get('name')))

    def resume_iter(self):
        """Checks the resume state; returns its iteration when the run will resume, else ``None``."""
        state = (self.opt.get('path') or {}).get('resume_state')
        folder = osp.join(self.experiment_root(), 'training_states')
        if self.auto_resume and osp.isdir(folder):  # as undersr.basicsr_fixes.load_resume_state
            states = sorted((f for f in os.listdir(folder) if f.endswith('.state') and f.split('.')[0].isdigit()),
                            key=lambda f: int(f.split('.')[0]))
            state = osp.join(folder, states[-1]) if states else state
        if state is None:
            return None
        how = (f'--auto_resume resumes from the newest state in {osp.relpath(folder, self.root_path)}; or set '
               'path.resume_state to an existing .state file (~ starts anew)')
        if not self.file('path.resume_state', state, how, 'state'):
            return None
        stem = osp.basename(str(state)).split('.')[0]
        return int(stem) if stem.isdigit() else None

    def loss(self, key, loss):
        self.registered(f'{key}.type', loss.get('type'), LOSS_REGISTRY, 'loss')
        if loss.get('type') == 'PerceptualLoss':  # undersr.basicsr_fixes._checked_vgg_init reads this file
            self.file(key, vgg_arch.VGG_PRETRAIN_PATH,
                      weights_how(vgg_arch.VGG_PRETRAIN_PATH, self.root_path), 'vgg')

    def metric(self, key, metric):
        self.registered(f'{key}.type', metric.get('type'), METRIC_REGISTRY, 'metric')
        if metric.get('type') != 'calculate_lpips':
            return
        weights = metric.get('weights')
        try:
            backbone = lpips_metric.BACKBONE_FILES[lpips_metric._canonical_net(metric.get('net', 'alex'))]
        except ValueError as err:
            self.findings.append(Finding(f'{key}.net', None, False, str(err), 'key', 'unknown LPIPS network'))
            return
        how = (f"put torchvision's {backbone} there (download.pytorch.org/models/{backbone}); without it LPIPS "
               f'is reported as nan. {NEVER_DOWNLOADS}')
        if weights is None:
            self.findings.append(Finding(f'{key}.weights', None, False, how, 'lpips', 'not set', warning=True))
        elif not self.file(f'{key}.weights', weights, how, 'lpips'):
            self.findings[-1].warning = True

    # --- keys ----------------------------------------------------------------------------------------------------
    def unknown_keys(self, key, given, valid):
        for name in given:
            if name not in valid:
                close = difflib.get_close_matches(str(name), valid, n=1)
                hint = f'did you mean `{close[0]}`? ' if close else ''
                self.findings.append(Finding(f'{key}.{name}', None, False, f'{hint}valid: {", ".join(sorted(valid))}',
                                             'key', 'unknown key'))

    def registered(self, key, name, registry, what):
        # BasicSR's Registry.get also finds `<name>_basicsr`, the suffix BasicSR gives its own copies of names that
        # other packages (realesrgan, ...) register too, e.g. SRVGGNetCompact and RealESRGANModel.
        if name is None or name in registry or f'{name}_basicsr' in registry:
            return
        known = [k[:-len('_basicsr')] if k.endswith('_basicsr') else k for k in registry.keys()]
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f'did you mean `{close[0]}`?' if close else 'import the package that registers it before BasicSR runs'
        self.findings.append(Finding(key, None, False, hint, 'key', f"unknown {what} type {name!r}"))

    def network(self, key, network):
        self.registered(f'{key}.type', network.get('type'), ARCH_REGISTRY, 'arch')
        cls = ARCH_REGISTRY.get(network['type']) if network.get('type') in ARCH_REGISTRY else None
        if cls is not None and issubclass(cls, ReconstructionNet):
            self.unknown_keys(key, [k for k in network if k != 'type'], _arguments(cls.__init__))

    def tile(self):
        tile = self.opt.get('tile')
        if isinstance(tile, dict):
            self.unknown_keys('tile', list(tile), list(TILE_OPTIONS))

    def degradation(self, key, block, paths=True):
        if block is None:
            return
        self.unknown_keys(key, list(block), [a for a in _arguments(Degrader.__init__) if a not in ('scale', 'device')])
        recon = block.get('recon')
        if not isinstance(recon, (list, tuple)) or not recon:
            self.findings.append(Finding(f'{key}.recon', None, False, 'a list of net_g_ep<N>.pth files: '
                                         'recon: [experiments/<name>/models/net_g_ep8.pth]', 'key',
                                         f'must be a non-empty list, got {recon!r}'))
            return
        for i, path in enumerate(recon if paths else ()):
            self.file(f'{key}.recon[{i}]', path, weights_how(path, self.root_path), 'recon')


def _blocks(mapping):
    """The ``(key, dict)`` items of an option block, skipping scalars and ``~``."""
    return [(k, v) for k, v in (mapping or {}).items() if isinstance(v, dict)]


def _arguments(function):
    """Names of the keyword arguments of ``function`` (``self`` and ``*args``/``**kwargs`` left out)."""
    params = inspect.signature(function).parameters.values()
    return [p.name for p in params if p.name != 'self' and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _has_image(folder):
    """True as soon as one image file is found under ``folder`` (which may be large, e.g. Tiny-ImageNet)."""
    for _, _, files in os.walk(folder, followlinks=True):
        if any(f.lower().endswith(IMAGE_EXTENSIONS) for f in files):
            return True
    return False
