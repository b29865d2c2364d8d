"""What makes each input of an option file: the hints of the preflight's lines (``Finding.how``).

Datasets by their folder under ``datasets/`` (:data:`DATASETS`; ``datasets/undersr/<name>`` gets the ``undersr
generate`` command), weights by their official source (``undersr.weights.OFFICIAL_WEIGHTS``) or by the option file
whose experiment writes them. undersr never downloads any of them.
"""
import glob
import os
import re
from functools import lru_cache
from os import path as osp

from undersr.prepare.sources import how_to_get
from undersr.weights import OFFICIAL_WEIGHTS

README_DATA = 'README "Use it on your data"'
# What makes the datasets our options name, by their folder under datasets/: the `undersr prepare` command and the
# official source of its input (undersr.prepare.sources). undersr never downloads them.
_PREPARE = {  # folder -> (prepare command, source keys)
    'DF2K': ('undersr prepare df2k --div2k DIV2K_train_HR.zip --flickr2k Flickr2K.tar', ('div2k', 'flickr2k')),
    'tiny-imagenet-200': ('undersr prepare tinyimagenet --src tiny-imagenet-200.zip --subset 45000',
                          ('tinyimagenet',)),
    'NTIRE2018': ('undersr prepare ntire2018 --hr DIV2K_valid_HR.zip --lr DIV2K_valid_LR_difficult.zip',
                  ('ntire2018_hr', 'ntire2018_lr')),
    'Set5': ('undersr prepare set5 --src Set5.zip', ('set5',)),
    'Set14': ('undersr prepare set14 --src Set14.zip', ('set14',)),
    'B100': ('undersr prepare b100 --src BSDS100.zip', ('b100',)),
    'Manga109': ('undersr prepare manga109 --src Manga109.zip', ('manga109',)),
    'RealSR_V3': ('undersr prepare realsr --src "RealSR(V3)"', ('realsr',)),
    'DRealSR': ('undersr prepare drealsr --src DRealSR', ('drealsr',)),
    'NTIRE2020_Track2': ('undersr prepare ntire2020 --src DPEDiphone-crop-te-x.zip', ('ntire2020',)),
}
DATASETS = {
    'sample': 'python -m undersr.sample_data datasets/sample (photos bundled with scikit-image; README "Use with '
              'BasicSR")',
    **{folder: f'make it: {command} (from {"; ".join(how_to_get(k) for k in keys)})'
       for folder, (command, keys) in _PREPARE.items()},
}
# `undersr generate --out datasets/undersr/<HR>_<network>_ep<N>`, the naming of our fine-tune options.
GENERATED = re.compile(r'(?P<hr>.+)_(?P<net>[^_]+)_ep(?P<epoch>\d+)')
EXPERIMENT_FILE = re.compile(r'(?:.*/)?experiments/(?P<name>[^/]+)/models/(?P<file>[^/]+)')
NEVER_DOWNLOADS = 'undersr never downloads'
DEMO_HOW = 'make it: undersr demo (it writes demo_out/; README, first command)'  # options/demo/ read its outputs

def data_how(path, scale=4):
    """What makes the dataset at ``path``: the ``undersr generate`` command, a README step or the official source."""
    parts = osp.normpath(osp.expanduser(str(path))).split(os.sep)
    if parts[0] == 'demo_out':
        return DEMO_HOW
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
    if osp.normpath(str(path)).split(os.sep)[0] == 'demo_out':
        return DEMO_HOW
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
