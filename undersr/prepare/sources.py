"""Where each input of the paper's experiments officially comes from, and the error that says so.

undersr never downloads anything (datasets or weights): ``undersr prepare`` turns what a user downloaded into our
layouts, and every missing or malformed input is reported with the official place to get it (:func:`how_to_get`).
"""
from dataclasses import dataclass

from undersr.weights import OFFICIAL_WEIGHTS


class PrepareError(Exception):
    """A missing or malformed input; the message names the file and where to get it."""


@dataclass(frozen=True)
class Source:
    """One official download.

    Attributes:
        title (str): What it is, e.g. ``'DIV2K training HR images'``.
        files (tuple[str]): The official archive name(s), e.g. ``('DIV2K_train_HR.zip',)``.
        where (str): The official place to get it.
    """
    title: str
    files: tuple
    where: str

    def text(self):
        """One line: ``DIV2K training HR images: DIV2K_train_HR.zip from https://...``."""
        return f'{self.title}: {" / ".join(self.files)} from {self.where}'


_DIV2K = 'https://data.vision.ee.ethz.ch/cvl/DIV2K/ (NTIRE 2017/2018, Agustsson & Timofte)'
_BENCHMARKS = ('the "Common image SR datasets" links of BasicSR docs/DatasetPreparation.md '
               '(github.com/XPixelGroup/BasicSR), or the original authors\' pages')

SOURCES = {
    'div2k': Source('DIV2K training HR images (0001-0800)', ('DIV2K_train_HR.zip',), _DIV2K),
    'flickr2k': Source('Flickr2K HR images (000001-002650)', ('Flickr2K.tar',),
                       'https://cv.snu.ac.kr/research/EDSR/Flickr2K.tar (the EDSR project, '
                       'github.com/sanghyun-son/EDSR-PyTorch)'),
    'tinyimagenet': Source('Tiny-ImageNet (200 classes x 500 training images)', ('tiny-imagenet-200.zip',),
                           'http://cs231n.stanford.edu/tiny-imagenet-200.zip (Stanford CS231n)'),
    'ntire2018_hr': Source('DIV2K validation HR images (0801-0900)', ('DIV2K_valid_HR.zip',), _DIV2K),
    'ntire2018_lr': Source('NTIRE 2018 Track 3 "realistic difficult" x4 validation LR (0801x4d-0900x4d)',
                           ('DIV2K_valid_LR_difficult.zip',), _DIV2K),
    'set5': Source('Set5 (Bevilacqua et al. 2012), 5 HR images', ('Set5.zip',), _BENCHMARKS),
    'set14': Source('Set14 (Zeyde et al. 2010), 14 HR images', ('Set14.zip',), _BENCHMARKS),
    'b100': Source('B100 / BSDS100 (Martin et al. 2001), 100 HR images', ('BSDS100.zip', 'B100.zip'), _BENCHMARKS),
    'manga109': Source('Manga109 (Matsui et al. 2017), 109 HR images', ('Manga109.zip',),
                       'http://www.manga109.org/ (free for academic use, on request), or ' + _BENCHMARKS),
    'realsr': Source('RealSR V3 (Cai et al. 2019), Canon and Nikon test pairs', ('RealSR(V3)',),
                     'github.com/csjcai/RealSR (the V3 links in its README)'),
    'drealsr': Source('DRealSR (Wei et al. 2020), x4 test pairs', ('DRealSR',),
                      'github.com/xiezw5/Component-Divide-and-Conquer-for-Real-World-Image-Super-Resolution '
                      '(the dataset links in its README)'),
    'ntire2020': Source('NTIRE 2020 Real-World SR Track 2 (smartphone) test input, no ground truth',
                        ('DPEDiphone-crop-te-x.zip',),
                        'the NTIRE 2020 Real World SR challenge, competitions.codalab.org/competitions/22220 '
                        '("Participate": Track 2 test data)'),
    'alexnet': Source('AlexNet weights for LPIPS', ('alexnet-owt-7be5be79.pth',),
                      'torchvision (download.pytorch.org/models/alexnet-owt-7be5be79.pth)'),
}


def how_to_get(key):
    """The official place of a source key of :data:`SOURCES` or an official weights file name, as one line."""
    if key in SOURCES:
        return SOURCES[key].text()
    if key in OFFICIAL_WEIGHTS:
        return f'{key} from {OFFICIAL_WEIGHTS[key]}'
    return ''
