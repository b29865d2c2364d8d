"""The steps of a plan, stage by stage: the command each runs, when it is complete, and the files it reads.

=========  =====================================================  ==============================================
stage      one step per                                           complete when
=========  =====================================================  ==============================================
recon      reconstruction network (``python train.py``)           every ``net_g_ep<N>.pth`` of the plan's epochs
generate   (network, epoch) used by a run (``undersr generate``)  ``OUT/manifest.json`` exists (written last)
finetune   run = (backbone, dataset or grid point)                ``experiments/<run>/models/net_g_latest.pth``
test       (run or official weights, test option)                 its test log has metrics for every test set
compare    the plan                                               ``table.md`` is newer than every test log
=========  =====================================================  ==============================================

Checkpoints count as complete only when their zip directory is readable (a file cut short by a kill is not).
Every path is relative to the plan's root (BasicSR's root: ``datasets/``, ``experiments/``, ``results/``), which
is the working directory while a plan runs. Option files are written to ``results/reproduce/<plan>/options/``.
"""
import os
import zipfile
from os import path as osp

from undersr.analysis.compare import find_test_log, parse_test_log
from undersr.reproduce.options import apply_overrides, read_option, write_option
from undersr.reproduce.table import BASELINE

STAGES = ('recon', 'generate', 'finetune', 'test', 'compare')


def plan_dir(plan):
    """Where a plan writes its option files and tables, relative to the root."""
    return osp.join('results', 'reproduce', plan.name)


def complete_checkpoint(path):
    """A torch checkpoint written to its end: the file exists and its zip directory reads."""
    return osp.isfile(path) and zipfile.is_zipfile(path)


def test_logs_with(result_dir, names):
    """The test log of ``result_dir`` if it has metrics of every test set in ``names``, else ``None``."""
    try:
        log = find_test_log(result_dir)
    except FileNotFoundError:
        return None
    return log if set(names) <= set(parse_test_log(log)) else None


class Step:
    """One command of a plan. Subclasses set :attr:`stage` and :attr:`kind` and implement the methods.

    Attributes:
        name (str): Unique within the plan (an experiment, result or dataset name).
        option (dict | None): The option file's content (train and test steps), written to :attr:`option_path`.
    """
    stage = kind = None
    distributed = False  # may run as several processes under torchrun

    def __init__(self, name, option=None, option_path=None, note=''):
        self.name, self.option, self.option_path, self.note = name, option, option_path, note

    def args(self):
        """Arguments of the command after the program (``train.py``, ``undersr generate`` ...)."""
        raise NotImplementedError

    def command(self, processes=1, launcher=False, port=29500):
        """The command line, as printed by ``--dry-run`` and run in a subprocess (relative to the root)."""
        raise NotImplementedError

    def commands(self, processes=1, launcher=False, port=29500):
        """Every command line of the step (one, except for :class:`CompareStep`)."""
        return [self.command(processes, launcher, port)]

    def run_in_process(self):
        """Runs the step in this process, in the root (the working directory)."""
        raise NotImplementedError

    def is_complete(self):
        raise NotImplementedError

    def outputs(self):
        """Files this step makes that later steps read."""
        return []


class TrainStep(Step):
    """``python train.py -opt OPTION --auto_resume`` (torchrun with ``--launcher pytorch`` for several processes)."""
    kind = 'train'
    program = 'train.py'

    def args(self):
        return ['-opt', self.option_path, '--auto_resume']

    def command(self, processes=1, launcher=False, port=29500):
        if processes > 1 or launcher:
            return ['torchrun', f'--nproc_per_node={processes}', f'--master_port={port}', self.program,
                    '-opt', self.option_path, '--launcher', 'pytorch', '--auto_resume']
        return ['python', self.program, *self.args()]

    def run_in_process(self):
        from undersr.basicsr_fixes import run_pipeline

        from basicsr.train import train_pipeline
        run_pipeline(train_pipeline, os.getcwd(), self.args())


class ReconStep(TrainStep):
    """Trains a reconstruction network, keeping the plan's epoch checkpoints (paper §3.2)."""
    stage = 'recon'
    distributed = True

    def __init__(self, name, option, option_path, epochs, note=''):
        super().__init__(name, option, option_path, note)
        self.checkpoints = {e: osp.join('experiments', name, 'models', f'net_g_ep{e}.pth') for e in epochs}

    def is_complete(self):
        return all(complete_checkpoint(p) for p in self.checkpoints.values())

    def outputs(self):
        return list(self.checkpoints.values())


class FinetuneStep(TrainStep):
    """Trains (fine-tunes) one run of the plan."""
    stage = 'finetune'
    distributed = True

    def __init__(self, run, option, option_path, note=''):
        super().__init__(run.name, option, option_path, note)
        self.run = run
        self.checkpoint = osp.join('experiments', run.name, 'models', 'net_g_latest.pth')

    def is_complete(self):
        return complete_checkpoint(self.checkpoint)

    def outputs(self):
        return [self.checkpoint]


class GenerateStep(Step):
    """``undersr generate`` of one (network, epoch) dataset (``torchrun -m undersr.generate`` for several)."""
    stage = 'generate'
    kind = 'generate'
    distributed = True

    def __init__(self, name, args, out):
        super().__init__(name)
        self._args, self.out = list(args), out

    def args(self):
        return list(self._args)

    def command(self, processes=1, launcher=False, port=29500):
        if processes > 1 or launcher:
            return ['torchrun', f'--nproc_per_node={processes}', f'--master_port={port}', '-m', 'undersr.generate',
                    *self._args]
        return ['undersr', 'generate', *self._args]

    def run_in_process(self):
        from undersr.generate import main
        main(self.args())

    def is_complete(self):
        return osp.isfile(osp.join(self.out, 'manifest.json'))

    def outputs(self):
        return [self.out]


class TestStep(Step):
    """``python test.py -opt OPTION``: one model on one test option."""
    stage = 'test'
    kind = 'test'

    def __init__(self, name, option, option_path, result, note=''):
        super().__init__(name, option, option_path, note)
        self.result = result  # what the table needs to know: ``attrs``, ``label``, ``test``
        self.result_dir = osp.join('results', name)
        self.test_sets = [d['name'] for d in option['datasets'].values()]

    def args(self):
        return ['-opt', self.option_path]

    def command(self, processes=1, launcher=False, port=29500):
        return ['python', 'test.py', *self.args()]

    def run_in_process(self):
        from undersr.basicsr_fixes import run_pipeline

        from basicsr.test import test_pipeline
        run_pipeline(test_pipeline, os.getcwd(), self.args())

    def log(self):
        """Its complete test log, or ``None``."""
        return test_logs_with(self.result_dir, self.test_sets)

    def is_complete(self):
        return self.log() is not None

    def outputs(self):
        return [self.result_dir]


class CompareStep(Step):
    """``undersr compare`` per (backbone, test option), then the paper's table (:mod:`undersr.reproduce.table`).

    Attributes:
        groups (list[tuple[str, list[TestStep]]]): One per compare table: its name and its test steps (the
            baseline first when there is one).
    """
    stage = 'compare'
    kind = 'compare'

    def __init__(self, plan, tests, out):
        super().__init__(plan.name)
        self.plan, self.tests, self.out = plan, tests, out
        groups = {}
        for step in tests:
            groups.setdefault(f'{step.result["test"]}__{step.result["attrs"]["backbone"]}', []).append(step)
        self.groups = sorted(groups.items())

    def compare_args(self, name, steps):
        """Arguments of ``undersr compare`` for one group."""
        args = [s.result_dir for s in steps] + ['--labels'] + [s.result['label'] for s in steps]
        if any(s.result['attrs'].get('baseline') for s in steps):
            args += ['--baseline', steps[0].result['label']]
        return args + ['--out', osp.join(self.out, 'compare', name)]

    def args(self):
        return [a for name, steps in self.groups for a in self.compare_args(name, steps)]

    def command(self, processes=1, launcher=False, port=29500):
        return self.commands()[0]

    def commands(self, processes=1, launcher=False, port=29500):
        return [['undersr', 'compare', *self.compare_args(name, steps)] for name, steps in self.groups]

    def run_in_process(self):
        """``undersr compare`` per group, then the paper's table from the same logs."""
        from undersr.cli.compare import main as compare
        from undersr.reproduce.table import paper_table, write_table
        for name, steps in self.groups:
            compare(self.compare_args(name, steps))
        results = [{**s.result, 'metrics': parse_test_log(s.log())} for s in self.tests]
        spec = self.plan.table
        table = paper_table(results, spec['rows'], spec['columns'], spec['metrics'], spec.get('test_set'))
        for path in write_table(table, self.plan.title, self.out):
            print(f'undersr reproduce: wrote {path}')

    def is_complete(self):
        table = osp.join(self.out, 'table.md')
        if not osp.isfile(table):
            return False
        logs = [s.log() for s in self.tests]
        return all(logs) and all(os.path.getmtime(log) <= os.path.getmtime(table) for log in logs)


def build_steps(plan, root='.', tiny=None, device='auto'):
    """All steps of a plan, in stage order, with their option files' content (not yet written).

    Args:
        plan (Plan): From :func:`undersr.reproduce.plan.load_plan`.
        root (str): The root that option files named in the plan are looked up under (before the repository).
        tiny (undersr.reproduce.tiny.TinyProfile | None): Shrinks every option for ``--tiny``.
        device (str): ``--device`` of ``undersr generate``.

    Returns:
        list[Step]
    """
    out = plan_dir(plan)
    options = osp.join(out, 'options')
    note = f'Written by `undersr reproduce {plan.name}` from the plan {plan.path}; edit the plan, not this file.'
    steps = []
    checkpoints = {}
    for label, recon in plan.recon.items():
        opt = apply_overrides(read_option(recon.option, root), recon.overrides)
        opt = apply_overrides(opt, {'train.total_epochs': max(plan.epochs),
                                    'train.save_checkpoint_epochs': sorted(plan.epochs)})
        if tiny:
            opt = tiny.shrink(opt, 'recon')
        step = ReconStep(opt['name'], opt, osp.join(options, f'{opt["name"]}.yml'), plan.epochs,
                         f'{note}\nTemplate: {recon.option}')
        checkpoints[label] = step.checkpoints
        steps.append(step)
    generated = {}
    for run in plan.runs:
        if run.dataset and run.dataset not in generated:
            label, epoch = run.dataset
            generated[run.dataset] = _generate_step(plan, label, epoch, checkpoints[label][epoch], tiny, device)
    steps += generated.values()
    finetunes = []
    for run in plan.runs:
        backbone = plan.backbones[run.backbone]
        opt = apply_overrides(read_option(backbone.template, root), backbone.overrides)
        opt['name'] = run.name
        if run.dataset:
            opt = apply_overrides(opt, _paired_data(generated[run.dataset]))
        opt = apply_overrides(opt, run.overrides)
        if tiny:
            opt = tiny.shrink(opt, 'finetune')
        finetunes.append(FinetuneStep(run, opt, osp.join(options, f'{run.name}.yml'),
                                      f'{note}\nTemplate: {backbone.template}'))
    steps += finetunes
    tests = []
    for label, backbone in plan.backbones.items():
        trained = [s for s in finetunes if s.run.backbone == label]
        if not trained:
            continue
        models = [(None, backbone.official)] if backbone.official else []
        models += [(s.run, s.checkpoint) for s in trained]
        for test in backbone.tests:
            for run, weights in models:
                tests.append(_test_step(test, root, trained[0].option, run, weights, label, options, note, tiny))
    steps += tests
    steps.append(CompareStep(plan, tests, out))
    return steps


def _generate_step(plan, label, epoch, checkpoint, tiny, device):
    out = plan.generate['out'].format(recon=label, epoch=epoch, dataset=f'{label}_ep{epoch}')
    extra = dict(plan.generate.get('args') or {})
    if tiny:
        extra = tiny.generate_args(extra)
    args = ['--hr', plan.generate['hr'], '--recon', checkpoint, '--out', out]
    for key, value in extra.items():
        args += [f'--{key}', str(value)]
    if 'device' not in extra:
        args += ['--device', device]
    return GenerateStep(osp.basename(out), args, out)


def _paired_data(generate):
    """Overrides that point a fine-tune template's training set at a generated dataset (LMDB or folders)."""
    lmdb = '--format' not in generate.args() or generate.args()[generate.args().index('--format') + 1] == 'lmdb'
    gt, lq = ('gt.lmdb', 'lq.lmdb') if lmdb else ('gt', 'lq')
    return {'datasets.train.name': osp.basename(generate.out),
            'datasets.train.dataroot_gt': osp.join(generate.out, gt),
            'datasets.train.dataroot_lq': osp.join(generate.out, lq),
            'datasets.train.io_backend': {'type': 'lmdb' if lmdb else 'disk'}}


def _test_step(test, root, trained_opt, run, weights, backbone, options, note, tiny):
    """A test of ``weights`` (a run's or the official ones) with the network of the fine-tune options."""
    opt = read_option(test, root)
    base = opt['name']
    opt['name'] = f'{base}__{run.name if run else "official"}'
    opt['network_g'] = dict(trained_opt['network_g'])  # the network that was trained (tiny or not)
    opt['path'] = {**(opt.get('path') or {}), 'pretrain_network_g': weights}
    if tiny:
        opt = tiny.shrink(opt, 'test')
    attrs = dict(run.attrs) if run else {'backbone': backbone, 'baseline': True}
    result = {'attrs': attrs, 'label': run.label if run else BASELINE, 'test': base}
    return TestStep(opt['name'], opt, osp.join(options, f'{opt["name"]}.yml'), result, f'{note}\nTemplate: {test}')


def write_options(steps):
    """Writes the option file of every train and test step (unchanged files are left alone)."""
    for step in steps:
        if step.option is not None:
            write_option(step.option, step.option_path, step.note)
