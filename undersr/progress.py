"""Progress bars that read well both in a terminal and in a log file.

In a terminal, :func:`progress` is tqdm's bar. When standard error is not a terminal (CI, ``nohup``, a pipe into a
log), tqdm's carriage-return stream turns into one long unreadable line, so :class:`LineProgress` prints a plain line
every ``every_percent`` percent (and at the end) instead: ``generate: 40% (400/1000 img) 12.5 img/s, 48 s left``.
"""
import sys
import time


class LineProgress:
    """A tqdm-like counter that prints one line per ``every_percent`` percent of ``total``.

    Supports what the project uses of tqdm: iteration, ``update(n)``, ``close()``, ``set_postfix(**values)``,
    ``set_postfix_str`` and use as a context manager.

    Args:
        iterable (Iterable | None): Items to yield.
        total (int | None): Number of steps; default ``len(iterable)``. Without it, a line every 100 steps.
        desc (str): Label at the start of each line.
        unit (str): Name of a step.
        every_percent (float): Print a line each time progress crosses a multiple of this.
        file: Stream to print to (default ``sys.stderr``).
    """

    def __init__(self, iterable=None, total=None, desc='', unit='it', every_percent=10, file=None):
        self.iterable = iterable
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, '__len__') else None)
        self.desc, self.unit, self.every = desc, unit, float(every_percent)
        self.file = file or sys.stderr
        self.n, self.start, self.postfix = 0, time.monotonic(), ''
        self._printed = 0  # the last percent step (or hundred) printed

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def set_postfix_str(self, text):
        self.postfix = text

    def set_postfix(self, **values):
        self.postfix = ', '.join(f'{k}={v}' for k, v in values.items())

    def update(self, n=1):
        self.n += n
        if self.total:
            step = int(100 * self.n / self.total // self.every)
        else:
            step = self.n // 100
        if step > self._printed and (not self.total or self.n < self.total):
            self._printed = step
            self._print()

    def close(self):
        if self._printed != 'closed':
            self._print()
            self._printed = 'closed'

    def _print(self):
        elapsed = time.monotonic() - self.start
        rate = self.n / elapsed if elapsed > 0 else 0.0
        text = f'{self.desc}: ' if self.desc else ''
        if self.total:
            text += f'{100 * self.n / self.total:.0f}% ({self.n}/{self.total} {self.unit})'
            if rate and self.n < self.total:
                text += f' {rate:.3g} {self.unit}/s, {(self.total - self.n) / rate:.0f} s left'
            elif rate:
                text += f' {rate:.3g} {self.unit}/s, {elapsed:.0f} s'
        else:
            text += f'{self.n} {self.unit} {rate:.3g} {self.unit}/s'
        if self.postfix:
            text += f' [{self.postfix}]'
        print(text, file=self.file, flush=True)


def progress(iterable=None, total=None, desc='', unit='it', disable=False, **tqdm_kwargs):
    """tqdm in a terminal, :class:`LineProgress` elsewhere (see the module docstring), nothing if ``disable``.

    Args:
        iterable, total, desc, unit: As for tqdm.
        disable (bool): Show nothing (e.g. on ranks other than 0).
        **tqdm_kwargs: Further tqdm options (``leave``, ``dynamic_ncols``, ...), used only in a terminal.

    Returns:
        tqdm | LineProgress: Iterate over it, or call ``update``/``close``.
    """
    from tqdm import tqdm
    if disable or sys.stderr.isatty():
        return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, **tqdm_kwargs)
    return LineProgress(iterable, total=total, desc=desc, unit=unit)
