"""Progress output in logs: a line every few percent, no carriage returns."""
import io

from undersr.progress import LineProgress, progress


def test_line_progress_prints_a_line_every_ten_percent_and_at_the_end():
    out = io.StringIO()
    for _ in LineProgress(range(50), desc='generate', unit='img', file=out):
        pass
    lines = out.getvalue().splitlines()
    assert '\r' not in out.getvalue()
    assert [line.split(' (')[0] for line in lines] == [f'generate: {p}%' for p in range(10, 101, 10)]
    assert lines[-1].startswith('generate: 100% (50/50 img)')


def test_line_progress_without_total_and_with_update():
    out = io.StringIO()
    bar = LineProgress(desc='steps', file=out)
    bar.update(250)
    bar.set_postfix(loss='0.1')
    bar.close()
    bar.close()  # idempotent
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[-1].startswith('steps: 250 it') and lines[-1].endswith('[loss=0.1]')


def test_progress_is_line_based_when_stderr_is_not_a_terminal(capsys):
    bar = progress(range(3), desc='x')  # pytest captures stderr: not a terminal
    assert isinstance(bar, LineProgress)
    assert list(bar) == [0, 1, 2]
    assert progress(range(3), disable=True).disable
