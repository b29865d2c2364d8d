"""Testing entry point: ``python test.py -opt options/test/....yml [--launcher pytorch]``."""
from os import path as osp

import undersr  # noqa: F401  (registers with BasicSR; first: the torchvision shim)
from undersr.basicsr_fixes import run_pipeline

from basicsr.test import test_pipeline

if __name__ == '__main__':
    run_pipeline(test_pipeline, osp.dirname(osp.abspath(__file__)))
