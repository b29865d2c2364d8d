"""Every benchmark script runs with ``--smoke`` and prints its summary line. Nothing is asserted about speed."""
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = ('bench_generate', 'bench_efficiency', 'bench_train_overhead', 'bench_io', 'bench_scaling', 'bench_resize',
           'recon_speed', 'demo_validation')


def run_smoke(name):
    env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, os.path.join(ROOT, 'benchmarks', f'{name}.py'), '--smoke'], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope='module')
def smoke_runs():
    """All smoke runs, two at a time (one torch thread each), so the file takes about half the serial time."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(SCRIPTS, pool.map(run_smoke, SCRIPTS)))


@pytest.mark.parametrize('name', SCRIPTS)
def test_smoke_run_prints_a_summary(smoke_runs, name):
    proc = smoke_runs[name]
    assert proc.returncode == 0, f'{name} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    summary = [line for line in proc.stdout.splitlines() if line.startswith('summary')]
    assert len(summary) == 1, proc.stdout[-3000:]


def test_tuned_realesrgan_matches_the_shipped_pipeline(smoke_runs):
    line = next(line for line in smoke_runs['bench_generate'].stdout.splitlines() if line.startswith('tuned vs'))
    assert 'pairs handed to training identical: True' in line
    max_levels = int(line.split('(')[2].split(' levels')[0])
    assert max_levels <= 1, line
