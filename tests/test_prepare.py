"""undersr prepare: official archive layouts into our layouts, resumable, with errors that name the file and source."""
import os
import zipfile

import undersr  # noqa: F401  (registers with BasicSR; first: the torchvision shim)
from undersr.cli import prepare as cli_prepare
from undersr.image_io import read_rgb
from undersr.prepare import datasets, miniature
from undersr.prepare.sources import PrepareError
from undersr.resize import bicubic_downsample

import numpy as np
import pytest


@pytest.fixture(scope='module')
def downloads(tmp_path_factory):
    return miniature.write_downloads(str(tmp_path_factory.mktemp('downloads')))


@pytest.fixture(scope='module')
def prepared(tmp_path_factory, downloads):
    out = str(tmp_path_factory.mktemp('prepared') / 'datasets')
    meta = miniature.prepare_all(downloads, out, subset=6, seed=0)
    return out, meta


def _files(folder):
    return sorted(os.listdir(folder))


def test_every_layout_is_built_from_the_official_archive_layouts(prepared):
    out, meta = prepared
    # DF2K: DIV2K's and Flickr2K's HR merged; Flickr2K's LR folder in the same archive is left out.
    assert _files(os.path.join(out, 'DF2K', 'HR')) == ['000001.png', '0001.png', '0002.png']
    # Tiny-ImageNet: train only (not val/), keys of the subset relative to train/, balanced over the 2 classes.
    train = os.path.join(out, 'tiny-imagenet-200', 'train')
    assert _files(train) == ['n00000001', 'n00000002']
    keys = open(meta).read().split()
    assert len(keys) == 6 and all(os.path.isfile(os.path.join(train, k)) for k in keys)
    assert sorted(k.split('/')[0] for k in keys) == ['n00000001'] * 3 + ['n00000002'] * 3
    assert os.path.basename(meta) == 'meta_info_train_subset6_seed0.txt'
    assert _files(os.path.join(out, 'NTIRE2018', 'DIV2K_valid_LR_difficult')) == ['0801x4d.png', '0802x4d.png']
    # Benchmarks: HR taken from GTmod12 (not the LR folder beside it), cropped to a multiple of 4, and LRbicx4 is
    # the MATLAB bicubic of that crop.
    for name in ('Set5', 'Set14', 'B100', 'Manga109'):
        assert _files(os.path.join(out, name, 'GTmod4')) == ['img0.png', 'img1.png']
    hr = read_rgb(os.path.join(out, 'Set5', 'GTmod4', 'img0.png'))
    assert hr.shape == (64, 64, 3)  # 67 -> 64
    np.testing.assert_array_equal(read_rgb(os.path.join(out, 'Set5', 'LRbicx4', 'img0.png')),
                                  bicubic_downsample(hr, 4))
    for key in datasets.LAYOUTS:
        if key != 'sample':
            assert datasets.verify(key, out) == [], key
    assert datasets.verify('tinyimagenet', out, meta) == []


def test_reruns_skip_finished_files_and_repair_broken_ones(tmp_path, downloads):
    out = str(tmp_path / 'datasets')
    hr = datasets.prepare_df2k(*downloads['df2k'], out=out, partial=True)
    first = {n: os.stat(os.path.join(hr, n)).st_mtime_ns for n in _files(hr)}
    with open(os.path.join(hr, '0002.png'), 'r+b') as f:  # cut short, as by a kill
        f.truncate(100)
    datasets.prepare_df2k(*downloads['df2k'], out=out, partial=True)
    second = {n: os.stat(os.path.join(hr, n)).st_mtime_ns for n in _files(hr)}
    assert second['0001.png'] == first['0001.png'] and second['000001.png'] == first['000001.png']  # skipped
    assert read_rgb(os.path.join(hr, '0002.png')).shape == (128, 128, 3)  # rewritten whole
    assert not [n for n in _files(hr) if '.tmp' in n]


def test_missing_or_malformed_inputs_name_the_file_and_the_official_source(tmp_path, downloads):
    div2k, flickr2k = downloads['df2k']
    with pytest.raises(PrepareError, match=r'nowhere\.zip not found.*DIV2K_train_HR\.zip from https://data\.vision'):
        datasets.prepare_df2k(str(tmp_path / 'nowhere.zip'), flickr2k, out=str(tmp_path / 'a'))
    with pytest.raises(PrepareError, match=r'lacks 798 of the 800 DIV2K training HR images.*--partial'):
        datasets.prepare_df2k(div2k, flickr2k, out=str(tmp_path / 'b'))  # the official count is checked
    junk = tmp_path / 'Flickr2K.tar'
    junk.write_bytes(b'not an archive' * 10)
    with pytest.raises(PrepareError, match=r'neither a folder nor a zip or tar archive.*cv\.snu\.ac\.kr'):
        datasets.prepare_df2k(div2k, str(junk), out=str(tmp_path / 'c'), partial=True)
    # A member whose bytes changed inside the archive (CRC error), and a truncated image in a folder.
    damaged = tmp_path / 'damaged.zip'
    data = bytearray(open(div2k, 'rb').read())
    start = data.index(b'IHDR')  # inside the first PNG's stored bytes
    data[start + 40:start + 48] = b'\0' * 8
    damaged.write_bytes(bytes(data))
    with pytest.raises(PrepareError, match=r'damaged\.zip is damaged.*re-download'):
        datasets.prepare_df2k(str(damaged), flickr2k, out=str(tmp_path / 'd'), partial=True)
    folder = tmp_path / 'DIV2K_train_HR'
    with zipfile.ZipFile(div2k) as archive:
        archive.extractall(tmp_path / 'x')
    os.rename(tmp_path / 'x' / 'DIV2K_train_HR', folder)
    with open(folder / '0002.png', 'r+b') as f:
        f.truncate(200)
    with pytest.raises(PrepareError, match=r'0002\.png is malformed \(truncated PNG'):
        datasets.prepare_df2k(str(folder), flickr2k, out=str(tmp_path / 'e'), partial=True)
    assert not os.path.exists(tmp_path / 'e' / 'DF2K' / 'HR' / '0002.png')  # nothing half-written left


def test_subset_is_balanced_over_classes_and_set_by_the_seed(tmp_path):
    train = tmp_path / 'train'
    for c, count in (('a', 5), ('b', 5), ('c', 2)):
        (train / c).mkdir(parents=True)
        for i in range(count):
            (train / c / f'{i}.png').write_bytes(b'x')
    picks = {}
    for seed in (0, 1):
        path = datasets.write_subset(str(train), 8, seed)
        picks[seed] = open(path).read().split()
        assert sorted(k[0] for k in picks[seed]) == ['a'] * 3 + ['b'] * 3 + ['c'] * 2  # class c has only 2
    assert picks[0] != picks[1]
    assert open(datasets.write_subset(str(train), 8, 0)).read().split() == picks[0]
    with pytest.raises(PrepareError, match='more than the 12 images'):
        datasets.write_subset(str(train), 13, 0)


def test_cli_prepares_a_benchmark_and_checks_a_plan(tmp_path, downloads, capsys):
    out = tmp_path / 'root' / 'datasets'
    cli_prepare.main(['set14', '--src', downloads['set14'], '--out', str(out), '--partial'])
    assert _files(out / 'Set14' / 'LRbicx4') == ['img0.png', 'img1.png']
    assert (out / 'Set14' / 'prepared.json').is_file()
    with pytest.raises(SystemExit, match=r'has 2 HR images, Set14 has 14'):
        cli_prepare.main(['set14', '--src', downloads['set14'], '--out', str(tmp_path / 'other')])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        cli_prepare.main(['--check', 'colorshift', '--root', str(tmp_path / 'root')])
    assert exit_info.value.code == 1
    text = capsys.readouterr().out
    assert 'present            datasets/Set14/GTmod4' in text
    assert 'MISSING            datasets/DF2K/HR' in text and 'undersr prepare df2k --div2k' in text
    assert 'MISSING            datasets/Manga109/GTmod4' in text and 'manga109.org' in text
    assert 'missing (optional) experiments/pretrained_models/alexnet-owt-7be5be79.pth' in text
