"""Sample images that ship with scikit-image, written as BasicSR paired folders.

They let every command run offline: ``python -m undersr.sample_data datasets/sample`` writes
``datasets/sample/gt/*.png`` (HR) and ``datasets/sample/lq/*.png`` (bicubic ×scale, MATLAB-compatible,
:func:`undersr.resize.bicubic_downsample`), which the tiny option files read.
"""
import argparse
import os

from undersr.resize import bicubic_downsample

import cv2
import numpy as np
import skimage.data

# Colour photographs bundled with scikit-image (no download). `cat` is `chelsea` again, so it is left out.
COLOR_IMAGES = ('astronaut', 'coffee', 'chelsea', 'rocket', 'immunohistochemistry', 'hubble_deep_field',
                'stereo_motorcycle', 'retina')


def load(name):
    """Returns a bundled scikit-image photo as an (H, W, 3) uint8 RGB array."""
    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):  # stereo_motorcycle returns (left, right, disparity)
        image = image[0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def center_crop(image, size, multiple=1):
    """Centre crop to at most ``size`` × ``size`` (``None``: the whole image), trimmed to a multiple of ``multiple``.

    Args:
        image (ndarray): (H, W, C).
    """
    h, w = image.shape[:2]
    th, tw = (h, w) if size is None else (min(h, size), min(w, size))
    th, tw = th - th % multiple, tw - tw % multiple
    top, left = (h - th) // 2, (w - tw) // 2
    return image[top:top + th, left:left + tw]


def write_paired_folder(out_dir, names=COLOR_IMAGES, scale=4, crop=None):
    """Writes ``out_dir/gt/<name>.png`` and ``out_dir/lq/<name>.png`` for BasicSR's ``PairedImageDataset``.

    Args:
        out_dir (str): Destination; ``gt`` and ``lq`` are created inside.
        names (Sequence[str]): Images from :data:`COLOR_IMAGES`.
        scale (int): Downsampling factor; HR sizes are cropped to a multiple of it.
        crop (int | None): Centre-crop HR to at most this size.

    Returns:
        list[str]: The file names written.
    """
    for sub in ('gt', 'lq'):
        os.makedirs(os.path.join(out_dir, sub), exist_ok=True)
    written = []
    for name in names:
        hr = center_crop(load(name), crop, multiple=scale)
        for sub, image in (('gt', hr), ('lq', bicubic_downsample(hr, scale))):
            cv2.imwrite(os.path.join(out_dir, sub, f'{name}.png'), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        written.append(f'{name}.png')
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out', nargs='?', default='datasets/sample', help='output folder (default: %(default)s)')
    parser.add_argument('--scale', type=int, default=4)
    parser.add_argument('--crop', type=int, default=256, help='centre-crop HR to this size (default: %(default)s)')
    parser.add_argument('--names', nargs='+', default=COLOR_IMAGES, choices=COLOR_IMAGES)
    args = parser.parse_args(argv)
    files = write_paired_folder(args.out, args.names, args.scale, args.crop)
    print(f'wrote {len(files)} HR/LR pairs to {args.out}/gt and {args.out}/lq')


if __name__ == '__main__':
    main()
