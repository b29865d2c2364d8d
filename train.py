"""Training entry point: ``python train.py -opt options/....yml [--auto_resume] [--launcher pytorch]``."""
from os import path as osp

import undersr  # noqa: F401  (registers with BasicSR; first: the torchvision shim)
from undersr.basicsr_fixes import run_pipeline

from basicsr.train import train_pipeline

if __name__ == '__main__':
    run_pipeline(train_pipeline, osp.dirname(osp.abspath(__file__)))
