"""Finding the machine-readable zone in a photo, without OCR.

The MRZ is the only block on a document with two or three long, evenly spaced lines
of dark monospaced text of equal length. Morphology finds such lines cheaply: a
black-hat transform lifts dark print off the background, a horizontal closing
merges each line's characters into one blob, and the blobs are grouped by width,
angle and spacing. Each line is then cut out along its own rotated rectangle, so a
moderate tilt or keystone (each line shrinks with its distance) is undone per line.
Documents rotated by more than about 15 degrees are not handled: the closing is
horizontal (the capture page asks the user to hold the document level).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np

from bioverify.engine.models import Image, as_image

#: Width the search runs at (the crop is cut from the full-resolution photo).
WORK_WIDTH: Final = 1000
#: A line must span this share of the photo's width ...
MIN_LINE_SHARE: Final = 0.3
#: ... and be this much longer than tall (an MRZ line is ~30:1 at 2.54 mm pitch).
MIN_ASPECT: Final = 10.0
#: Lines of one zone differ in length by at most this share.
LENGTH_TOLERANCE: Final = 0.12
#: Horizontal gaps bridged when joining characters, as shares of the photo's width.
JOIN_SHARES: Final = (0.018, 0.03, 0.045)
#: Height of the line crops handed to OCR.
LINE_HEIGHT: Final = 48


@dataclass(frozen=True)
class LineBox:
    """One candidate text line: centre, size (long side first) and angle in degrees."""

    cx: float
    cy: float
    length: float
    thickness: float
    angle: float


def _line_boxes(grey: Image, join: float) -> list[LineBox]:
    """Long thin blobs of dark print; ``join`` is the gap (share of width) bridged."""
    width = grey.shape[1]
    unit = max(3, round(width / 200))
    blackhat = cv2.morphologyEx(
        grey, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_RECT, (unit * 3, unit * 3))
    )
    _, mask = cv2.threshold(blackhat, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    # Join the characters of a line (filler runs leave gaps of about half a pitch)
    # but never adjacent lines: the kernel is one pixel tall.
    mask = cv2.morphologyEx(
        mask,
        cv2.MORPH_CLOSE,
        cv2.getStructuringElement(cv2.MORPH_RECT, (max(3, round(join * width)), 1)),
    )
    mask = cv2.morphologyEx(
        mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (unit * 2, 2))
    )
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    boxes: list[LineBox] = []
    for contour in contours:
        (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
        if w < h:
            w, h, angle = h, w, angle - 90.0
        if angle < -45.0:
            angle += 180.0
        if angle > 45.0:
            angle -= 180.0
        if h <= 0 or w < MIN_LINE_SHARE * width or w / h < MIN_ASPECT:
            continue
        boxes.append(LineBox(float(cx), float(cy), float(w), float(h), float(angle)))
    return boxes


def _best_group(boxes: list[LineBox]) -> list[LineBox]:
    """The 2-3 line group of equal length and steady spacing with the longest lines."""
    ordered = sorted(boxes, key=lambda b: b.cy)
    best: list[LineBox] = []
    for start, first in enumerate(ordered):
        group = [first]
        for other in ordered[start + 1 :]:
            last = group[-1]
            gap = other.cy - last.cy
            similar = abs(other.length - first.length) <= LENGTH_TOLERANCE * first.length
            if similar and abs(other.angle - first.angle) < 4.0 and gap < 3.5 * last.thickness:
                group.append(other)
            if len(group) == 3:
                break
        if len(group) >= 2 and (
            len(group) > len(best) or (len(group) == len(best) and group[0].length > best[0].length)
        ):
            best = group
    return best


def _cut(image: Image, box: LineBox, scale: float) -> Image:
    """The line along its rotated rectangle, with margins, at :data:`LINE_HEIGHT`."""
    cx, cy = box.cx / scale, box.cy / scale
    length = box.length / scale * 1.04
    thickness = box.thickness / scale * 1.6
    matrix = cv2.getRotationMatrix2D((cx, cy), box.angle, 1.0)
    matrix[0, 2] += length / 2 - cx
    matrix[1, 2] += thickness / 2 - cy
    size = (max(1, round(length)), max(1, round(thickness)))
    line = cv2.warpAffine(
        image, matrix, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    out_w = max(1, round(size[0] * LINE_HEIGHT / size[1]))
    return _stretch(as_image(cv2.resize(line, (out_w, LINE_HEIGHT), interpolation=cv2.INTER_AREA)))


def _stretch(line: Image) -> Image:
    """Ink to black and paper to white: dim or washed-out lines reach the OCR at full
    contrast (low light cost a third of the reads before this, see docs/engine.md)."""
    grey = line if line.ndim == 2 else cv2.cvtColor(line, cv2.COLOR_BGR2GRAY)
    low, high = np.percentile(grey, (2.0, 98.0))
    if high - low < 1.0:
        return line
    scaled = (line.astype(np.float32) - float(low)) * (255.0 / float(high - low))
    return as_image(np.clip(scaled, 0, 255).astype(np.uint8))


def find_mrz_lines(image: Image) -> list[Image]:
    """The MRZ's lines (2 or 3), top to bottom, as horizontal crops; [] when none found."""
    width = image.shape[1]
    scale = min(1.0, WORK_WIDTH / width)
    small = image if scale == 1.0 else cv2.resize(image, None, fx=scale, fy=scale)
    grey = small if small.ndim == 2 else cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    grey = np.asarray(grey, np.uint8)
    best: list[LineBox] = []
    # The print's scale in the photo is unknown: try each gap width and keep the
    # group with the most, then the longest, lines (a gap too small for the scale
    # splits lines at filler runs; the pieces make shorter groups).
    for join in JOIN_SHARES:
        group = _best_group(_line_boxes(grey, join))
        if (len(group), group[0].length if group else 0.0) > (
            len(best),
            best[0].length if best else 0.0,
        ):
            best = group
    return [_cut(image, box, scale) for box in best]
