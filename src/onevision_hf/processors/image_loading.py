"""Turn whatever a user calls an image into an upright (H, W, 3) uint8 RGB array.

Accepted inputs: a path (``str`` / ``os.PathLike``), encoded bytes, a binary file object, a ``PIL.Image.Image``,
a ``numpy.ndarray`` or a ``torch.Tensor``. Files and bytes are decoded with Pillow (first frame of animations), by
the decoders of ``IMAGE_FORMATS`` only, so an image never makes the package run another program or read another
file. Non-seekable file objects (pipes) are read whole into memory by Pillow.

The conversions, the same for every input kind:

* EXIF orientation is applied (a phone photo taken in portrait comes out portrait);
* grayscale (``L``, ``1``, one channel) is repeated into three channels; ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``
  and palette (``P``) images are converted to RGB by Pillow;
* transparency (``RGBA``, ``LA``, ``PA``, palette with a transparent index, 2- or 4-channel arrays) is
  **composited on white**, the way a page or a browser shows a transparent PNG; the alpha channel is then dropped;
* 16-bit data (``I;16`` images, ``I`` images holding 16-bit values, ``uint16`` arrays) is scaled by 255 / 65535;
  floating-point data (``F`` images, float arrays and tensors) is taken as intensity in [0, 1] and scaled by 255;
  other integer arrays must already lie in [0, 255].

Array layout: numpy arrays are read channels-last (H, W, C), as Pillow and OpenCV give them, and torch tensors
channels-first (C, H, W), as torchvision gives them, unless only the other axis can hold 1-4 channels (a
(3, H, W) numpy array, an (H, W, 3) tensor), as transformers infers it; ``channels_first=True/False`` decides.
``convert_rgb=False`` converts no colours: anything but 3-channel RGB is refused instead.
Anything that cannot be read raises `OneVisionInputError` naming the input and the problem.
"""

import contextlib
import io
import os
import threading
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ..errors import OneVisionInputError

SIXTEEN_BIT_MAX = 65535
# Pillow decoders used for files and bytes: self-contained raster formats only. Left out on purpose: EPS (Pillow
# runs Ghostscript on it), WMF, MPEG, IPTC, scientific and game-asset containers (BUFR, GRIB, HDF5, FITS, ...).
# (JPEG includes multi-picture MPO files from phone cameras; AVIF only where this Pillow build has it.)
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "DIB", "TIFF", "WEBP", "AVIF", "PPM", "TGA", "ICO", "JPEG2000",
                 "PCX", "QOI", "SGI")
# Modes whose numpy view `array_to_rgb` reads directly; Pillow converts every other mode to RGB / RGBA first.
ARRAY_MODES = ("RGB", "RGBA", "L", "LA", "I", "F", "I;16", "I;16L", "I;16B", "I;16N")


MAX_CHANNELS = 4


def load_images(images, channels_first: bool | None = None, convert_rgb: bool = True) -> list[np.ndarray]:
    """One image or a list/tuple of images (or a 4-D batch array/tensor) -> list of (H, W, 3) uint8 arrays."""
    if isinstance(images, (np.ndarray, torch.Tensor)) and images.ndim == 4:
        images = list(images)
    elif not isinstance(images, (list, tuple)):
        images = [images]
    if not images:
        raise OneVisionInputError("no images given: pass one image or a non-empty list of images.")
    loaded = []
    for index, image in enumerate(images):
        if isinstance(image, (list, tuple)):
            raise OneVisionInputError(
                f"image {index} is a {type(image).__name__}; pass a flat list of images, one per sample."
            )
        loaded.append(load_image(image, channels_first, name=f"image {index}" if len(images) > 1 else "image",
                                 convert_rgb=convert_rgb))
    return loaded


def load_image(image, channels_first: bool | None = None, name: str = "image", convert_rgb: bool = True) -> np.ndarray:
    """Any accepted input (see the module docstring) -> upright (H, W, 3) uint8 RGB array."""
    if isinstance(image, np.ndarray):
        first = infer_channels_first(image.shape, channels_first, default_first=False)
        return array_to_rgb(image, first, f"{name} (numpy array)", convert_rgb)
    if isinstance(image, torch.Tensor):
        tensor = image.detach().cpu()
        array = (tensor.float() if tensor.is_floating_point() else tensor).numpy()  # bfloat16 has no numpy dtype
        first = infer_channels_first(array.shape, channels_first, default_first=True)
        return array_to_rgb(array, first, f"{name} (torch tensor)", convert_rgb)
    if not isinstance(image, Image.Image):
        image, name = decode_image(image, name)
    if not convert_rgb and image.mode != "RGB":
        raise OneVisionInputError(
            f"{name} is a {image.mode} image and do_convert_rgb=False: the encoder reads 3-channel RGB; pass "
            "do_convert_rgb=True to convert it."
        )
    return pil_to_rgb(image, name)


def infer_channels_first(shape: tuple[int, ...], channels_first: bool | None, default_first: bool) -> bool:
    """Whether a 3-D array is (C, H, W): as given, else the type's default unless only the other axis fits C."""
    if channels_first is not None or len(shape) != 3:
        return bool(channels_first) if channels_first is not None else default_first
    first_fits, last_fits = shape[0] <= MAX_CHANNELS, shape[-1] <= MAX_CHANNELS
    if default_first:
        return first_fits or not last_fits
    return not last_fits and first_fits


_truncation_lock = threading.Lock()


@contextlib.contextmanager
def _truncated_images_refused():
    """Pillow's process-wide ``ImageFile.LOAD_TRUNCATED_IMAGES`` off while one image decodes.

    Other libraries switch it on at import (lmms-eval's task module does), and Pillow then fills a truncated file's
    missing rows with grey instead of raising; the package refuses such files whoever else is loaded.
    """
    if not ImageFile.LOAD_TRUNCATED_IMAGES:
        yield
        return
    with _truncation_lock:
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = True


def decode_image(source, name: str) -> tuple[Image.Image, str]:
    """Path, bytes or binary file object -> (decoded PIL image, name naming the source for errors)."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = f"{name} file {str(path)!r}"
        if not path.exists():
            raise OneVisionInputError(f"{name} does not exist.")
        if not path.is_file():
            raise OneVisionInputError(f"{name} is not a regular file (a folder, pipe or device).")
        stream = path
    elif isinstance(source, (bytes, bytearray, memoryview)):
        name = f"{name} ({len(source)} bytes)"
        stream = io.BytesIO(source)
    elif isinstance(source, io.TextIOBase):
        raise OneVisionInputError(f"{name} is a text-mode file object; open image files in binary mode ('rb').")
    elif hasattr(source, "read"):
        name = f"{name} file object {getattr(source, 'name', type(source).__name__)!r}"
        stream = source
    else:
        raise OneVisionInputError(
            f"{name} is a {type(source).__name__}; expected a path, bytes, a binary file object, a PIL image, "
            "a numpy array or a torch tensor."
        )
    try:
        Image.init()  # registers the plugins, so the ones this Pillow build lacks can be left out
        with Image.open(stream, formats=[fmt for fmt in IMAGE_FORMATS if fmt in Image.OPEN]) as opened:
            with _truncated_images_refused():
                opened.load()  # decode now so a truncated or corrupt file fails here, with its name
            return opened.copy(), name
    except UnidentifiedImageError:
        raise OneVisionInputError(
            f"{name} is not an image file of an accepted format ({', '.join(IMAGE_FORMATS)})."
        ) from None
    except Image.DecompressionBombError as exc:
        raise OneVisionInputError(f"{name} is too large to decode safely: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise OneVisionInputError(f"{name} is corrupt or truncated and cannot be decoded: {exc}") from None


def pil_to_rgb(image: Image.Image, name: str = "image") -> np.ndarray:
    """PIL image of any mode -> upright (H, W, 3) uint8 RGB, transparency composited on white."""
    if image.width == 0 or image.height == 0:
        raise OneVisionInputError(f"{name} has zero size ({image.width} x {image.height}).")
    image = ImageOps.exif_transpose(image)
    has_alpha = any(band in ("A", "a") for band in image.getbands()) or "transparency" in image.info
    if image.mode not in ARRAY_MODES or (has_alpha and image.mode in ("L", "RGB")):  # P, PA, CMYK, 1, ...
        image = image.convert("RGBA" if has_alpha else "RGB")
    array = np.asarray(image)
    if image.mode == "I":  # 32-bit container; Pillow uses it for 16-bit grayscale (TIFF, older PNG readers)
        if array.size and (array.min() < 0 or array.max() > SIXTEEN_BIT_MAX):
            raise OneVisionInputError(
                f"{name} is a 32-bit integer image with values in [{array.min()}, {array.max()}]; "
                f"only 16-bit data (0..{SIXTEEN_BIT_MAX}) can be scaled to 8-bit."
            )
        array = array.astype(np.uint16)
    return array_to_rgb(array, channels_first=False, name=f"{name} (mode {image.mode})")


def array_to_rgb(array: np.ndarray, channels_first: bool, name: str = "image", convert_rgb: bool = True) -> np.ndarray:
    """(H, W) / (H, W, C) (or (C, H, W) when ``channels_first``) array, C in 1..4 -> (H, W, 3) uint8 RGB."""
    if array.ndim == 3 and channels_first:
        array = np.moveaxis(array, 0, -1)  # (C, H, W) -> (H, W, C)
    if array.ndim == 2:
        array = array[:, :, None]  # (H, W, 1)
    if array.ndim != 3:
        raise OneVisionInputError(
            f"{name} has shape {array.shape}; expected (H, W) or (H, W, C) for numpy, (C, H, W) for torch."
        )
    height, width, channels = array.shape
    if channels not in (1, 2, 3, 4):
        layout = "(C, H, W)" if channels_first else "(H, W, C)"
        hint = ""
        if not channels_first and array.shape[0] in (1, 3, 4):
            hint = " It looks channels-first: transpose it to (H, W, C) or pass input_data_format='channels_first'."
        raise OneVisionInputError(f"{name} has shape {array.shape}, read as {layout} with {channels} channels; "
                                  f"expected 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA).{hint}")
    if height == 0 or width == 0:
        raise OneVisionInputError(f"{name} has zero size ({height} x {width}).")
    if not convert_rgb and channels != 3:
        raise OneVisionInputError(
            f"{name} has {channels} channel(s) and do_convert_rgb=False: the encoder reads 3-channel RGB; pass "
            "do_convert_rgb=True to convert it."
        )
    array = to_uint8(array, name)
    if channels in (2, 4):
        array = composite_on_white(array[:, :, :-1], array[:, :, -1:])
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array)


def to_uint8(array: np.ndarray, name: str = "image") -> np.ndarray:
    """Pixel values of any real dtype -> uint8, by the rules of the module docstring."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if array.dtype.kind == "u" and array.dtype.itemsize == 2:  # uint16 of either byte order
        return ((array.astype(np.uint32) * 255 + SIXTEEN_BIT_MAX // 2) // SIXTEEN_BIT_MAX).astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise OneVisionInputError(
                f"{name} has {array.dtype} values in [{low}, {high}]; integer images must lie in [0, 255] "
                "(pass uint16 for 16-bit data)."
            )
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise OneVisionInputError(f"{name} contains NaN or infinite values.")
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise OneVisionInputError(
                f"{name} has float values in [{low:g}, {high:g}]; float images must lie in [0, 1] "
                "(pass uint8 for 0..255 data)."
            )
        return np.rint(array.astype(np.float64) * 255).astype(np.uint8)
    raise OneVisionInputError(f"{name} has dtype {array.dtype}; expected an integer, boolean or float image.")


def composite_on_white(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8 colour over a white background with (H, W, 1) uint8 alpha -> (H, W, C) uint8."""
    color, alpha = color.astype(np.uint32), alpha.astype(np.uint32)
    blended = (color * alpha + 255 * (255 - alpha) + 127) // 255
    return blended.astype(np.uint8)
