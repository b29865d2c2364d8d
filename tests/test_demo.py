"""`undersr demo --quick`: the whole method end to end, in seconds."""
import csv
import sys

import undersr  # noqa: F401  (registers with BasicSR; first: the torchvision shim)
from undersr.archs.recon_base import load_reconstruction
from undersr.demo import QUICK, SCALE, TEST_IMAGES
from undersr.weights import load_weights

import cv2
import torch
from basicsr.archs import build_network


def test_demo_quick_writes_report_metrics_picture_and_loadable_models(tmp_path, run_py):
    out = tmp_path / 'demo'
    proc = run_py(['-m', 'undersr', 'demo', '--quick', '--out', out], cwd=tmp_path, executable=(sys.executable, ))
    assert '[6/6]' in proc.stdout

    report = (out / 'report.md').read_text()
    assert '| sr_finetuned |' in report and '| sr_control |' in report

    with open(out / 'metrics.csv') as f:
        rows = list(csv.DictReader(f))
    assert {r['image'] for r in rows} == set(TEST_IMAGES)
    assert {r['method'] for r in rows} == {'bicubic', 'sr_pretrained', 'sr_control', 'sr_finetuned'}
    assert all(0 < float(r['psnr_y']) < 60 and 0 < float(r['ssim_y']) <= 1 for r in rows)

    picture = cv2.imread(str(out / 'comparison.png'))
    assert picture.shape[:2] == (20 + 2 * 194, 5 * 194)  # label row + one row per test image, five columns

    network = {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': SCALE, 'res_scale': 1,
               'img_range': 255., 'rgb_mean': [0.4488, 0.4371, 0.4040], **QUICK['sr_net']}
    for name in ('sr_pretrained', 'sr_control', 'sr_finetuned'):
        assert set(torch.load(out / 'models' / f'{name}.pth', weights_only=True)) == {'params'}
        load_weights(build_network(dict(network)), str(out / 'models' / f'{name}.pth'))  # strict
    net, meta = load_reconstruction(str(out / 'models' / f'recon_ep{QUICK["recon_epochs"]}.pth'))
    assert meta['network_g']['type'] == 'VQVAE2'
