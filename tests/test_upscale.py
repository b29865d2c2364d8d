"""``undersr upscale``: photos in every mode, models from option files or spandrel, resume, and the comparison page."""
import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from urllib.parse import unquote

import undersr  # noqa: F401  (registers the architectures)
from undersr.cli import upscale as cli
from undersr.sample_data import load
from undersr.upscale import compare_models, load_upscaler, upscale
from undersr.upscale.compare import choose_crops, niqe_score
from undersr.upscale.images import read_image

import cv2
import numpy as np
import pytest
import torch
import yaml
from basicsr.archs.edsr_arch import EDSR
from basicsr.archs.rrdbnet_arch import RRDBNet

EDSR_OPT = {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 4, 'num_block': 1, 'upscale': 4,
            'res_scale': 1, 'img_range': 255., 'rgb_mean': [0.4488, 0.4371, 0.4040]}
MODELS = ('sr_pretrained', 'sr_control', 'sr_finetuned')


def tiny_edsr(seed):
    torch.manual_seed(seed)
    return EDSR(**{k: v for k, v in EDSR_OPT.items() if k != 'type'}).eval()


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    """Three tiny EDSR ×4 checkpoints (``params`` layout, as the demo exports) with an option file beside each."""
    folder = tmp_path_factory.mktemp('models')
    for seed, name in enumerate(MODELS):
        torch.save({'params': tiny_edsr(seed).state_dict()}, folder / f'{name}.pth')
        (folder / f'{name}.yml').write_text(yaml.safe_dump({'scale': 4, 'network_g': EDSR_OPT}))
    return folder


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    """Mixed photos: RGB PNG, JPEG in a sub-folder, RGBA, grey, 16-bit (the RGB one × 257) and a corrupt file."""
    folder = tmp_path_factory.mktemp('photos')
    (folder / 'sub').mkdir()
    rgb = load('astronaut')[100:128, 180:232]  # 28×52: ×4 gives 112×208, two NIQE blocks
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    cv2.imwrite(str(folder / 'rgb.png'), bgr)
    cv2.imwrite(str(folder / 'sub' / 'photo.jpg'), load('coffee')[:20, :24, ::-1])
    alpha = np.tile(np.linspace(0, 255, bgr.shape[1]).astype(np.uint8), (bgr.shape[0], 1))
    cv2.imwrite(str(folder / 'rgba.png'), np.dstack([bgr, alpha]))
    cv2.imwrite(str(folder / 'grey.png'), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(folder / 'deep.png'), bgr.astype(np.uint16) * 257)
    (folder / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n truncated')
    return folder


def run_cli(argv, capsys):
    """``undersr upscale ARGV``; returns (exit status, stdout + stderr)."""
    try:
        cli.main([str(a) for a in argv])
        status = 0
    except SystemExit as stop:
        status = stop.code if isinstance(stop.code, int) else 1
        print(stop.code)
    out = capsys.readouterr()
    return status, out.out + out.err


def network_output(net, rgb):
    """The network on an (H, W, 3) uint8 RGB image, untiled, as uint8 RGB."""
    with torch.no_grad():
        y = net(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255)
    return (y[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def test_folder_of_mixed_photos_keeps_each_mode(models, photos, tmp_path, capsys):
    out = tmp_path / 'up'
    status, text = run_cli([photos, '--model', models / 'sr_finetuned.pth', '--out', out], capsys)
    assert status == cli.SKIPPED_EXIT_STATUS, text
    assert 'broken.png' in text
    for rel in ('rgb.png', 'sub/photo.jpg', 'rgba.png', 'grey.png', 'deep.png'):
        source, result = read_image(str(photos / rel)), read_image(str(out / rel))
        assert result.dtype == source.dtype and result.ndim == source.ndim, rel
        assert result.shape[:2] == (source.shape[0] * 4, source.shape[1] * 4), rel
        assert result.shape[2:] == source.shape[2:], rel
    assert not (out / 'broken.png').exists()
    rgb, deep = read_image(str(out / 'rgb.png')).astype(float), read_image(str(out / 'deep.png')).astype(float)
    assert deep.max() > 255 and np.abs(deep / 257 - rgb).max() <= 1  # 16 bit kept, scaled by its type
    assert np.abs(read_image(str(out / 'rgba.png'))[..., :3].astype(float) - rgb).max() <= 1


def test_each_mode_is_the_network_on_rgb_tiled_or_not(models, photos, tmp_path):
    net = tiny_edsr(MODELS.index('sr_finetuned'))
    bgra, grey = read_image(str(photos / 'rgba.png')), read_image(str(photos / 'grey.png'))
    alpha, size = bgra[..., 3], (bgra.shape[1] * 4, bgra.shape[0] * 4)
    for tile, alpha_mode in ((0, 'model'), (16, 'bicubic')):
        out = tmp_path / f'tile{tile}'
        upscale([str(photos / 'rgba.png'), str(photos / 'grey.png')], [str(models / 'sr_finetuned.pth')], str(out),
                tile_size=tile, tile_pad=8, pre_pad=0, alpha=alpha_mode)
        got = read_image(str(out / 'rgba.png')).astype(int)
        assert np.abs(got[..., 2::-1] - network_output(net, bgra[..., 2::-1].copy())).max() <= 1, tile
        expected = (network_output(net, np.repeat(alpha[..., None], 3, axis=2)).mean(axis=2) if alpha_mode == 'model'
                    else cv2.resize(alpha, size, interpolation=cv2.INTER_CUBIC))
        assert np.abs(got[..., 3] - expected).max() <= 1, alpha_mode
        expected = cv2.cvtColor(network_output(net, np.repeat(grey[..., None], 3, axis=2)), cv2.COLOR_RGB2GRAY)
        assert np.abs(read_image(str(out / 'grey.png')).astype(int) - expected).max() <= 1, tile


def test_resume_skips_finished_outputs_and_never_reads_its_own_outputs(models, photos, tmp_path):
    work = tmp_path / 'photos'
    shutil.copytree(photos, work)
    out = work / 'up'  # inside the input folder: must not become input
    first = upscale([str(work)], [str(models / 'sr_finetuned.pth')], str(out))
    assert first.written == 5 and first.existing == 0 and [p for p, _ in first.bad] == [str(work / 'broken.png')]
    (out / 'grey.png').unlink()
    second = upscale([str(work)], [str(models / 'sr_finetuned.pth')], str(out))
    assert (second.written, second.existing, len(second.done)) == (1, 4, 5)
    assert (out / 'grey.png').exists() and not (out / 'up').exists()
    with pytest.raises(ValueError, match='overwritten by its own output'):
        upscale([str(work)], [str(models / 'sr_finetuned.pth')], str(work))


class PageParser(HTMLParser):
    """Collects references, sections, figures per crop row, slider options and the embedded JSON."""

    def __init__(self):
        super().__init__()
        self.refs, self.sections, self.rows, self.selects, self.data, self.text = [], 0, [], [], '', []
        self._in = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ('src', 'href'):
            if attrs.get(key) and not attrs[key].startswith('#'):
                self.refs.append(attrs[key])
        cls = attrs.get('class', '')
        if tag == 'section' and cls == 'photo':
            self.sections += 1
        elif tag == 'div' and cls == 'crops':
            self.rows.append(0)
        elif tag == 'figure':
            self.rows[-1] += 1
        elif tag == 'select':
            self.selects.append((cls, []))
        elif tag == 'option':
            self._in = 'option'
        elif tag == 'script' and attrs.get('type') == 'application/json':
            self._in = 'json'

    def handle_endtag(self, tag):
        if tag in ('option', 'script'):
            self._in = None

    def handle_data(self, data):
        if self._in == 'option':
            self.selects[-1][1].append(data)
        elif self._in == 'json':
            self.data += data
        self.text.append(data)


def test_compare_three_models_writes_the_page_and_the_grid(models, photos, tmp_path):
    out = tmp_path / 'cmp'
    checkpoints = {name: str(models / f'{name}.pth') for name in MODELS}
    page = compare_models([str(photos)], checkpoints, str(out), crops=2, crop_size=48)
    columns = ['input', 'bicubic', *MODELS]
    parser = PageParser()
    parser.feed(open(page, encoding='utf-8').read())
    folder = os.path.dirname(page)
    assert parser.refs and all(os.path.isfile(os.path.join(folder, unquote(r))) for r in parser.refs), parser.refs
    assert parser.sections == 5  # every photo but the corrupt one
    assert parser.rows and all(n == len(columns) for n in parser.rows)
    assert {cls for cls, _ in parser.selects} == {'left', 'right', 'crop'}
    assert all(options == columns for cls, options in parser.selects if cls in ('left', 'right'))
    srcs = [src for photo in json.loads(parser.data)['photos'] for crop in photo for src in crop]
    assert len(srcs) == len(parser.rows) * len(columns)
    assert all(os.path.isfile(os.path.join(folder, s)) for s in srcs)
    for label in ('bicubic', *MODELS):
        assert (out / label / 'sub' / 'photo.jpg').is_file()
    text = ' '.join(parser.text)
    assert 'n/a' in text  # sub/photo.jpg: 80×96 output, too small for NIQE
    grid = cv2.imread(str(out / 'compare' / 'grid.png'))
    cell, gap, header = 48, 2, 20  # undersr.visualize.image_grid's layout
    assert grid.shape == (header + len(parser.rows) * (cell + gap), len(columns) * (cell + gap), 3)


@pytest.mark.skipif(shutil.which('chromium') is None, reason="Debian's chromium is not installed")
def test_page_renders_in_headless_chromium(models, photos, tmp_path):
    page = compare_models([str(photos / 'rgb.png')], {'a': str(models / 'sr_pretrained.pth'),
                                                      'b': str(models / 'sr_finetuned.pth')}, str(tmp_path / 'c'))
    shot = tmp_path / 'shot.png'
    subprocess.run(['chromium', '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
                    '--disable-background-networking', '--disable-component-update', '--disable-sync',
                    f'--user-data-dir={tmp_path / "profile"}', f'--screenshot={shot}', '--window-size=800,600',
                    f'file://{page}'], capture_output=True, timeout=120, check=True)
    image = cv2.imread(str(shot))
    assert image.shape == (600, 800, 3) and image.std() > 20  # a rendered page, not a blank one


def test_models_from_spandrel_and_from_a_basicsr_experiment_folder(photos, tmp_path):
    torch.manual_seed(0)
    rrdb = RRDBNet(3, 3, num_feat=8, num_block=1, num_grow_ch=32).eval()
    release = tmp_path / 'RealESRGAN_tiny.pth'
    torch.save({'params_ema': rrdb.state_dict()}, release)  # no option file: spandrel recognises it
    experiment = tmp_path / 'experiments' / 'finetune_tiny'
    (experiment / 'models').mkdir(parents=True)
    torch.save({'params': tiny_edsr(5).state_dict()}, experiment / 'models' / 'net_g_latest.pth')
    (experiment / 'finetune_tiny.yml').write_text(yaml.safe_dump({'scale': 4, 'network_g': EDSR_OPT}))
    spandrel_model = load_upscaler(str(release), device='cpu')
    assert 'spandrel' in spandrel_model.source and spandrel_model.scale == 4
    rgb = cv2.imread(str(photos / 'rgb.png'))[..., ::-1].copy()
    out = tmp_path / 'out'
    result = upscale([str(photos / 'rgb.png')], [str(release), str(experiment / 'models' / 'net_g_latest.pth')],
                     str(out), opts=['auto', 'auto'], pre_pad=0)
    assert set(result.folders) == {'RealESRGAN_tiny', 'finetune_tiny'}
    got = cv2.imread(str(out / 'RealESRGAN_tiny' / 'rgb.png'))[..., ::-1]
    assert np.abs(got.astype(int) - network_output(rrdb, rgb)).max() <= 1


def test_unusable_models_name_the_file_and_the_fix(photos, tmp_path, capsys):
    unknown = tmp_path / 'mystery.pth'
    torch.save({'params': {'foo.weight': torch.zeros(3, 3)}}, unknown)
    status, text = run_cli([photos, '--model', unknown, '--out', tmp_path / 'o'], capsys)
    assert status == 1 and 'mystery.pth' in text and '--opt' in text
    wrong = tmp_path / 'wrong.pth'
    torch.save({'params': tiny_edsr(0).state_dict()}, wrong)
    opt = tmp_path / 'other.yml'
    opt.write_text(yaml.safe_dump({'network_g': dict(EDSR_OPT, num_feat=8)}))
    status, text = run_cli([photos, '--model', wrong, '--opt', opt, '--out', tmp_path / 'o'], capsys)
    assert status == 1 and 'wrong.pth' in text and 'other.yml' in text and 'shape' in text
    assert not (tmp_path / 'o').exists()


def test_scale_precision_and_exif_orientation(models, tmp_path):
    from PIL import Image
    pixels = load('astronaut')[:16, :24]
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise for display
    Image.fromarray(pixels).save(tmp_path / 'phone.jpg', exif=exif.tobytes())
    out = tmp_path / 'out'
    upscale([str(tmp_path / 'phone.jpg')], [str(models / 'sr_finetuned.pth')], str(out), scale=2)
    assert read_image(str(out / 'phone.jpg')).shape == (48, 32, 3)  # upright (24×16), ×2
    fp32 = upscale([str(tmp_path / 'phone.jpg')], [str(models / 'sr_finetuned.pth')], str(tmp_path / 'a'))
    bf16 = upscale([str(tmp_path / 'phone.jpg')], [str(models / 'sr_finetuned.pth')], str(tmp_path / 'b'),
                   precision='bf16')
    a, b = (read_image(r.done[0][2]['sr_finetuned']).astype(int) for r in (fp32, bf16))
    assert a.shape == b.shape == (96, 64, 3) and np.abs(a - b).mean() < 3


def test_niqe_is_nan_below_two_blocks_and_crops_do_not_overlap():
    image = load('astronaut')
    assert np.isnan(niqe_score(image[:64, :64], 4))  # no 96×96 block
    assert np.isnan(niqe_score(image[:100, :200], 4))  # one 96×96 block after the border
    assert np.isfinite(niqe_score(image[:104, :200], 4))
    boxes = choose_crops(image, 64, 4)
    assert len(boxes) == 4 and all(box[2:] == (64, 64) for box in boxes)
    for i, (y, x, _, _) in enumerate(boxes):
        assert all(abs(y - y2) >= 64 or abs(x - x2) >= 64 for y2, x2, _, _ in boxes[i + 1:])
    flat = np.full((256, 320, 3), 128, np.uint8)
    flat[128:192, 192:256] = np.random.default_rng(0).integers(0, 256, (64, 64, 3))  # the one detailed region
    assert choose_crops(flat, 64, 2)[0] == (128, 192, 64, 64)
