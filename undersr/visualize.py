"""What a person looks at: image grids (rows of equally sized cells with column labels) and plot figures."""
import os

import cv2
import numpy as np


def fit_cell(image, size):
    """Letterboxes an (H, W, 3) uint8 image into a ``size`` × ``size`` cell (nearest-neighbour when enlarging,
    so pixels and artefacts stay visible)."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    interp = cv2.INTER_NEAREST if scale >= 1 else cv2.INTER_AREA
    resized = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=interp)
    cell = np.full((size, size, 3), 255, np.uint8)
    top, left = (size - resized.shape[0]) // 2, (size - resized.shape[1]) // 2
    cell[top:top + resized.shape[0], left:left + resized.shape[1]] = resized
    return cell


def image_grid(rows, cell=128, labels=None, gap=2):
    """Builds one picture from rows of images.

    Args:
        rows (list[list[ndarray]]): (H, W, 3) uint8 images in the channel order you will save with.
        cell (int): Side of each square cell in pixels.
        labels (list[str] | None): Column titles drawn above the first row.
        gap (int): White pixels between cells.

    Returns:
        ndarray: (H, W, 3) uint8.
    """
    columns = max(len(r) for r in rows)
    header = 20 if labels else 0
    height = header + len(rows) * (cell + gap)
    width = columns * (cell + gap)
    grid = np.full((height, width, 3), 255, np.uint8)
    for c, label in enumerate(labels or []):
        cv2.putText(grid, str(label)[:cell // 7], (c * (cell + gap) + 3, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1, cv2.LINE_AA)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            top, left = header + r * (cell + gap), c * (cell + gap)
            grid[top:top + cell, left:left + cell] = fit_cell(image, cell)
    return grid


def save_image(path, image):
    """Writes an image (BGR, uint8), creating the folder; raises ``OSError`` naming the path if it fails."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, image):
        raise OSError(f'could not write {path} (disk full or unsupported extension?)')


def new_figure(width=6.4, height=4.2, dpi=100):
    """A matplotlib figure outside pyplot: no global backend or figure registry is touched, nothing to close.

    ``fig.savefig('x.png')`` renders it with Agg. Use ``fig.subplots()`` for axes.
    """
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), dpi=dpi)
