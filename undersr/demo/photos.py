"""The demo's photos: which ones train, which ones validate, which ones are held aside, all shipped offline.

Every photo ships inside an installed package (no download): scikit-image's ``skimage.data`` files that are in
the wheel (not the ones ``pooch`` would fetch), matplotlib's ``sample_data/grace_hopper.jpg``, scikit-learn's
``china.jpg`` and ``flower.jpg`` (CC BY 2.0, by Daniel Buechele and by vultilion on Flickr) and PyWavelets'
``ascent`` and ``aero`` (grey). PyWavelets' ``camera`` is scikit-image's held-aside ``camera``, so it is not used.

The split (chosen before any test score was seen; see ``docs/demo-report.md``):

* **held aside** (:data:`TEST_PHOTOS`): six photos of everyday scenes that no training step ever reads: they
  score the models;
* **training side** (:data:`TRAIN_PHOTOS`): every other shipped photo with real content: a portrait, textures,
  microscopy, astronomy, a retina and text from scikit-image; a temple, a flower, people on stairs and an aerial
  view from the other packages. The right quarter of each (:func:`split_train_val`) is the **validation**
  region that chose the demo's settings; the SR and reconstruction networks train on the rest.

``stereo_motorcycle`` ships a left and a right view of one scene: only the left one is used, held aside, so the
scene cannot leak into training.
"""
import os

from undersr.image_io import read_rgb
from undersr.sample_data import center_crop, load

import matplotlib
import numpy as np

TEST_PHOTOS = ('chelsea', 'coffee', 'stereo_motorcycle', 'grace_hopper', 'rocket', 'camera')
# scikit-image's first, so their validation seeds (1000 + index) stay those of the rounds before section 15
TRAIN_PHOTOS = ('astronaut', 'immunohistochemistry', 'hubble_deep_field', 'retina', 'brick', 'grass', 'gravel',
                'moon', 'coins', 'page', 'cell', 'text', 'china', 'flower', 'ascent', 'aero')
# The training-side photos of everyday scenes, like the held-aside ones; their validation parts are the group that
# docs/demo-choices.md's rule 5 (section 15) reads beside all parts.
SCENE_PHOTOS = ('astronaut', 'china', 'flower', 'ascent')
# The attribution the CC BY photos ask for, wherever the demo names its photos (report.md)
CREDITS = "china and flower are scikit-learn's sample images, CC BY 2.0 by Daniel Buechele and by vultilion on Flickr"
# Crop of the large photos before anything else (retina: the eye fills the centre; hubble: the galaxies).
PHOTO_CROP = 768


def load_photo(name):
    """A shipped photo as (H, W, 3) uint8 RGB (grey ones repeated to three channels).

    Args:
        name (str): A ``skimage.data`` function name, ``'grace_hopper'`` (matplotlib's sample data), ``'china'`` or
            ``'flower'`` (scikit-learn's sample images), ``'ascent'`` or ``'aero'`` (PyWavelets' data).
    """
    if name == 'grace_hopper':
        return read_rgb(os.path.join(matplotlib.get_data_path(), 'sample_data', 'grace_hopper.jpg'))
    if name in ('china', 'flower'):
        from sklearn.datasets import load_sample_image
        return load_sample_image(f'{name}.jpg')
    if name in ('ascent', 'aero'):
        import pywt.data
        return np.repeat(getattr(pywt.data, name)()[..., None], 3, axis=2)
    return load(name)


def split_train_val(image, multiple):
    """Splits a training-side photo into its training part (left three quarters) and validation part (the rest).

    Args:
        image (ndarray): (H, W, 3).
        multiple (int): Both parts get widths and heights divisible by it.

    Returns:
        tuple[ndarray, ndarray]: (H', W_train, 3) and (H', W_val, 3).
    """
    image = center_crop(image, PHOTO_CROP, multiple=multiple)
    cut = image.shape[1] * 3 // 4
    cut -= cut % multiple
    return image[:, :cut], image[:, cut:]
