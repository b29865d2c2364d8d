"""The side-by-side comparison of SR outputs without ground truth: a static HTML page and a PNG grid.

``write_comparison`` writes, into one folder (``OUT/compare/`` of ``undersr upscale --compare``):

- ``index.html``: one self-contained page (inline CSS and JavaScript, no network). Per photo: the same crops from
  the input (enlarged with nearest neighbour) and from every method side by side, each with the NIQE of the whole
  output; a before/after slider between any two methods on any crop; links to the full outputs. A table at the
  top lists NIQE per photo and method.
- ``crops/``: the crops as PNG files, referenced by the page.
- ``grid.png``: the same crops as one picture, one row per (photo, crop), one column per method.

Crops are chosen on the input, where it has the most detail (mean absolute Laplacian), without overlap, so that
every method is looked at where it matters. NIQE is BasicSR's ``calculate_niqe`` (Y channel, the scale as border);
it needs at least two 96×96 blocks after the border, so smaller outputs show ``n/a``.
"""
import html
import json
import math
import os
import warnings
from os import path as osp
from urllib.parse import quote

from undersr.fileio import atomic_path
from undersr.image_io import read_rgb
from undersr.visualize import image_grid, save_image

import cv2
import numpy as np

INPUT = 'input'
NIQE_BLOCK = 96  # BasicSR's NIQE block side


def niqe_score(rgb, crop_border):
    """BasicSR's NIQE (lower is better) of an (H, W, 3) uint8 RGB image, or NaN where it is undefined.

    Undefined: fewer than two 96×96 blocks after cutting ``crop_border`` pixels off every side, or a flat image
    whose features have no covariance.
    """
    from basicsr.metrics import calculate_niqe
    h, w = (side - 2 * crop_border for side in rgb.shape[:2])
    if max(h, 0) // NIQE_BLOCK * (max(w, 0) // NIQE_BLOCK) < 2:
        return float('nan')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        try:
            return float(calculate_niqe(rgb[..., ::-1], crop_border, input_order='HWC', convert_to='y'))
        except np.linalg.LinAlgError:
            return float('nan')


def choose_crops(rgb, window, count):
    """The ``count`` most detailed, non-overlapping ``window``-sized regions of an image.

    Args:
        rgb (ndarray): (H, W, 3) uint8 image.
        window (int): Crop side in pixels (smaller sides of the image limit it).
        count (int): Crops wanted; fewer are returned when fewer fit without overlap.

    Returns:
        list[tuple[int, int, int, int]]: ``(top, left, height, width)``, most detailed first.
    """
    h, w = rgb.shape[:2]
    ch, cw = min(window, h), min(window, w)
    detail = np.abs(cv2.Laplacian(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F))
    total = cv2.integral(detail)  # total[y, x]: sum of detail[:y, :x]
    tops = sorted(set(range(0, h - ch + 1, max(1, ch // 2))) | {h - ch})
    lefts = sorted(set(range(0, w - cw + 1, max(1, cw // 2))) | {w - cw})
    scored = sorted((-(total[y + ch, x + cw] - total[y, x + cw] - total[y + ch, x] + total[y, x]), y, x)
                    for y in tops for x in lefts)
    chosen = []
    for _, y, x in scored:
        if len(chosen) < count and all(abs(y - y2) >= ch or abs(x - x2) >= cw for y2, x2, _, _ in chosen):
            chosen.append((y, x, ch, cw))
    return chosen


def photo_crops(lr, outputs, boxes, scale):
    """The crops of one photo: for each box, the input crop (nearest-neighbour enlarged) and each output's.

    Args:
        lr (ndarray): (h, w, 3) uint8 RGB input.
        outputs (list[ndarray]): (H, W, 3) uint8 RGB outputs, H ≈ h * scale.
        boxes (list[tuple[int, int, int, int]]): ``(top, left, height, width)`` in input pixels.
        scale (float): Output size relative to the input.

    Returns:
        list[list[ndarray]]: Per box, ``[input crop, *output crops]`` as RGB of one size.
    """
    rows = []
    out_h, out_w = outputs[0].shape[:2]
    for top, left, height, width in boxes:
        y0, x0 = round(top * scale), round(left * scale)
        y1, x1 = min(round((top + height) * scale), out_h), min(round((left + width) * scale), out_w)
        enlarged = cv2.resize(lr[top:top + height, left:left + width], (x1 - x0, y1 - y0),
                              interpolation=cv2.INTER_NEAREST)
        rows.append([enlarged] + [out[y0:y1, x0:x1] for out in outputs])
    return rows


def fmt(value):
    """NIQE as text: two decimals, or ``n/a``."""
    return 'n/a' if math.isnan(value) else f'{value:.2f}'


def write_comparison(folder, done, labels, scale, crops=2, crop_size=192):
    """Writes ``index.html``, ``crops/`` and ``grid.png`` into ``folder`` (see the module docstring).

    Args:
        folder (str): Output folder, e.g. ``OUT/compare``.
        done (list[tuple[str, str, dict[str, str]]]): ``(input, relative path, {label: output file})`` per photo,
            as :class:`~undersr.upscale.runner.UpscaleResult` lists them.
        labels (list[str]): Methods in column order (e.g. ``['bicubic', 'pre-trained', 'fine-tuned']``).
        scale (float): Output size relative to the input.
        crops (int): Crops per photo.
        crop_size (int): Crop side in output pixels.

    Returns:
        str: Path of ``index.html``.
    """
    os.makedirs(osp.join(folder, 'crops'), exist_ok=True)
    columns, window, border = [INPUT, *labels], max(1, round(crop_size / scale)), max(0, round(scale))
    photos, grid_rows = [], []
    for i, (path, rel, targets) in enumerate(done):
        lr = read_rgb(path)
        outputs = [read_rgb(targets[label]) for label in labels]
        niqe = [niqe_score(out, border) for out in outputs]
        srcs = []
        for k, row in enumerate(photo_crops(lr, outputs, choose_crops(lr, window, crops), scale)):
            srcs.append([f'crops/p{i:03d}_c{k}_{j}.png' for j in range(len(row))])
            for src, crop in zip(srcs[-1], row):
                save_image(osp.join(folder, src), crop[..., ::-1])
            grid_rows.append([crop[..., ::-1] for crop in row])
        links = {label: quote(osp.relpath(targets[label], folder).replace(os.sep, '/')) for label in labels}
        photos.append(dict(rel=rel, input=lr.shape, output=outputs[0].shape, niqe=niqe, srcs=srcs, links=links))
    if grid_rows:
        save_image(osp.join(folder, 'grid.png'), image_grid(grid_rows, cell=crop_size, labels=columns))
    page = osp.join(folder, 'index.html')
    with atomic_path(page) as tmp, open(tmp, 'w', encoding='utf-8') as f:
        f.write(render_page(photos, columns, scale, crop_size, bool(grid_rows)))
    return page


def select(cls, names, selected=0):
    """A ``<select class="cls">`` whose option values are the indices of ``names``."""
    options = ''.join(f'<option value="{j}"{" selected" if j == selected else ""}>{html.escape(name)}</option>'
                      for j, name in enumerate(names))
    return f'<select class="{cls}">{options}</select>'


def render_page(photos, columns, scale, crop_size, has_grid):
    """The HTML text of the comparison page (see :func:`write_comparison` for ``photos``)."""
    e = html.escape
    labels = columns[1:]
    means = [np.nanmean(col) if not np.all(np.isnan(col)) else float('nan')
             for col in (np.array([p['niqe'] for p in photos]).T if photos else [[] for _ in labels])]
    head = ''.join(f'<th>{e(label)}</th>' for label in labels)
    table = ''.join(f'<tr><td><a href="#p{i:03d}">{e(p["rel"])}</a></td>'
                    + ''.join(f'<td>{fmt(v)}</td>' for v in p['niqe']) + '</tr>' for i, p in enumerate(photos))
    table += '<tr class="mean"><td>mean</td>' + ''.join(f'<td>{fmt(v)}</td>' for v in means) + '</tr>'
    sections = []
    for i, p in enumerate(photos):
        figures = ''
        for k, srcs in enumerate(p['srcs']):
            cells = ''.join(
                f'<figure><img src="{src}" alt="{e(c)}, crop {k + 1}"><figcaption>{e(c)}'
                + (f'<br>NIQE {fmt(p["niqe"][j - 1])}' if j else '') + '</figcaption></figure>'
                for j, (src, c) in enumerate(zip(srcs, columns)))
            figures += f'<div class="crops" data-crop="{k}">{cells}</div>'
        links = ' · '.join(f'<a href="{href}">{e(label)}</a>' for label, href in p['links'].items())
        left, right = 1, len(columns) - 1  # bicubic against the last model
        slider = '' if not p['srcs'] else (
            f'<div class="slider" data-photo="{i}"><p>left {select("left", columns, left)} | right '
            f'{select("right", columns, right)} on {select("crop", [f"crop {k + 1}" for k in range(len(p["srcs"]))])} '
            '(drag on the image or move the bar)</p><div class="stage">'
            f'<img class="after" src="{p["srcs"][0][right]}" alt="right method">'
            f'<img class="before" src="{p["srcs"][0][left]}" alt="left method"><div class="handle"></div></div>'
            '<br><input class="pos" type="range" min="0" max="100" value="50"></div>')
        sections.append(
            f'<section class="photo" id="p{i:03d}"><h2>{e(p["rel"])}</h2><p class="meta">input '
            f'{p["input"][1]}×{p["input"][0]} → output {p["output"][1]}×{p["output"][0]}; full outputs: {links}</p>'
            f'{figures}{slider}</section>')
    data = json.dumps({'photos': [p['srcs'] for p in photos]}).replace('</', '<\\/')
    grid = ' All crops as one picture: <a href="grid.png">grid.png</a>.' if has_grid else ''
    return PAGE.format(
        scale=f'{scale:g}', n=len(photos), crop=crop_size, methods=e(', '.join(labels)), grid=grid, head=head,
        table=table, sections='\n'.join(sections) or '<p>No photo was upscaled.</p>', data=data, size=2 * crop_size)


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>undersr upscale: side by side</title>
<style>
body {{ font-family: sans-serif; margin: 1em 2em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 2px 8px; text-align: right; }}
td:first-child {{ text-align: left; }} tr.mean {{ font-weight: bold; }}
.crops {{ display: flex; flex-wrap: wrap; gap: 6px; margin: 6px 0; }}
figure {{ margin: 0; text-align: center; font-size: 0.85em; }}
figure img {{ width: {crop}px; image-rendering: pixelated; display: block; }}
.stage {{ position: relative; display: inline-block; cursor: ew-resize; user-select: none; }}
.stage img {{ display: block; width: {size}px; image-rendering: pixelated; }}
.stage .before {{ position: absolute; top: 0; left: 0; }}
.handle {{ position: absolute; top: 0; bottom: 0; width: 2px; background: #f33; pointer-events: none; }}
.pos {{ width: {size}px; }}
section.photo {{ border-top: 1px solid #ccc; margin-top: 1em; }}
</style></head>
<body>
<h1>Side by side: {methods}</h1>
<p>{n} photos, ×{scale}. The same crops ({crop} output pixels, where the input has the most detail) from every
method; the input enlarged with nearest neighbour. NIQE (lower is better) is BasicSR's, on the Y channel of each
whole output with a border of the scale cut off; n/a where an output has fewer than two 96×96 blocks.{grid}</p>
<table><tr><th>NIQE ↓</th>{head}</tr>{table}</table>
{sections}
<script type="application/json" id="crops">{data}</script>
<script>
const data = JSON.parse(document.getElementById('crops').textContent);
document.querySelectorAll('.slider').forEach(el => {{
  const crops = data.photos[Number(el.dataset.photo)];
  const [left, right, crop, pos] = ['left', 'right', 'crop', 'pos'].map(c => el.querySelector('.' + c));
  const stage = el.querySelector('.stage'), before = el.querySelector('.before');
  const after = el.querySelector('.after'), handle = el.querySelector('.handle');
  function update() {{
    before.src = crops[crop.value][left.value];
    after.src = crops[crop.value][right.value];
    before.style.clipPath = 'inset(0 ' + (100 - pos.value) + '% 0 0)';
    handle.style.left = pos.value + '%';
  }}
  [left, right, crop, pos].forEach(c => c.addEventListener('input', update));
  stage.addEventListener('pointermove', ev => {{
    if (!ev.buttons) return;
    const box = stage.getBoundingClientRect();
    pos.value = Math.round(100 * (ev.clientX - box.left) / box.width);
    update();
  }});
  update();
}});
</script>
</body></html>
"""
