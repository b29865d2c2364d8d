"""Testing entry point: ``python test.py -opt options/test/....yml [--launcher pytorch] [--check]``."""
import sys
from os import path as osp

import undersr  # noqa: F401  (registers with BasicSR; first: the torchvision shim)
from undersr import preflight
from undersr.basicsr_fixes import run_pipeline

from basicsr.test import test_pipeline

if __name__ == '__main__':
    root = osp.dirname(osp.abspath(__file__))
    preflight.main(sys.argv[1:], is_train=False, root_path=root)  # --check, or a missing input: exits here
    run_pipeline(test_pipeline, root)
