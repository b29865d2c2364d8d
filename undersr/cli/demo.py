"""``undersr demo [--quick] [--out DIR]``: the paper's experiment in miniature (see :mod:`undersr.demo`)."""
import argparse

from undersr import demo


def main(argv=None):
    parser = argparse.ArgumentParser(prog='undersr demo', description=demo.__doc__.splitlines()[0])
    parser.add_argument('--out', default='demo_out', help='output folder (default: %(default)s)')
    parser.add_argument('--device', choices=('auto', 'cpu', 'cuda'), default='auto')
    parser.add_argument('--quick', action='store_true', help='the same steps, tiny: under a minute')
    args = parser.parse_args(argv)
    demo.run(args.out, args.device, args.quick)

