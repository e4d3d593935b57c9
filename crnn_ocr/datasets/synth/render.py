"""Render labelled text images: fonts, backgrounds, colour, geometry and degradations.

`Renderer.render(text, rng)` returns a uint8 image (gray, or RGB with `color=True`) of exactly `text`, or
None when no font has every glyph of it. `curved` (default 0) is the share of scene-style crops bent along an
arch, strongly waved or seen in steep perspective; at 0 the renders are those of earlier versions, draw for draw.
"""

from __future__ import annotations

import random
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from crnn_ocr.datasets.synth.fonts import FontInfo
from crnn_ocr.datasets.synth.text import STYLES


@lru_cache(maxsize=512)
def _load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


CODE_FONT_WORDS = ("mono", "ocr", "condensed", "narrow", "din", "bebas", "b612", "courier", "consol", "hack")
CODE_FONT_SHARE = 0.6  # codes: the share drawn in such faces (plates, labels, terminals), when any is installed


class Renderer:
    """Turns strings into realistic-looking crops of printed or scene text."""

    def __init__(self, fonts: list[FontInfo], max_height: int = 64, color: bool = False, style: str = "mixed",
                 curved: float = 0.0):
        if style not in STYLES:
            raise ValueError(f"unknown render style {style!r}; choose from {', '.join(STYLES)}")
        self.document = style == "document"
        self.codes = style == "codes"
        if not fonts:
            raise ValueError("Renderer needs at least one font")
        if not 0 <= curved <= 1:
            raise ValueError(f"curved must be a share in [0, 1], not {curved}")
        self.curved = curved
        self.fonts = fonts
        self.by_family: dict[str, list[FontInfo]] = {}
        for f in fonts:
            self.by_family.setdefault(f.family, []).append(f)
        self.families = sorted(self.by_family)
        self.code_families = [f for f in self.families if any(w in f.lower() for w in CODE_FONT_WORDS)]
        self.max_height = max_height
        self.color = color

    def pick_font(self, text: str, rng: random.Random) -> FontInfo | None:
        families = self.families
        if self.codes and self.code_families and rng.random() < CODE_FONT_SHARE:
            families = self.code_families
        for _ in range(8):
            font = rng.choice(self.by_family[rng.choice(families)])
            if font.covers(text):
                return font
        covering = [f for f in self.fonts if f.covers(text)]
        return rng.choice(covering) if covering else None

    def render(self, text: str, rng: random.Random) -> np.ndarray | None:
        font_info = self.pick_font(text, rng)
        if font_info is None:
            return None
        nprng = np.random.default_rng(rng.getrandbits(32))
        size = rng.randint(22, 48)
        mask = self._text_mask(text, _load_font(font_info.path, size), size, rng)
        if mask is None:
            return None
        if self.document:
            mask = self._tilt(mask, rng.gauss(0, 0.5))
            mask = self._crop(mask, rng)
            image = self._compose_paper(mask, rng, nprng)
        elif self.codes:  # a plate, a printed label or sticker, or any sign
            look = rng.random()
            mask = self._tilt(mask, rng.gauss(0, 1.0)) if look < 0.75 else self._geometry(mask, size, rng, nprng)
            mask = self._crop(mask, rng)
            if look < 0.4:
                image = self._compose_plate(mask, rng, nprng)
            elif look < 0.75:
                image = self._compose_paper(mask, rng, nprng)
            else:
                image = self._compose(mask, rng, nprng)
        else:
            mask = self._geometry(mask, size, rng, nprng)
            mask = self._crop(mask, rng)
            image = self._compose(mask, rng, nprng)
        if image.shape[0] > self.max_height:
            width = max(1, int(image.shape[1] * self.max_height / image.shape[0]))
            image = cv2.resize(image, (width, self.max_height), interpolation=cv2.INTER_AREA)
        image = self._degrade_scan(image, rng, nprng) if self.document else self._degrade(image, rng, nprng)
        if not self.color:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        return image

    def _text_mask(self, text: str, font: ImageFont.FreeTypeFont, size: int, rng: random.Random) -> np.ndarray | None:
        spacing = rng.choice((0, 0, 0, 0, 1, 2, 3, -1)) * size / 16 if len(text) < 30 else 0
        stroke = 1 if rng.random() < 0.12 else 0
        pad = size // 2 + 2
        if spacing == 0:
            left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
            width = right - left
        else:
            width = int(sum(font.getlength(c) for c in text) + spacing * (len(text) - 1)) + 2 * stroke
        ascent, descent = font.getmetrics()
        canvas = Image.new("L", (max(int(width), 1) + 2 * pad, ascent + descent + 2 * pad), 0)
        draw = ImageDraw.Draw(canvas)
        if spacing == 0:
            draw.text((pad - left, pad), text, font=font, fill=255, stroke_width=stroke, stroke_fill=255)
        else:
            x = float(pad)
            for c in text:
                draw.text((x, pad), c, font=font, fill=255, stroke_width=stroke, stroke_fill=255)
                x += font.getlength(c) + spacing
        if rng.random() < 0.03:
            y = pad + ascent + max(1, descent // 3)
            draw.line((pad, y, canvas.width - pad, y), fill=255, width=max(1, size // 16))
        mask = np.asarray(canvas)
        return mask if mask.any() else None

    def _geometry(self, mask: np.ndarray, size: int, rng: random.Random, nprng: np.random.Generator) -> np.ndarray:
        if self.curved and rng.random() < self.curved:  # no draw at curved == 0: default renders unchanged
            return self._strong_geometry(mask, size, rng, nprng)
        h, w = mask.shape
        if rng.random() < 0.15:  # curved baseline
            amplitude = rng.uniform(0.05, 0.25) * size
            mask = wave(mask, amplitude, rng.uniform(1.5, 4.0) * w, rng.uniform(0, 2 * np.pi))
        r = rng.random()
        if r < 0.6:
            angle = rng.gauss(0, 1.5) if rng.random() < 0.8 else rng.uniform(-8, 8)
            shear = rng.gauss(0, 0.08) if rng.random() < 0.3 else 0.0
            matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
            matrix[0, 1] += shear
            matrix[0, 2] -= shear * h / 2
            mask = cv2.warpAffine(mask, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
        elif r < 0.8:
            d = size * 0.35
            src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
            dst = src + nprng.uniform(-d, d, size=(4, 2)).astype(np.float32)
            matrix = cv2.getPerspectiveTransform(src, dst)
            mask = cv2.warpPerspective(mask, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
        return mask

    def _strong_geometry(self, mask: np.ndarray, size: int, rng: random.Random, nprng: np.random.Generator) -> np.ndarray:
        """Text on round logos, shop signs and photos taken at an angle: an arch or a bowl (half of the time),
        a steep perspective, or a strong wave."""
        r = rng.random()
        if r < 0.5:
            return arch(mask, rng.uniform(0.6, 2.4) * rng.choice((1, -1)))
        if r < 0.85:
            return self._steep_perspective(mask, size, rng, nprng)
        amplitude = rng.uniform(0.25, 0.4) * size  # the mask's padding is about half the size: strokes stay in
        return wave(mask, amplitude, rng.uniform(0.8, 1.6) * mask.shape[1], rng.uniform(0, 2 * np.pi))

    @staticmethod
    def _steep_perspective(mask: np.ndarray, size: int, rng: random.Random, nprng: np.random.Generator) -> np.ndarray:
        """One end of the text farther away than the other (its height shrinks), or seen from below or above."""
        h, w = mask.shape
        src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
        dst = src.copy()
        squeeze = rng.uniform(0.25, 0.55)
        if rng.random() < 0.7:
            top, bottom = (0, 3) if rng.random() < 0.5 else (1, 2)
            dst[top, 1] += squeeze * h / 2
            dst[bottom, 1] -= squeeze * h / 2
        else:
            left, right = (0, 1) if rng.random() < 0.5 else (3, 2)
            shift = squeeze * min(w / 4, 2 * h)
            dst[left, 0] += shift
            dst[right, 0] -= shift
        dst += nprng.uniform(-0.2 * size, 0.2 * size, size=(4, 2)).astype(np.float32)
        matrix = cv2.getPerspectiveTransform(src, dst)
        return cv2.warpPerspective(mask, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)

    @staticmethod
    def _tilt(mask: np.ndarray, angle: float) -> np.ndarray:
        h, w = mask.shape
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        return cv2.warpAffine(mask, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)

    def _compose_paper(self, mask: np.ndarray, rng: random.Random, nprng: np.random.Generator) -> np.ndarray:
        """Dark ink on paper, as on a printed page, a scan or a photocopy."""
        h, w = mask.shape
        paper = rng.uniform(185, 255)
        bg = np.full((h, w, 1), paper, np.float32)
        if rng.random() < 0.4:
            bg = bg + nprng.normal(0, rng.uniform(1, 8), size=(h, w, 1)).astype(np.float32)
        tint = np.array([rng.uniform(-8, 8) for _ in range(3)], np.float32) if rng.random() < 0.3 else 0
        ink = rng.uniform(0, 90)
        alpha = mask.astype(np.float32)[..., None] / 255.0
        image = bg * (1 - alpha) + ink * alpha + tint
        return np.clip(np.broadcast_to(image, (h, w, 3)), 0, 255).astype(np.uint8)

    def _compose_plate(self, mask: np.ndarray, rng: random.Random, nprng: np.random.Generator) -> np.ndarray:
        """A licence plate: a light, yellow, dark or coloured plate with a border, at times a blue band at the
        left (as in the EU), at times with some of the car around it."""
        h, w = mask.shape
        pad_y, pad_x = int(h * rng.uniform(0.05, 0.25)), int(h * rng.uniform(0.1, 0.35))
        band = int(h * rng.uniform(0.4, 0.6)) if rng.random() < 0.35 else 0
        height, width = h + 2 * pad_y, w + 2 * pad_x + band
        kind = rng.random()
        if kind < 0.55:
            plate, ink = (rng.uniform(215, 255),) * 3, (rng.uniform(0, 60),) * 3
        elif kind < 0.8:
            plate, ink = (rng.uniform(225, 255), rng.uniform(180, 215), rng.uniform(20, 80)), (rng.uniform(0, 50),) * 3
        elif kind < 0.9:
            plate, ink = (rng.uniform(10, 50),) * 3, (rng.uniform(200, 250),) * 3
        else:
            plate = tuple(rng.uniform(20, 150) for _ in range(3))
            ink = (rng.uniform(210, 255),) * 3
        bg = np.empty((height, width, 3), np.float32)
        bg[:] = plate
        bg += nprng.normal(0, rng.uniform(1, 6), size=(height, width, 1)).astype(np.float32)
        if band:
            bg[:, :band] = (rng.uniform(0, 30), rng.uniform(30, 70), rng.uniform(130, 170))
        thickness = max(1, height // rng.randint(14, 30))
        cv2.rectangle(bg, (0, 0), (width - 1, height - 1), ink, thickness)
        alpha = np.zeros((height, width, 1), np.float32)
        alpha[pad_y:pad_y + h, pad_x + band:pad_x + band + w, 0] = mask.astype(np.float32) / 255.0
        image = bg * (1 - alpha) + np.array(ink, np.float32) * alpha
        if rng.random() < 0.5:  # some of the car around the plate
            m = max(1, int(height * rng.uniform(0.05, 0.2)))
            outer = self._background(height + 2 * m, width + 2 * m, rng, nprng).copy()
            outer[m:m + height, m:m + width] = image
            image = outer
        return np.clip(image, 0, 255).astype(np.uint8)

    def _degrade_scan(self, image: np.ndarray, rng: random.Random, nprng: np.random.Generator) -> np.ndarray:
        """Scanner and copier artefacts: low resolution, blur, thresholding, speckle, JPEG."""
        h, w = image.shape[:2]
        if rng.random() < 0.35:
            f = rng.uniform(0.45, 0.85)
            small = cv2.resize(image, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)
            image = cv2.resize(small, (w, h), interpolation=rng.choice((cv2.INTER_LINEAR, cv2.INTER_CUBIC)))
        if rng.random() < 0.35:
            image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 1.0))
        if rng.random() < 0.25:
            gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
            threshold = rng.uniform(0.35, 0.65) * (int(gray.max()) + int(gray.min()))
            binary = np.where(gray > threshold, 255, 0).astype(np.uint8)
            image = cv2.cvtColor(binary, cv2.COLOR_GRAY2RGB)
        if rng.random() < 0.1:
            specks = nprng.random(image.shape[:2]) < rng.uniform(0.001, 0.01)
            image = image.copy()
            image[specks] = 0 if rng.random() < 0.7 else 255
        if rng.random() < 0.25:
            noise = nprng.normal(0, rng.uniform(2, 8), size=image.shape).astype(np.float32)
            image = np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)
        if rng.random() < 0.2:
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(30, 90)])
            if ok:
                image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        return image

    def _background(self, h: int, w: int, rng: random.Random, nprng: np.random.Generator) -> np.ndarray:
        base = np.array([rng.randint(0, 255) for _ in range(3)], dtype=np.float32)
        if rng.random() < 0.5:
            base[:] = base.mean()
        kind = rng.random()
        if kind < 0.35:
            bg = np.broadcast_to(base, (h, w, 3)).astype(np.float32)
        elif kind < 0.55:
            other = np.array([rng.randint(0, 255) for _ in range(3)], dtype=np.float32)
            t = np.linspace(0, 1, w if rng.random() < 0.6 else h, dtype=np.float32)
            ramp = t[None, :, None] if len(t) == w else t[:, None, None]
            bg = base * (1 - ramp) + other * ramp
            bg = np.broadcast_to(bg, (h, w, 3)).astype(np.float32)
        elif kind < 0.85:
            scale = rng.choice((2, 4, 8, 16))
            noise = nprng.normal(0, 1, size=(h // scale + 2, w // scale + 2, 1)).astype(np.float32)
            noise = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)[..., None]
            bg = base + noise * rng.uniform(5, 45)
        else:
            period = rng.uniform(3, 30)
            xs = np.arange(w, dtype=np.float32)[None, :]
            ys = np.arange(h, dtype=np.float32)[:, None]
            angle = rng.uniform(0, np.pi)
            pattern = np.sin((xs * np.cos(angle) + ys * np.sin(angle)) * 2 * np.pi / period)
            bg = base + pattern[..., None] * rng.uniform(5, 30)
        return bg

    def _compose(self, mask: np.ndarray, rng: random.Random, nprng: np.random.Generator) -> np.ndarray:
        h, w = mask.shape
        bg = self._background(h, w, rng, nprng)
        bg_level = float(bg.mean())
        contrast = rng.uniform(60, 230)
        if rng.random() < 0.25:  # light text on dark, or dark on light with any background
            level = bg_level + contrast if bg_level < 128 else bg_level - contrast
        else:
            level = bg_level - contrast if bg_level > 100 else bg_level + contrast
        level = float(np.clip(level, 0, 255))
        fg = np.clip(np.array([level + rng.uniform(-40, 40) for _ in range(3)]), 0, 255).astype(np.float32)
        alpha = mask.astype(np.float32)[..., None] / 255.0
        if rng.random() < 0.1:  # shadow or outline, as on signs
            k = rng.choice((3, 5))
            shadow = cv2.dilate(mask, np.ones((k, k), np.uint8)).astype(np.float32)[..., None] / 255.0
            shade = float(np.clip(255 - level, 0, 255))
            bg = bg * (1 - shadow) + shade * shadow
        image = bg * (1 - alpha) + fg * alpha
        return np.clip(image, 0, 255).astype(np.uint8)

    def _crop(self, mask: np.ndarray, rng: random.Random) -> np.ndarray:
        """Cut the text out with a random margin (slightly negative at times: tight real crops clip strokes)."""
        ys, xs = np.nonzero(mask > 20)
        if len(ys) == 0:
            return mask
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        text_h = y1 - y0

        def margin(scale: float) -> int:
            return int(round(rng.uniform(-0.04, scale) * text_h))

        y0 = max(0, y0 - margin(0.35))
        y1 = min(mask.shape[0], y1 + margin(0.35))
        x0 = max(0, x0 - margin(0.6))
        x1 = min(mask.shape[1], x1 + margin(0.6))
        crop = mask[y0:y1, x0:x1]
        return crop if crop.shape[0] >= 4 and crop.shape[1] >= 4 else mask

    def _degrade(self, image: np.ndarray, rng: random.Random, nprng: np.random.Generator) -> np.ndarray:
        h, w = image.shape[:2]
        if rng.random() < 0.3:  # low resolution then back up
            f = rng.uniform(0.35, 0.8)
            small = cv2.resize(image, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)
            image = cv2.resize(small, (w, h), interpolation=rng.choice((cv2.INTER_LINEAR, cv2.INTER_NEAREST, cv2.INTER_CUBIC)))
        if rng.random() < 0.35:
            sigma = rng.uniform(0.3, 1.4)
            image = cv2.GaussianBlur(image, (0, 0), sigma)
        elif rng.random() < 0.08:
            k = rng.choice((3, 5))
            kernel = np.zeros((k, k), np.float32)
            kernel[k // 2, :] = 1.0 / k
            image = cv2.filter2D(image, -1, kernel)
        if rng.random() < 0.4:
            noise = nprng.normal(0, rng.uniform(2, 14), size=image.shape).astype(np.float32)
            image = np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)
        if rng.random() < 0.15:  # uneven lighting
            xs = np.linspace(-1, 1, w, dtype=np.float32)[None, :, None]
            gain = 1 + rng.uniform(-0.35, 0.35) * xs
            image = np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        if rng.random() < 0.3:
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(15, 85)])
            if ok:
                image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        return image


def wave(mask: np.ndarray, amplitude: float, period: float, phase: float) -> np.ndarray:
    """`mask` with its columns shifted up and down along a sine of `amplitude` pixels and `period` pixels."""
    h, w = mask.shape
    xs = np.arange(w, dtype=np.float32)
    shift = (amplitude * np.sin(2 * np.pi * xs / period + phase)).astype(np.float32)
    map_y = np.arange(h, dtype=np.float32)[:, None] + shift[None, :]
    return cv2.remap(mask, np.tile(xs, (h, 1)), map_y, cv2.INTER_LINEAR, borderValue=0)


def arch(mask: np.ndarray, bend: float) -> np.ndarray:
    """`mask` bent along a circular arc spanning `bend` radians at mid-height, on a canvas that holds it all.

    bend > 0: an arch (ends lower, letters on the outside of the circle, as along the top of a round logo);
    bend < 0: a bowl (ends higher, letters inside). |bend| is capped so the circle's radius stays >= the height.
    """
    h, w = mask.shape
    sign = 1.0 if bend >= 0 else -1.0
    bend = min(abs(bend), w / h)
    if bend < 1e-3:
        return mask
    radius = w / bend

    def forward(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        phi = (x - w / 2) / radius
        r = radius + sign * (h / 2 - y)
        return r * np.sin(phi), -sign * r * np.cos(phi)  # x right, y down; the circle's centre at (0, 0)

    edge_x, edge_y = np.linspace(0, w, 64), np.linspace(0, h, 16)
    xs = np.concatenate([edge_x, edge_x, np.zeros(16), np.full(16, w)])
    ys = np.concatenate([np.zeros(64), np.full(64, h), edge_y, edge_y])
    fx, fy = forward(xs, ys)
    x0, y0 = np.floor(fx.min()), np.floor(fy.min())
    out_w, out_h = int(np.ceil(fx.max()) - x0) + 1, int(np.ceil(fy.max()) - y0) + 1
    grid_x, grid_y = np.meshgrid(np.arange(out_w) + x0, np.arange(out_h) + y0)
    r = np.hypot(grid_x, grid_y)
    phi = np.arctan2(grid_x, -sign * grid_y)
    map_x = (w / 2 + phi * radius).astype(np.float32)
    map_y = (h / 2 - sign * (r - radius)).astype(np.float32)
    return cv2.remap(mask, map_x, map_y, cv2.INTER_LINEAR, borderValue=0)


def encode_image(image: np.ndarray, fmt: str = ".jpg", quality: int = 92) -> bytes:
    """Encode uint8 gray or RGB as JPEG (default, compact) or PNG bytes for an LMDB."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fmt == ".jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 1]
    ok, buf = cv2.imencode(fmt, image, params)
    if not ok:
        raise ValueError("image encoding failed")
    return buf.tobytes()


