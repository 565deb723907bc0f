"""Image data for the supernet: an ImageFolder reader, transforms and loaders (PIL + torch only).

Layout (ImageNet's): ``root/train/<class>/<image>`` (``root/<class>/<image>`` also works) and an
optional ``root/val/<class>/<image>`` test split that the search never reads. The search's
held-out validation images are a fixed, seeded part of ``train``.

Workers decode and crop to ``uint8`` CHW tensors; conversion to float and normalisation happen on
the device (:func:`normalize`), which keeps host-to-GPU copies 4x smaller.

:func:`write_digits_imagefolder` writes scikit-learn's bundled 8x8 digits as such a tree: a small
*real* dataset for tests and CPU demos, not a substitute for ImageNet.
"""

from __future__ import annotations

import functools
import math
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".webp", ".tif", ".tiff")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@functools.lru_cache(maxsize=8)
def scan_image_folder(root: str) -> tuple[tuple[str, ...], tuple[tuple[str, int], ...]]:
    """(class names, (path, label) samples) of a ``root/<class>/<image>`` tree, sorted.

    Cached per process: listing ImageNet's 1.28M files once per trial would be slow.

    Raises:
        FileNotFoundError: ``root`` is missing, or has no class folders with images.
    """
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"image folder {root!r} does not exist")
    classes = tuple(sorted(p.name for p in base.iterdir() if p.is_dir()))
    samples = tuple(
        (str(f), label)
        for label, name in enumerate(classes)
        for f in sorted((base / name).iterdir())
        if f.suffix.lower() in IMAGE_SUFFIXES
    )
    if not samples:
        raise FileNotFoundError(
            f"no images under {root!r}: expected {root}/<class>/<image> with suffixes {IMAGE_SUFFIXES}"
        )
    return classes, samples


def train_dir(root: str | Path) -> str:
    """``root/train`` when it exists, else ``root`` itself."""
    sub = Path(root) / "train"
    return str(sub if sub.is_dir() else Path(root))


# -- transforms (PIL in, uint8 CHW tensor out) ------------------------------------------------
def to_uint8_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL image -> ``uint8`` tensor of shape (3, H, W)."""
    return torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.uint8).copy()).permute(2, 0, 1)


@dataclass(frozen=True)
class TrainTransform:
    """RandomResizedCrop(``size``, ``scale``, ratio 3/4..4/3) then an optional horizontal flip."""

    size: int
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: bool = True

    def crop_box(self, width: int, height: int, rng: random.Random) -> tuple[int, int, int, int]:
        """A random (left, top, right, bottom) box; falls back to the central crop."""
        area = width * height
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                left, top = rng.randint(0, width - w), rng.randint(0, height - h)
                return left, top, left + w, top + h
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        return left, top, left + side, top + side

    def __call__(self, img: Image.Image, rng: random.Random | None = None) -> torch.Tensor:
        rng = rng or random
        box = self.crop_box(*img.size, rng)
        img = img.resize((self.size, self.size), Image.BILINEAR, box=box)
        if self.hflip and rng.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        return to_uint8_tensor(img)


@dataclass(frozen=True)
class EvalTransform:
    """Resize the short side to ``size / crop_fraction`` then centre-crop ``size``."""

    size: int
    crop_fraction: float = 0.875

    def __call__(self, img: Image.Image, rng: random.Random | None = None) -> torch.Tensor:
        w, h = img.size
        short = int(round(self.size / self.crop_fraction))
        scale = short / min(w, h)
        nw, nh = max(short, round(w * scale)), max(short, round(h * scale))
        img = img.resize((nw, nh), Image.BILINEAR)
        left, top = (nw - self.size) // 2, (nh - self.size) // 2
        return to_uint8_tensor(img.crop((left, top, left + self.size, top + self.size)))


@functools.lru_cache(maxsize=16)
def _channel_stats(mean: tuple, std: tuple, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    m = torch.tensor(mean, device=device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=device).view(1, -1, 1, 1)
    return m, s


def normalize(images: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """``uint8`` NCHW batch -> float, scaled to [0, 1] and standardised per channel (the
    mean/std tensors are made once per device)."""
    m, s = _channel_stats(tuple(mean), tuple(std), images.device)
    return (images.float().div_(255.0) - m) / s


class ImageFolderDataset(torch.utils.data.Dataset):
    """``(uint8 image, label)`` pairs of some samples of an image folder.

    Random transforms draw from ``self.rng`` (seeded by ``seed``; each loader worker reseeds it
    from its own torch seed, see :func:`seed_worker`).
    """

    def __init__(self, samples: list[tuple[str, int]], transform: Callable, seed: int = 0):
        self.samples = list(samples)
        self.transform = transform
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[i]
        with Image.open(path) as img:
            return self.transform(img.convert("RGB"), self.rng), label


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: give each worker its own augmentation stream."""
    info = torch.utils.data.get_worker_info()
    info.dataset.rng.seed(torch.initial_seed())


# -- splits and loaders -------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageDataConfig:
    """Where the images are and how to load them.

    Attributes:
        root: ImageFolder root (``root/train/<class>/...`` or ``root/<class>/...``).
        resolution: training and evaluation crop side.
        val_size: images of ``train`` held out for the search's validation (seeded split).
        batch_size: per-trial batch size.
        num_workers: DataLoader worker processes (0 = load in the trial process; None = one
            fewer than the CPUs Ray allocated to the trial, see :func:`loader_workers`).
        train_scale: RandomResizedCrop area range; (0.08, 1.0) is the ImageNet standard.
        hflip: random horizontal flips (turn off for digits and text).
        seed: seed of the held-out split.
    """

    root: str
    resolution: int = 224
    val_size: int = 10_000
    batch_size: int = 256
    num_workers: int | None = None
    train_scale: tuple[float, float] = (0.08, 1.0)
    hflip: bool = True
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "root", str(self.root))


def holdout_split(cfg: ImageDataConfig) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(search-train samples, held-out validation samples) of ``cfg.root``'s train images.

    Raises:
        ValueError: ``val_size`` leaves no training images.
    """
    _, samples = scan_image_folder(train_dir(cfg.root))
    if not 0 < cfg.val_size < len(samples):
        raise ValueError(
            f"val_size={cfg.val_size} must be between 1 and {len(samples) - 1} "
            f"(the folder has {len(samples)} training images)"
        )
    order = np.random.default_rng(cfg.seed).permutation(len(samples))
    held = set(order[: cfg.val_size].tolist())
    train = [s for i, s in enumerate(samples) if i not in held]
    val = [samples[i] for i in sorted(held)]
    return train, val


def num_classes(root: str | Path) -> int:
    """Number of class folders of an image folder."""
    return len(scan_image_folder(train_dir(root))[0])


def make_loaders(
    cfg: ImageDataConfig, shuffle_seed: int, pin_memory: bool | None = None
) -> tuple[torch.utils.data.DataLoader, torch.utils.data.DataLoader]:
    """(train loader with augmentation and shuffling, held-out loader with centre crops).

    ``shuffle_seed`` drives the order and the augmentation, so trials that pass different seeds
    see different batches. Pinned memory is on when CUDA is available unless told otherwise.
    """
    train, val = holdout_split(cfg)
    pin = torch.cuda.is_available() if pin_memory is None else pin_memory
    workers = loader_workers(cfg)
    common = dict(batch_size=cfg.batch_size, num_workers=workers, pin_memory=pin, persistent_workers=workers > 0)
    if workers > 0:
        common["prefetch_factor"] = 4
    gen = torch.Generator().manual_seed(shuffle_seed)
    train_ds = ImageFolderDataset(train, TrainTransform(cfg.resolution, cfg.train_scale, hflip=cfg.hflip), shuffle_seed)
    train_loader = torch.utils.data.DataLoader(
        train_ds, shuffle=True, drop_last=True, generator=gen, worker_init_fn=seed_worker, **common
    )
    val_loader = torch.utils.data.DataLoader(
        ImageFolderDataset(val, EvalTransform(cfg.resolution)), shuffle=False, **common
    )
    return train_loader, val_loader


def loader_workers(cfg: ImageDataConfig) -> int:
    """``cfg.num_workers``, or when None one fewer than the CPUs Ray allocated to this trial
    (the trial's own process steps the model), or than the machine's outside Ray."""
    if cfg.num_workers is not None:
        return cfg.num_workers
    import ray

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU") if ray.is_initialized() else None
    return max(0, int(cpus if cpus else os.cpu_count() or 1) - 1)


def calibration_batches(cfg: ImageDataConfig, n: int) -> list[torch.Tensor]:
    """``n`` fixed ``uint8`` batches of search-train images (seeded subset, centre crops) for
    re-estimating BatchNorm statistics: the same in every process, so a path scored in a trial
    and the network exported from it get the same statistics."""
    train, _ = holdout_split(cfg)
    order = np.random.default_rng(cfg.seed + 1).permutation(len(train))[: n * cfg.batch_size]
    transform = EvalTransform(cfg.resolution)
    data = ImageFolderDataset([train[i] for i in order], transform)
    images = [data[i][0] for i in range(len(data))]
    return [torch.stack(images[i : i + cfg.batch_size]) for i in range(0, len(images), cfg.batch_size)]


def infinite(loader: torch.utils.data.DataLoader):
    """Yield batches forever, starting a new epoch when one ends."""
    while True:
        yield from loader


# -- the digits demo dataset ----------------------------------------------------------------------
def write_digits_imagefolder(root: str | Path, resolution: int = 32, test_fraction: float = 0.2, seed: int = 0) -> Path:
    """Write scikit-learn's 1,797 bundled 8x8 digits as PNGs in ImageFolder layout.

    Images are upscaled (bilinear) to ``resolution`` and written to ``root/train/<digit>/`` and,
    for a ``test_fraction`` held back from any search, ``root/val/<digit>/``. A demo dataset,
    not ImageNet. Reuses an existing complete tree. Returns ``root``.
    """
    root = Path(root)
    marker = root / f".digits_{resolution}_{test_fraction}_{seed}"
    if marker.exists():  # (no scikit-learn needed to reuse a tree written elsewhere)
        return root
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.images))
    n_test = int(round(test_fraction * len(order)))
    for rank, i in enumerate(order):
        split = "val" if rank < n_test else "train"
        folder = root / split / str(int(digits.target[i]))
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (digits.images[i] * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
        Image.fromarray(pixels, mode="L").resize((resolution, resolution), Image.BILINEAR).save(
            folder / f"{int(i):04d}.png"
        )
    marker.touch()
    return root
