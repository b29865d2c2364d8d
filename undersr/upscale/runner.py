"""The run over a folder of photos: every photo through every model, resumable, bad files named and skipped."""
import re
import sys
from dataclasses import dataclass, field
from os import path as osp

from undersr.image_io import IMAGE_EXTENSIONS, BadImageError
from undersr.progress import progress
from undersr.upscale.engine import Bicubic, load_upscaler
from undersr.upscale.images import find_images, output_path, read_image, upscale_image, write_image

import torch

BASELINE = 'bicubic'


@dataclass
class UpscaleResult:
    """What a run did.

    Attributes:
        folders (dict[str, str]): Output folder of each method, by label.
        done (list[tuple[str, str, dict[str, str]]]): ``(input, relative path, {label: output file})`` of every
            photo whose outputs all exist.
        written (int): Output files written by this run.
        existing (int): Output files that already existed and were kept (resume).
        bad (list[tuple[str, str]]): ``(input, reason)`` of every photo skipped.
        page (str | None): The comparison page, when one was written.
    """
    folders: dict
    done: list = field(default_factory=list)
    written: int = 0
    existing: int = 0
    bad: list = field(default_factory=list)
    page: str | None = None


def default_labels(checkpoints):
    """Short unique names for checkpoints: the file stem, or the experiment name for ``<name>/models/net_g_*``."""
    labels = []
    for path in checkpoints:
        folder, stem = osp.split(osp.splitext(osp.abspath(path))[0])
        if stem.startswith('net_g') and osp.basename(folder) == 'models':
            stem = osp.basename(osp.dirname(folder))
        label = re.sub(r'[^\w.-]+', '_', stem) or 'model'
        labels.append(label if label not in labels else f'{label}_{len(labels) + 1}')
    return labels


def run_methods(inputs, methods, folders, scale=None, alpha='model', ext='auto', exclude=()):
    """Writes every method's output for every photo, skipping outputs that exist and photos that cannot be read.

    Args:
        inputs (list[str]): Files and folders (see :func:`~undersr.upscale.images.find_images`).
        methods (dict[str, Callable]): By label: :class:`~undersr.upscale.engine.Upscaler` or
            :class:`~undersr.upscale.engine.Bicubic`.
        folders (dict[str, str]): Output folder by label.
        scale (float | None): Output size relative to the input; default: each method's own scale.
        alpha (str): How alpha channels are upscaled (``'model'`` or ``'bicubic'``).
        ext (str): ``'auto'`` (the input's format) or ``'png'``.
        exclude (tuple[str]): Folders not to search for inputs.

    Returns:
        UpscaleResult: What was written, kept and skipped.
    """
    result = UpscaleResult(folders=dict(folders))
    photos = find_images(inputs, exclude)
    if not photos:
        raise FileNotFoundError(f'no images ({" ".join(IMAGE_EXTENSIONS)}) in {", ".join(inputs)}')
    bar = progress(photos, desc='upscale', unit='img')
    for path, rel in bar:
        targets = {label: output_path(folder, rel, ext) for label, folder in folders.items()}
        if any(osp.realpath(target) == osp.realpath(path) for target in targets.values()):
            raise ValueError(f'{path} would be overwritten by its own output; choose another output folder')
        todo = [label for label, target in targets.items() if not osp.exists(target)]
        result.existing += len(targets) - len(todo)
        try:
            image = read_image(path) if todo else None
            for label in todo:
                method = methods[label]
                write_image(targets[label], upscale_image(image, method, scale or method.scale, alpha))
                result.written += 1
        except BadImageError as err:
            skip(result, path, err.reason)
            continue
        except torch.cuda.OutOfMemoryError:
            skip(result, path, f'out of memory in {label}; use --tile 256 (or smaller)')
            continue
        result.done.append((path, rel, targets))
    return result


def skip(result, path, reason):
    """Records and prints a skipped photo."""
    result.bad.append((path, reason))
    print(f'skipped {path}: {reason}', file=sys.stderr, flush=True)


def upscale(inputs, models, out, *, labels=None, opts=None, compare=False, scale=None, alpha='model', ext='auto',
            device='auto', precision='fp32', tile_size=None, tile_pad=10, pre_pad=10, crops=2, crop_size=192):
    """Super-resolves photos with one or more SR checkpoints; with ``compare``, also writes the comparison page.

    Outputs keep the inputs' relative paths: ``out/<rel>`` for one model, ``out/<label>/<rel>`` for several or
    with ``compare`` (which adds ``out/bicubic/<rel>`` and ``out/compare/``, see
    :func:`undersr.upscale.compare.write_comparison`).

    Args:
        inputs (list[str]): Image files and folders (searched recursively).
        models (list[str] | dict[str, str]): Checkpoints, or ``{label: checkpoint}``.
        out (str): Output folder.
        labels (list[str] | None): Names of the models (default: from the file names).
        opts (list[str] | None): Option files: one for all models, or one per model (see
            :func:`~undersr.upscale.engine.load_upscaler`); ``None`` finds them.
        compare (bool): Write ``out/compare/index.html`` and ``out/compare/grid.png``.
        scale (float | None): Output size relative to the input; default: the models' own.
        alpha, ext: See :func:`run_methods`.
        device, precision, tile_size, tile_pad, pre_pad: See :func:`~undersr.upscale.engine.load_upscaler`.
        crops (int): Crops per photo on the comparison page.
        crop_size (int): Crop side in output pixels.

    Returns:
        UpscaleResult: ``page`` is the comparison page's path with ``compare``.

    Raises:
        FileNotFoundError, ValueError: a model, an option file or the inputs are unusable; the message names the
            file.
    """
    if isinstance(models, dict):
        labels, models = list(models), list(models.values())
    labels = list(labels or default_labels(models))
    opts = list(opts or [None])
    if len(labels) != len(models) or len(set(labels)) != len(labels) or BASELINE in labels:
        raise ValueError(f'need one distinct label per model, other than {BASELINE!r}; got {labels}')
    if len(opts) not in (1, len(models)):
        raise ValueError(f'give one option file for all models or one per model ({len(models)}), got {len(opts)}')
    methods = {label: load_upscaler(ckpt, opts[i % len(opts)], device, precision, tile_size, tile_pad, pre_pad)
               for i, (label, ckpt) in enumerate(zip(labels, models))}
    for label, method in methods.items():
        print(f'{label}: {method.source}, x{method.scale}, {method.dtype}, on {method.device}', flush=True)
    if compare:
        scales = {method.scale for method in methods.values()}
        if scale is None and len(scales) > 1:
            raise ValueError(f'the models upscale by {sorted(scales)}; give --scale to compare them at one size')
        scale = scale or scales.pop()
        methods = {BASELINE: Bicubic(scale), **methods}
    folders = {label: osp.join(out, label) if len(methods) > 1 else out for label in methods}
    result = run_methods(inputs, methods, folders, scale, alpha, ext, exclude=(out,))
    if compare:
        from undersr.upscale.compare import write_comparison
        result.page = write_comparison(osp.join(out, 'compare'), result.done, list(methods), scale, crops, crop_size)
    return result


def compare_models(inputs, models, out, **kwargs):
    """Upscales ``inputs`` with ``models`` (``{label: checkpoint}``) and bicubic; returns the page's path.

    The entry point for scripts such as the demo: ``compare_models(['photos/'], {'pre-trained': 'a.pth',
    'fine-tuned': 'b.pth'}, 'out/')`` writes ``out/<label>/``, ``out/bicubic/``, ``out/compare/index.html`` and
    ``out/compare/grid.png``. Keyword arguments are those of :func:`upscale`. Photos that cannot be read are
    skipped (and printed); :func:`upscale` returns them in ``bad``.
    """
    return upscale(inputs, models, out, compare=True, **kwargs).page
