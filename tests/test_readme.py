"""The README's demo table is the one in docs/demo-report.md, which a full `undersr demo` wrote."""
import os
import re

from undersr.demo.report import TABLE_END, TABLE_START

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def demo_table(path):
    with open(os.path.join(ROOT, path)) as f:
        text = f.read()
    found = re.findall(re.escape(TABLE_START) + r'\n(.*?)\n' + re.escape(TABLE_END), text, re.S)
    assert len(found) == 1, f'{path}: expected one table between {TABLE_START} and {TABLE_END}'
    return found[0]


def test_readme_quotes_the_committed_demo_report():
    table = demo_table('docs/demo-report.md')
    assert table.count('\n') >= 5  # header, rule and four methods
    assert demo_table('README.md') == table


def test_committed_report_says_how_it_was_made():
    with open(os.path.join(ROOT, 'docs', 'demo-report.md')) as f:
        text = f.read()
    assert re.search(r'^- Command: `undersr demo`', text, re.M)
    assert re.search(r'^- Commit: `[0-9a-f]{7,}', text, re.M)
    assert re.search(r'^- Wall time: \d+\.\d min', text, re.M)
