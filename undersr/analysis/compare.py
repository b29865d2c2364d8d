"""``undersr compare``: one table of several test runs, like the paper's Tables 1–2.

Inputs are BasicSR test result folders (``results/<name>/``, written by ``python test.py -opt ...``): the metric
averages are read from the newest test log ``test_<name>_<time>.log`` in each, from BasicSR's lines

.. code-block:: text

    2025-01-01 10:00:02,000 INFO: Validation RealSR_Canon
         # psnr: 27.1234    Best: 27.1234 @ test_hat_realsr iter
         # ssim: 0.8012     ...

(the metric lines start with a tab in the file).
A log file may be given instead of its folder. Alternatively (or in addition) ``--checkpoints`` with
``--benchmark OPTION.yml`` runs BasicSR's test pipeline once per checkpoint (a copy of the option file with
``name`` and ``path.pretrain_network_g`` replaced, written to ``OUT/options/``; results land in
``<cwd>/results/<name>/`` as with ``python test.py``) and then reads those results.

Outputs in ``--out``:
    * ``compare.md``: one row per model, one column per (test set, metric) with its direction (PSNR↑, SSIM↑,
      LPIPS↓, NIQE↓); the best value of each column in bold; with ``--baseline NAME`` (e.g. the official model,
      "w/o fine-tune") every other row shows its difference from the baseline in parentheses, as in Tables 1–2 of
      arXiv 2503.02767. Rows are ranked by ``--sort-by`` (default: the first column), best first.
    * ``compare.csv``: the same numbers unrounded, with ``<column> diff`` columns (difference from the baseline)
      and a ``best`` column naming the columns in which the row is best.

Example:
    .. code-block:: bash

        undersr compare results/test_hat_realsr_official results/test_hat_realsr \\
            --labels "w/o fine-tune" "VQ-VAE-2 ep8" --baseline "w/o fine-tune" --out results/compare_hat_realsr
        undersr compare --benchmark options/test/test_edsr_realsr.yml \\
            --checkpoints experiments/pretrained_models/EDSR_Lx4_f256b32_DIV2K_official-76ee1c8f.pth \\
                          experiments/finetune_EDSR_Lx4_VQVAE2_ep8/models/net_g_latest.pth \\
            --labels "w/o fine-tune" "VQ-VAE-2 ep8" --baseline "w/o fine-tune" --out results/compare_edsr_realsr
"""
import csv
import glob
import math
import os
import re
from dataclasses import dataclass
from os import path as osp

__all__ = ['parse_test_log', 'find_test_log', 'build_table', 'write_outputs', 'run_benchmark']

# metric name → (display name, direction, decimals in Markdown)
METRICS = {
    'psnr': ('PSNR', 'higher', 2), 'ssim': ('SSIM', 'higher', 4), 'lpips': ('LPIPS', 'lower', 4),
    'niqe': ('NIQE', 'lower', 3), 'dists': ('DISTS', 'lower', 4), 'fid': ('FID', 'lower', 2),
    'brisque': ('BRISQUE', 'lower', 2), 'pi': ('PI', 'lower', 3), 'musiq': ('MUSIQ', 'higher', 2),
    'maniqa': ('MANIQA', 'higher', 4), 'clipiqa': ('CLIPIQA', 'higher', 4),
}
_LOG_RECORD = re.compile(r'^\d{4}-\d\d-\d\d[ T]')
_VALIDATION = re.compile(r'Validation\s+(\S+)')
_METRIC_LINE = re.compile(r'#\s*([A-Za-z0-9_.\-]+)\s*:\s*([-+]?(?:nan|inf|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?))',
                          re.IGNORECASE)



def metric_info(name, lower_better=()):
    """(display name, ``'higher'``/``'lower'``, decimals) of a metric; unknown ones count as higher-better."""
    key = name.lower()
    if key in METRICS:
        info = METRICS[key]
    else:
        base = next((m for m in METRICS if key.startswith(m)), None)
        info = (name.upper(), METRICS[base][1], METRICS[base][2]) if base else (name, 'higher', 4)
    if key in {m.lower() for m in lower_better}:
        info = (info[0], 'lower', info[2])
    return info


def parse_test_log(path):
    """Metric averages per test set from a BasicSR test (or training) log.

    Args:
        path (str): The log file.

    Returns:
        dict[str, dict[str, float]]: test set → metric → value, in the order of the log (a test set logged twice
        keeps its last values).
    """
    results, current = {}, None
    with open(path, encoding='utf-8', errors='replace') as f:
        for line in f:
            match = _VALIDATION.search(line)
            if match and _LOG_RECORD.match(line):
                current = match[1]
                results[current] = {}
                continue
            if _LOG_RECORD.match(line):
                current = None
                continue
            match = _METRIC_LINE.search(line)
            if match and current is not None:
                results[current][match[1]] = float(match[2])
    return {name: metrics for name, metrics in results.items() if metrics}


def find_test_log(result):
    """The newest ``test_*.log`` of a result folder (or ``result`` itself if it is a file).

    Raises:
        FileNotFoundError: no log.
    """
    if osp.isfile(result):
        return result
    logs = glob.glob(osp.join(result, 'test_*.log'))
    if not logs:
        raise FileNotFoundError(f'no test log (test_*.log) in {result}; run `python test.py -opt ...` first')
    return max(logs, key=lambda p: (osp.basename(p), osp.getmtime(p)))


@dataclass
class Table:
    """A comparison table.

    Attributes:
        columns (list[dict]): ``dataset``, ``metric``, ``title`` (e.g. ``PSNR↑``), ``direction``, ``digits``.
        rows (list[dict]): ``label``, ``values`` (floats, ``nan`` when missing), ``diffs`` (from the baseline,
            ``nan`` when none), ``best`` (column indices where this row is best), ``rank`` (1 = first).
        baseline (str | None): Label of the baseline row.
    """
    columns: list
    rows: list
    baseline: str = None


def _is_nan(x):
    return x is None or (isinstance(x, float) and math.isnan(x))


def build_table(runs, baseline=None, sort_by=None, lower_better=()):
    """Arranges runs into a :class:`Table` (best per column, differences from the baseline, ranking).

    Args:
        runs (list[tuple[str, dict]]): (label, test set → metric → value), e.g. from :func:`parse_test_log`.
        baseline (str | None): Label of the baseline run.
        sort_by (str | None): Metric name (first column with it) or column title to rank by; default the first
            column. Rows without a value go last; the order of ``runs`` breaks ties.
        lower_better (Sequence[str]): Extra metric names where lower is better.

    Returns:
        Table

    Raises:
        ValueError: unknown baseline or sort column, duplicate labels, or no metrics at all.
    """
    labels = [label for label, _ in runs]
    if len(set(labels)) != len(labels):
        raise ValueError(f'labels must be unique, got {labels}')
    if baseline is not None and baseline not in labels:
        raise ValueError(f'baseline {baseline!r} is not one of the models {labels}')
    datasets = []
    for _, res in runs:
        for ds, metrics in res.items():
            if ds not in datasets:
                datasets.append(ds)
    columns = []
    for ds in datasets:
        names = []
        for _, res in runs:
            names += [m for m in res.get(ds, {}) if m not in names]
        for m in names:
            display, direction, digits = metric_info(m, lower_better)
            arrow = '↑' if direction == 'higher' else '↓'
            title = f'{display}{arrow}' if len(datasets) == 1 else f'{ds} {display}{arrow}'
            columns.append({'dataset': ds, 'metric': m, 'title': title, 'direction': direction, 'digits': digits})
    if not columns:
        raise ValueError('no metric values found in the given results')
    rows = [{'label': label, 'values': [float(res.get(c['dataset'], {}).get(c['metric'], float('nan')))
                                         for c in columns]} for label, res in runs]
    base = next((r for r in rows if r['label'] == baseline), None)
    for row in rows:
        row['diffs'] = [float('nan') if base is None or row is base else v - b
                        for v, b in zip(row['values'], base['values'] if base else row['values'])]
        row['best'] = []
    for j, col in enumerate(columns):
        values = [r['values'][j] for r in rows if not _is_nan(r['values'][j])]
        if not values:
            continue
        best = max(values) if col['direction'] == 'higher' else min(values)
        for r in rows:
            if r['values'][j] == best:
                r['best'].append(j)
    key_col = 0
    if sort_by is not None:
        matches = [j for j, c in enumerate(columns) if sort_by in (c['title'], c['metric']) or
                   sort_by.lower() == c['metric'].lower()]
        if not matches:
            raise ValueError(f'--sort-by {sort_by!r} matches no column ({", ".join(c["title"] for c in columns)})')
        key_col = matches[0]
    sign = -1 if columns[key_col]['direction'] == 'higher' else 1

    def rank_key(item):
        i, row = item
        v = row['values'][key_col]
        return (_is_nan(v), 0 if _is_nan(v) else sign * v, i)

    rows = [row for _, row in sorted(enumerate(rows), key=rank_key)]
    for rank, row in enumerate(rows, 1):
        row['rank'] = rank
    return Table(columns, rows, baseline)


def _format(value, digits):
    return '–' if _is_nan(value) else f'{value:.{digits}f}'


def to_markdown(table):
    """The table as Markdown (best in bold, baseline differences in parentheses)."""
    head = ['rank', 'model'] + [c['title'] for c in table.columns]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for row in table.rows:
        cells = [str(row['rank']), row['label'] + (' (baseline)' if row['label'] == table.baseline else '')]
        for j, col in enumerate(table.columns):
            text = _format(row['values'][j], col['digits'])
            if j in row['best']:
                text = f'**{text}**'
            diff = row['diffs'][j]
            if not _is_nan(diff):
                text += f' ({diff:+.{col["digits"]}f})'
            cells.append(text)
        lines.append('| ' + ' | '.join(cells) + ' |')
    notes = ['', 'Best value of each column in **bold**; ↑ higher is better, ↓ lower is better.']
    if table.baseline:
        notes.append(f'In parentheses: difference from the baseline "{table.baseline}" (as in Tables 1–2 of '
                     'arXiv 2503.02767).')
    return '\n'.join(lines + notes) + '\n'


def write_outputs(table, out_dir, sources=None):
    """Writes ``compare.md`` and ``compare.csv`` to ``out_dir``.

    Args:
        table (Table): From :func:`build_table`.
        out_dir (str): Created if needed.
        sources (dict[str, str] | None): label → log file, listed in the Markdown.

    Returns:
        tuple[str, str]: Paths of the Markdown and CSV files.
    """
    os.makedirs(out_dir, exist_ok=True)
    md_path, csv_path = osp.join(out_dir, 'compare.md'), osp.join(out_dir, 'compare.csv')
    text = '# Comparison\n\n' + to_markdown(table)
    if sources:
        text += '\nSources:\n\n' + ''.join(f'- {label}: `{path}`\n' for label, path in sources.items())
    with open(md_path, 'w', encoding='utf-8') as f:
        f.write(text)
    with open(csv_path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        header = ['rank', 'model', 'baseline']
        for col in table.columns:
            header += [col['title'], f'{col["title"]} diff']
        writer.writerow(header + ['best'])
        for row in table.rows:
            cells = [row['rank'], row['label'], 'yes' if row['label'] == table.baseline else '']
            for value, diff in zip(row['values'], row['diffs']):
                cells += ['' if _is_nan(value) else repr(value), '' if _is_nan(diff) else repr(diff)]
            writer.writerow(cells + [';'.join(table.columns[j]['title'] for j in row['best'])])
    return md_path, csv_path


def _slug(text):
    return re.sub(r'[^A-Za-z0-9_.-]+', '_', text).strip('_') or 'model'


def checkpoint_label(path):
    """A readable label for a checkpoint: the experiment name of ``experiments/<name>/models/x.pth``, else the stem."""
    parts = osp.normpath(path).split(os.sep)
    if len(parts) >= 3 and parts[-2] == 'models':
        return parts[-3]
    return osp.splitext(osp.basename(path))[0]


def run_benchmark(checkpoints, benchmark, labels, options_dir, root=None):
    """Runs BasicSR's test pipeline on ``benchmark`` once per checkpoint.

    Args:
        checkpoints (list[str]): Weights files.
        benchmark (str): A test option file (e.g. ``options/test/test_edsr_realsr.yml``).
        labels (list[str]): One per checkpoint; the run is named ``<benchmark name>__<label>``.
        options_dir (str): Where the per-checkpoint option files are written.
        root (str | None): BasicSR's root (``results/`` and relative dataset paths); default the current folder.

    Returns:
        list[str]: The result folders, one per checkpoint.

    Raises:
        FileNotFoundError: a checkpoint does not exist.
    """
    from undersr.basicsr_fixes import run_pipeline

    import yaml
    from basicsr.test import test_pipeline

    root = osp.abspath(root or os.getcwd())
    with open(benchmark) as f:
        base = yaml.safe_load(f)
    os.makedirs(options_dir, exist_ok=True)
    folders = []
    for ckpt, label in zip(checkpoints, labels):
        if not osp.isfile(ckpt):
            raise FileNotFoundError(f'checkpoint not found: {ckpt}')
        opt = dict(base)
        opt['name'] = f'{base["name"]}__{_slug(label)}'
        opt['path'] = {**(base.get('path') or {}), 'pretrain_network_g': osp.abspath(ckpt)}
        opt_file = osp.join(options_dir, f'{opt["name"]}.yml')
        with open(opt_file, 'w') as f:
            yaml.safe_dump(opt, f, sort_keys=False)
        print(f'undersr compare: testing {ckpt} on {benchmark} ({opt["name"]})', flush=True)
        run_pipeline(test_pipeline, root, ['-opt', osp.abspath(opt_file)])
        folders.append(osp.join(root, 'results', opt['name']))
    return folders
