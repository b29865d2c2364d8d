"""``undersr demo [--quick] [--ablation] [--out DIR]``: the experiment in miniature (see :mod:`undersr.demo`)."""
import argparse

from undersr import demo


def main(argv=None):
    parser = argparse.ArgumentParser(prog='undersr demo', description=demo.__doc__.splitlines()[0])
    parser.add_argument('--out', default='demo_out', help='output folder (default: %(default)s)')
    parser.add_argument('--device', choices=('auto', 'cpu', 'cuda'), default='auto')
    parser.add_argument('--quick', action='store_true', help='every step, tiny: under a minute, numbers meaningless')
    parser.add_argument('--workers', type=int, default=None,
                        help='BasicSR runs at a time (default: 2 on a CPU with 2+ cores, 1 with --quick or a GPU)')
    parser.add_argument('--ablation', action='store_true',
                        help='also fine-tune on each reconstruction epoch alone and with the other colour option, '
                             'and report which helps (about 3x the fine-tuning time)')
    args = parser.parse_args(argv)
    demo.run(args.out, args.device, args.quick, args.workers, args.ablation)
