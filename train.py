"""Training entry point: ``python train.py -opt options/....yml [--auto_resume] [--launcher pytorch]``."""
from os import path as osp

import undersr.archs  # noqa: F401  (first: installs the torchvision shim, registers archs, fixes BasicSR)
import undersr.data  # noqa: F401
import undersr.models  # noqa: F401
from undersr.basicsr_fixes import run_pipeline

from basicsr.train import train_pipeline

if __name__ == '__main__':
    run_pipeline(train_pipeline, osp.dirname(osp.abspath(__file__)))
