"""Running a plan's steps: skipping complete ones, checking inputs, in-process or as (torchrun) subprocesses.

* Stages run in order (recon, generate, finetune, test, compare); a step whose outputs are complete is skipped, so
  rerunning after a kill resumes (training steps run with ``--auto_resume``, ``undersr generate`` resumes itself).
* Before a stage runs, :func:`undersr.reproduce.inputs.check_inputs` lists what its steps read that is missing;
  a missing required input stops the plan with the path and how to get it.
* ``gpus`` GPUs are split into groups of ``gpus_per_run``: the groups work on different steps of a stage in
  parallel, each step a subprocess with ``CUDA_VISIBLE_DEVICES`` set to its group. Training and ``generate`` use
  every GPU of their group (``torchrun --nproc_per_node``, with ``--launcher pytorch`` for training; also for one
  GPU with ``launcher``), tests one.
  Without GPUs, or with one group of one GPU, steps run one after the other; then ``in_process`` runs BasicSR and
  ``undersr generate`` inside this process (:func:`undersr.basicsr_fixes.run_pipeline`), which saves the start-up
  of a Python process and of torch per step.
* ``shard=(i, n)`` keeps every n-th step of the recon, generate, finetune and test stages (from the i-th), to split
  a plan over n machines that share the file system. A step whose inputs another shard has not made yet waits (it
  is reported and skipped); rerunning the same command continues.
"""
import contextlib
import os
import queue
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from undersr.reproduce.inputs import check_inputs, waiting_for
from undersr.reproduce.steps import STAGES, write_options

SHARDED = ('recon', 'generate', 'finetune', 'test')


class ReproduceError(RuntimeError):
    """A plan cannot go on: missing inputs or a failed step (the message says which and how to fix it)."""


@contextlib.contextmanager
def working_directory(path):
    """Runs the block with ``path`` as the working directory."""
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def shell_line(argv, env=None):
    """A command as one line a person can paste into a shell."""
    prefix = ' '.join(f'{k}={v}' for k, v in (env or {}).items())
    return (prefix + ' ' if prefix else '') + ' '.join(shlex.quote(a) for a in argv)


def executable(argv):
    """The command with this interpreter: ``python`` → sys.executable, ``undersr`` and ``torchrun`` as modules."""
    head = {'python': [sys.executable], 'undersr': [sys.executable, '-m', 'undersr'],
            'torchrun': [sys.executable, '-m', 'torch.distributed.run']}
    return head.get(argv[0], argv[:1]) + argv[1:]


class Runner:
    """Runs (or prints) the steps of a plan in its root.

    Args:
        steps (list[Step]): From :func:`undersr.reproduce.steps.build_steps`.
        root (str): The plan's root (the working directory of every step).
        stages (Sequence[str]): The stages to run (default all).
        gpus (int): GPUs to use (0: CPU).
        gpus_per_run (int | None): GPUs of one fine-tune or generate (default all ``gpus``).
        launcher (bool): Use ``torchrun ... --launcher pytorch`` even for one process per step.
        shard (tuple[int, int]): ``(index, count)`` of this machine.
        in_process (bool): Run sequential steps inside this process.
        dry_run (bool): Print the commands only (the option files are written, so they can be read).
        port (int): torchrun's master port of the first GPU group (the next groups take the next ports).
        out (file): Where to print.
    """

    def __init__(self, steps, root='.', stages=STAGES, gpus=0, gpus_per_run=None, launcher=False, shard=(0, 1),
                 in_process=True, dry_run=False, port=29500, out=None):
        self.steps, self.root, self.stages = steps, root, tuple(stages)
        self.gpus, self.gpus_per_run = gpus, (gpus_per_run or gpus or 1)
        if gpus and gpus % self.gpus_per_run:
            raise ReproduceError(f'--gpus {gpus} is not a multiple of --gpus-per-run {self.gpus_per_run}')
        self.launcher, self.shard, self.in_process, self.dry_run = launcher, shard, in_process, dry_run
        self.port = port
        self.out = out or sys.stdout

    def say(self, text):
        print(text, file=self.out, flush=True)

    def groups(self):
        """The GPU groups: lists of device indices (one empty group on the CPU)."""
        if not self.gpus:
            return [[]]
        per = self.gpus_per_run
        return [list(range(i, i + per)) for i in range(0, self.gpus, per)]

    def mine(self, steps, stage):
        index, count = self.shard
        return steps if stage not in SHARDED or count == 1 else steps[index::count]

    def run(self):
        """Runs the chosen stages; returns ``{stage: (to run, complete)}`` counts of steps.

        Raises:
            ReproduceError: a required input is missing or a step failed.
        """
        summary = {}
        with working_directory(self.root):
            write_options(self.steps)
            for stage in self.stages:
                steps = self.mine([s for s in self.steps if s.stage == stage], stage)
                todo = [s for s in steps if not s.is_complete()]
                summary[stage] = (len(todo), len(steps) - len(todo))
                self.say(f'== {stage}: {len(steps)} steps, {len(steps) - len(todo)} complete (skipped), '
                         f'{len(todo)} to run')
                if not todo:
                    continue
                before = [s for s in self.steps if STAGES.index(s.stage) < STAGES.index(stage)]
                if not self.dry_run:  # steps whose inputs another shard has not made yet wait for a rerun
                    ready = []
                    for step in todo:
                        pending = waiting_for(step, before)
                        if pending:
                            self.say(f'   waiting: {step.name} needs {pending[0].name} (another shard?); rerun later')
                        else:
                            ready.append(step)
                    todo = ready
                missing = [f for f in check_inputs(todo, made=[p for s in before for p in s.outputs()])
                           if f.required and not f.present]
                if missing:
                    text = '\n'.join(f'  {f.path}  (read by {f.key})\n      -> {f.how}' for f in missing)
                    if not self.dry_run:
                        raise ReproduceError(f'stage {stage}: {len(missing)} input(s) missing:\n{text}\n'
                                             '`undersr prepare --check PLAN` lists every input of the plan.')
                    self.say(f'   (missing now, needed when this stage runs:\n{text})')
                self._run_stage(stage, todo)
        return summary

    def _run_stage(self, stage, todo):
        groups = self.groups()
        if len(groups) == 1 or len(todo) == 1:
            for step in todo:
                self._run_step(step, groups[0], self.port)
            return
        free = queue.Queue()  # each GPU group runs one step at a time
        for index in range(len(groups)):
            free.put(index)

        def work(step):
            index = free.get()
            try:
                self._run_step(step, groups[index], self.port + index)
            finally:
                free.put(index)

        with ThreadPoolExecutor(len(groups)) as pool:
            futures = [pool.submit(work, step) for step in todo]
        errors = [f.exception() for f in futures if f.exception()]
        if errors:
            raise errors[0]

    def _run_step(self, step, devices, port):
        processes = max(1, len(devices)) if step.distributed else 1
        launcher = self.launcher and step.distributed
        env = {'CUDA_VISIBLE_DEVICES': ','.join(map(str, devices))} if devices and len(self.groups()) > 1 else {}
        lines = step.commands(processes, launcher, port)
        for argv in lines:
            self.say(('   ' if self.dry_run else '>> ') + shell_line(argv, env))
        if self.dry_run:
            return
        start = time.time()
        if step.kind == 'compare' or (self.in_process and not env and processes == 1 and not launcher):
            step.run_in_process()  # compare always: it reads logs and writes tables in seconds
        else:
            if step.kind in ('train', 'test') and not os.path.isfile(f'{step.kind}.py'):
                raise ReproduceError(f'{step.kind}.py is not in the root {os.getcwd()}: subprocesses run '
                                     f'`python {step.kind}.py` there (BasicSR puts experiments/ beside it). Run from '
                                     'the repository root, or copy train.py and test.py into the root.')
            for argv in lines:
                proc = subprocess.run(executable(argv), env={**os.environ, **env})
                if proc.returncode:
                    raise ReproduceError(f'{step.stage} step {step.name} failed (exit code {proc.returncode}): '
                                         f'{shell_line(argv, env)}. Fix the cause and rerun: complete steps are '
                                         'skipped, training resumes from its last state.')
        if not step.is_complete():
            raise ReproduceError(f'{step.stage} step {step.name} ended without its outputs being complete')
        self.say(f'   done in {time.time() - start:.0f} s: {step.name}')
