"""The paper's table layout: one cell per (row, column) holding ``PSNR / SSIM / LPIPS``, plus a plot.

Tables 1–2 of arXiv 2503.02767 put one setting per cell: Table 1 has the networks as rows and the epochs as
columns, Table 2 the epochs as rows and the backbones as columns, each cell "PSNR / SSIM / LPIPS" on NTIRE 2018
Track 3, and the model without fine-tuning beside them. :func:`paper_table` arranges test results that way;
``undersr compare`` (one row per model, differences from the baseline) is written next to it.
"""
import csv
import math
import os
from os import path as osp

from undersr.analysis.compare import metric_info
from undersr.fileio import atomic_path
from undersr.visualize import new_figure

BASELINE = 'w/o fine-tune'


def _cell(metrics, names):
    values = [metrics.get(n, math.nan) for n in names]
    if all(math.isnan(v) for v in values):
        return '–'
    return ' / '.join('–' if math.isnan(v) else f'{v:.{metric_info(n)[2]}f}' for v, n in zip(values, names))


def _order(values):
    """Distinct values in the order they first appear (the plan's order: VQVAE, VQVAE2, MAE; 4, 8, ... 64)."""
    return list(dict.fromkeys(values))


def paper_table(results, rows, columns, metrics, test_set=None):
    """Arranges test results in the paper's layout.

    Args:
        results (list[dict]): One per tested model: ``attrs`` (``backbone``, ``recon``, ``epoch``, ...; a
            baseline has ``baseline: True`` and only ``backbone``) and ``metrics`` (test set → metric → value,
            as :func:`undersr.analysis.compare.parse_test_log` returns).
        rows (str): The attribute whose values are the rows (e.g. ``'recon'``).
        columns (str): The attribute whose values are the columns (e.g. ``'epoch'``), or ``'test_set'``.
        metrics (list[str]): Metric names shown in each cell, e.g. ``['psnr', 'ssim', 'lpips']``.
        test_set (str | None): The test set shown when the columns are not test sets; default the first one.

    Returns:
        dict: ``header`` (list[str]), ``body`` (list[list[str]], the first cell the row label), ``points``
        (list of (row, column, metric → value) for plots and CSV), ``baselines`` (list of (label, cells)),
        ``baseline_values`` (metric → [(label, value)], for plots), and the arguments.
    """
    runs = [r for r in results if not r['attrs'].get('baseline')]
    sets = list(dict.fromkeys(s for r in results for s in r['metrics']))
    test_set = test_set or (sets[0] if sets else None)

    def value(result, column):
        if columns == 'test_set':
            return result['metrics'].get(column, {})
        return result['metrics'].get(test_set, {})

    row_values = _order(r['attrs'].get(rows) for r in runs)
    col_values = sets if columns == 'test_set' else _order(r['attrs'].get(columns) for r in runs)
    header = [rows] + [str(c) for c in col_values]
    body, points = [], []
    for row in row_values:
        cells = [str(row)]
        for column in col_values:
            match = [r for r in runs if r['attrs'].get(rows) == row and
                     (columns == 'test_set' or r['attrs'].get(columns) == column)]
            metrics_here = value(match[0], column) if match else {}
            cells.append(_cell(metrics_here, metrics))
            if match:
                points.append((row, column, metrics_here))
        body.append(cells)
    baselines, baseline_values = [], {}
    for base in (r for r in results if r['attrs'].get('baseline')):
        backbone = base['attrs']['backbone']
        for metric in metrics:
            value_here = base['metrics'].get(test_set, {}).get(metric, math.nan)
            if columns != 'test_set' and not math.isnan(value_here):
                baseline_values.setdefault(metric, []).append((f'{backbone} {BASELINE}', value_here))
        if columns == 'backbone':
            cells = [_cell(base['metrics'].get(test_set, {}), metrics) if c == backbone else '' for c in col_values]
        elif columns == 'test_set':
            cells = [_cell(base['metrics'].get(c, {}), metrics) for c in col_values]
        else:  # the same model for every column: one cell
            cells = [_cell(base['metrics'].get(test_set, {}), metrics)]
        baselines.append((f'{backbone} {BASELINE}', cells))
    if columns == 'backbone' and baselines:  # one row, one cell per backbone, as in Table 2
        merged = [next((c[i] for _, c in baselines if c[i]), '') for i in range(len(col_values))]
        baselines = [(BASELINE, merged)]
    return {'header': header, 'body': body, 'points': points, 'baselines': baselines, 'test_set': test_set,
            'metrics': metrics, 'rows': rows, 'columns': columns, 'baseline_values': baseline_values}


def to_markdown(table, title):
    """The table as Markdown, with the baselines and what the cells hold."""
    names = ' / '.join(f'{metric_info(m)[0]}{"↑" if metric_info(m)[1] == "higher" else "↓"}'
                       for m in table['metrics'])
    lines = [f'# {title}', '', f'Each cell: {names}' + (f' on {table["test_set"]}.' if table['columns'] !=
                                                         'test_set' else '.'), '',
             '| ' + ' | '.join(table['header']) + ' |', '|' + '---|' * len(table['header'])]
    lines += ['| ' + ' | '.join(cells) + ' |' for cells in table['body']]
    for label, cells in table['baselines']:
        if len(cells) == len(table['header']) - 1:
            lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
        else:
            lines += ['', f'{label}: {cells[0]}']
    return '\n'.join(lines) + '\n'


def write_table(table, title, out_dir):
    """Writes ``table.md``, ``table.csv`` (one line per cell and metric) and ``table.png`` into ``out_dir``.

    Returns:
        list[str]: The paths written.
    """
    os.makedirs(out_dir, exist_ok=True)
    md, csv_path, png = (osp.join(out_dir, f'table.{ext}') for ext in ('md', 'csv', 'png'))
    with atomic_path(md) as tmp, open(tmp, 'w', encoding='utf-8') as f:
        f.write(to_markdown(table, title))
    with atomic_path(csv_path) as tmp, open(tmp, 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow([table['rows'], table['columns'], 'test_set', 'metric', 'value'])
        for row, column, values in table['points']:
            test_set = column if table['columns'] == 'test_set' else table['test_set']
            writer.writerows([row, column, test_set, m, repr(v)] for m, v in values.items())
    plot_table(table, title, png)
    return [md, csv_path, png]


def plot_table(table, title, path):
    """One panel per metric: the metric against the numeric axis (epoch, ΔE, ...), one line per other value."""
    rows_numeric = all(isinstance(r, (int, float)) for r, _, _ in table['points'])
    fig = new_figure(4.0 * len(table['metrics']), 3.4)
    axes = fig.subplots(1, len(table['metrics']), squeeze=False)[0]
    for ax, metric in zip(axes, table['metrics']):
        lines = {}
        for row, column, values in table['points']:
            x, line = (row, column) if rows_numeric and not isinstance(column, (int, float)) else (column, row)
            lines.setdefault(line, []).append((x, values.get(metric, math.nan)))
        for line, xy in lines.items():
            ax.plot([str(x) for x, _ in xy], [y for _, y in xy], marker='o', label=str(line))
        for label, value in table['baseline_values'].get(metric, []):
            ax.axhline(value, linestyle='--', color='grey', linewidth=1, label=label)
        if all(math.isnan(y) for xy in lines.values() for _, y in xy):
            ax.text(0.5, 0.5, 'no values', transform=ax.transAxes, ha='center')
        display, direction, _ = metric_info(metric)
        ax.set_title(f'{display} ({"higher" if direction == "higher" else "lower"} is better)')
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format='png')
