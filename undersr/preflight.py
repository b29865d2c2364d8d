"""Preflight: every input an option file names, checked before BasicSR builds anything.

``python train.py -opt X.yml`` and ``python test.py -opt X.yml`` call :func:`main` first. When an input is missing it
prints one line per missing input (the option key, the path, and what makes it) and exits with status 2: no
experiment or results folder is created or renamed, no network is built. ``--check`` prints every input, present or
not, and exits (0 when all are present, 2 otherwise), so a GPU job can be prepared on a laptop.

What is checked (see docs/preflight.md for the lines it prints):

==========================================  ===================================================================
option                                      what makes it (``Finding.how``)
==========================================  ===================================================================
``datasets.*.dataroot_gt``/``_lq``          ``undersr generate ...`` for ``datasets/undersr/<name>``; the README
(folders; LMDBs with ``meta_info.txt``)     step or the official source for the other datasets (:data:`DATASETS`)
``datasets.*.meta_info_file``/``meta_info`` as the dataset it belongs to
``path.pretrain_network_*``                 the official project (``undersr.weights.OFFICIAL_WEIGHTS``), or the
``degradation.recon``                       ``python train.py -opt ...`` whose experiment writes the file
``path.resume_state``                       ``--auto_resume``, or a ``.state`` file of the experiment
``train.*_opt`` of type ``PerceptualLoss``  torchvision's ``vgg19-dcbb9e9d.pth`` at BasicSR's ``VGG_PRETRAIN_PATH``
``val.metrics.*`` ``calculate_lpips``       its torchvision backbone; a warning only: LPIPS reports ``nan`` without
==========================================  ===================================================================

Unknown keys in the blocks undersr defines are errors that name the nearest valid key: ``degradation``
(:class:`~undersr.degrade.Degrader` arguments), ``tile`` (:data:`~undersr.models.tiling.TILE_OPTIONS`) and the
options of a reconstruction network (its constructor's arguments). So are ``type`` names that no BasicSR registry
holds (``model_type``, ``network_*``, datasets, losses, metrics): BasicSR would fail on them only after making the
experiment folder.

Relative paths are resolved as BasicSR resolves them, against the working directory (``root``), with ``~``
expanded; ``experiments/<name>`` of ``--auto_resume`` lives under BasicSR's ``root_path`` (the folder of
``train.py``).
"""
import argparse
import difflib
import glob
import inspect
import os
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from os import path as osp
from typing import Optional

from undersr import lpips_metric
from undersr.archs.recon_base import ReconstructionNet
from undersr.data.image_source import is_lmdb
from undersr.degrade import Degrader
from undersr.image_io import IMAGE_EXTENSIONS
from undersr.models.tiling import TILE_OPTIONS
from undersr.weights import OFFICIAL_WEIGHTS

import yaml
from basicsr.archs import vgg_arch
from basicsr.utils.options import _postprocess_yml_value, ordered_yaml
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

README_DATA = 'README "Use it on your data"'
README_EVAL = 'README "Evaluation and dataset analysis"'
# Where the datasets our options name come from, by their folder under datasets/. undersr never downloads them.
DATASETS = {
    'sample': 'python -m undersr.sample_data datasets/sample (photos bundled with scikit-image; README "Use with '
              'BasicSR")',
    'DF2K': 'DIV2K train HR (data.vision.ee.ethz.ch/cvl/DIV2K, DIV2K_train_HR.zip) and Flickr2K HR '
            '(cv.snu.ac.kr/research/EDSR/Flickr2K.tar), all HR images in datasets/DF2K/HR (' + README_DATA + ')',
    'tiny-imagenet-200': 'unpack tiny-imagenet-200.zip (cs231n.stanford.edu/tiny-imagenet-200.zip) into datasets/ '
                         '(' + README_DATA + ', step 1)',
    'Set5': 'Set5 as BasicSR and HAT test on it: GTmod4 (HR) and LRbicx4 (bicubic x4), see XPixelGroup/BasicSR '
            'docs/DatasetPreparation.md',
    'NTIRE2018': 'DIV2K_valid_HR.zip and DIV2K_valid_LR_difficult.zip (NTIRE 2018 Track 3) from '
                 'data.vision.ee.ethz.ch/cvl/DIV2K, unpacked into datasets/NTIRE2018 (' + README_EVAL + ')',
    'RealSR_V3': 'RealSR V3 from github.com/csjcai/RealSR, unpacked into datasets/RealSR_V3 (' + README_EVAL + ')',
    'DRealSR': 'DRealSR from github.com/xiezw5/Component-Divide-and-Conquer-for-Real-World-Image-Super-Resolution, '
               'unpacked into datasets/DRealSR (' + README_EVAL + ')',
}
# `undersr generate --out datasets/undersr/<HR>_<network>_ep<N>`, the naming of our fine-tune options.
GENERATED = re.compile(r'(?P<hr>.+)_(?P<net>[^_]+)_ep(?P<epoch>\d+)')
EXPERIMENT_FILE = re.compile(r'(?:.*/)?experiments/(?P<name>[^/]+)/models/(?P<file>[^/]+)')
NEVER_DOWNLOADS = 'undersr never downloads'


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
        if name is None or name in registry:
            return
        close = difflib.get_close_matches(str(name), list(registry.keys()), n=1)
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


def data_how(path, scale=4):
    """What makes the dataset at ``path``: the ``undersr generate`` command, a README step or the official source."""
    parts = osp.normpath(osp.expanduser(str(path))).split(os.sep)
    if 'datasets' not in parts[:-1]:
        return f'put the images there, or fix the path ({README_DATA})'
    i = parts.index('datasets')
    name = parts[i + 1]
    if name == 'undersr' and len(parts) > i + 2:
        out, leaf = '/'.join(parts[:i + 3]), parts[i + 3] if len(parts) > i + 3 else ''
        fmt = 'lmdb' if leaf.endswith('.lmdb') else 'folder'
        m = GENERATED.fullmatch(parts[i + 2])
        hr, recon = (f'datasets/{m["hr"]}/HR', f'experiments/train_{m["net"]}_tinyimagenet/models/net_g_ep'
                     f'{m["epoch"]}.pth') if m else ('<HR images>', '<net_g_ep<N>.pth>')
        crop = ' --crop 1024 --crops-per-image 6' if m else ''  # paper §4.1: 1024² crops of DF2K
        return (f'make it: undersr generate --hr {hr} --recon {recon} --scale {scale}{crop} --out {out} '
                f'--format {fmt} ({README_DATA}, step 2)')
    if name in DATASETS:
        return DATASETS[name]
    return f'put the images there, or fix the path ({README_DATA})'


def weights_how(path, root_path='.'):
    """What makes the weights file ``path``: its official source, or the training run that writes it."""
    name = osp.basename(str(path))
    if name in OFFICIAL_WEIGHTS:
        return f'download {name} from {OFFICIAL_WEIGHTS[name]} and put it at this path; {NEVER_DOWNLOADS}'
    m = EXPERIMENT_FILE.fullmatch(osp.normpath(osp.expanduser(str(path))).replace(os.sep, '/'))
    if m:
        option = _options_by_name(osp.abspath(root_path)).get(m['name'])
        if option:
            return f'train it: python train.py -opt {option} (writes {m["file"]} into experiments/{m["name"]}/models)'
        return f'written by the training run named {m["name"]} (no option file under options/ has that name)'
    return 'fix the path, or put the file there'


@lru_cache(maxsize=4)
def _options_by_name(root_path):
    """``{experiment name: option file relative to root_path}`` for the option files under ``root_path/options``."""
    found = {}
    for path in sorted(glob.glob(osp.join(root_path, 'options', '**', '*.yml'), recursive=True)):
        with open(path) as f:
            m = re.search(r'^name:\s*(\S+)\s*$', f.read(), re.MULTILINE)
        if m:
            found.setdefault(m[1], osp.relpath(path, root_path))
    return found


# --- train.py / test.py -----------------------------------------------------------------------------------------
def build_parser(is_train):
    """BasicSR's arguments (so ``--auto_resume``, ``--force_yml``, ``--launcher`` mean the same) plus ``--check``."""
    script = 'train.py' if is_train else 'test.py'
    parser = argparse.ArgumentParser(prog=script, description=f'BasicSR\'s {script} with undersr; every input is '
                                     'checked first (undersr.preflight).')
    parser.add_argument('-opt', required=True, help='Path to option YAML file.')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none', help='job launcher')
    parser.add_argument('--auto_resume', action='store_true')
    parser.add_argument('--debug', action='store_true')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument('--force_yml', nargs='+', default=None, help='e.g. train:ema_decay=0.999')
    parser.add_argument('--check', action='store_true', help='only check the inputs: list every path, present or '
                        'missing, and exit (0: all present, 2: some missing)')
    return parser


def main(argv, is_train, root_path):
    """The preflight of ``train.py``/``test.py``: returns when the run may start, else exits with status 2.

    With ``--check`` it always exits: 0 when every input is present, 2 otherwise. Under a launcher every process
    checks, and only rank 0 prints.

    Args:
        argv (list[str]): The script's arguments (``sys.argv[1:]``).
        is_train (bool): ``train.py`` or ``test.py``.
        root_path (str): BasicSR's root (the folder of the script).
    """
    args, _ = build_parser(is_train).parse_known_args(argv)
    rank = int(os.environ.get('SLURM_PROCID' if args.launcher == 'slurm' else 'RANK', 0)) \
        if args.launcher != 'none' else 0

    def say(text, stream=sys.stdout):
        if rank == 0 and text:
            print(text, file=stream, flush=True)

    try:
        opt = load_options(args.opt, args.force_yml, args.debug)
    except (OSError, ValueError, yaml.YAMLError) as err:
        say(f'preflight: cannot read options {args.opt}: {err}', sys.stderr)
        sys.exit(2)
    findings = check(opt, is_train, '.', args.auto_resume, root_path)  # relative paths: as BasicSR, from the cwd
    blocking = [f for f in findings if f.blocking]
    if args.check:
        paths = [f for f in findings if f.kind != 'key']
        say(format_findings(findings))
        say(f'preflight: {sum(f.present for f in paths)} of {len(paths)} inputs of {args.opt} present, '
            f'{len(blocking)} problem(s)' + (', nothing to do before the run' if not blocking else ''))
        sys.exit(2 if blocking else 0)
    if blocking:
        say(f'preflight: {args.opt} cannot run, nothing was started; {len(blocking)} problem(s):', sys.stderr)
        say(format_findings(findings, only_missing=True), sys.stderr)  # the warnings too: all to fetch at once
        say(f'(python {"train" if is_train else "test"}.py -opt {args.opt} --check lists every input)', sys.stderr)
        sys.exit(2)
    say(format_findings([f for f in findings if f.warning]), sys.stderr)
