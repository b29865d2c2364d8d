"""Option dictionaries of the generated BasicSR option files: reading, overriding, writing."""
import copy
import os
from os import path as osp

from undersr.fileio import atomic_path
from undersr.reproduce.plan import REPO, PlanError

import yaml


def resolve(path, root):
    """An option file named in a plan: absolute, under ``root``, or else under the undersr repository."""
    if osp.isabs(path):
        return path
    for base in (root, REPO):
        if osp.isfile(osp.join(base, path)):
            return osp.join(base, path)
    raise PlanError(f'option file {path} not found under {osp.abspath(root)} or {REPO}')


def read_option(path, root='.'):
    """The option dict of a YAML option file named in a plan (see :func:`resolve`)."""
    with open(resolve(path, root)) as f:
        return yaml.safe_load(f)


def set_key(opt, dotted, value):
    """``opt['a']['b'] = value`` for ``dotted='a.b'``, creating missing levels."""
    *parents, last = dotted.split('.')
    for key in parents:
        opt = opt.setdefault(key, {})
    opt[last] = value


def apply_overrides(opt, overrides):
    """A copy of ``opt`` with ``overrides`` merged in: nested mappings merge key by key, anything else replaces;
    a key with dots (``datasets.train.delta_e``) addresses a nested key."""
    opt = copy.deepcopy(opt)
    for key, value in (overrides or {}).items():
        if '.' in key:
            set_key(opt, key, copy.deepcopy(value))
        elif isinstance(value, dict) and isinstance(opt.get(key), dict):
            opt[key] = apply_overrides(opt[key], value)
        else:
            opt[key] = copy.deepcopy(value)
    return opt


def write_option(opt, path, note):
    """Writes an option file atomically, with ``note`` as a comment on top; unchanged content is not rewritten.

    Returns:
        str: ``path``.
    """
    text = ''.join(f'# {line}\n' for line in note.splitlines()) + yaml.safe_dump(opt, sort_keys=False)
    if osp.isfile(path):
        with open(path) as f:
            if f.read() == text:
                return path
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, 'w') as f:
        f.write(text)
    return path
