"""Training entry point: ``python train.py -opt options/....yml [--auto_resume] [--launcher pytorch] [--check]``."""
import sys
from os import path as osp

import undersr  # noqa: F401  (registers with BasicSR; first: the torchvision shim)
from undersr import preflight
from undersr.basicsr_fixes import run_pipeline

from basicsr.train import train_pipeline

if __name__ == '__main__':
    root = osp.dirname(osp.abspath(__file__))
    preflight.main(sys.argv[1:], is_train=True, root_path=root)  # --check, or a missing input: exits here
    run_pipeline(train_pipeline, root)
