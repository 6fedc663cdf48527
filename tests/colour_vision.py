"""Colours as colour-blind viewers see them, for tests of the map's palettes: Machado, Oliveira and
Fernandes (2009) simulations at full severity, and CIELAB colour differences (CIE76)."""

from __future__ import annotations

import numpy as np

#: linear-RGB matrices of the three dichromacies (Machado et al. 2009, severity 1.0)
SIMULATIONS = {
    "normal": np.eye(3),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}


def _linear(rgb) -> np.ndarray:
    c = np.asarray(rgb, float) / 255
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def lab(rgb, vision: str = "normal") -> np.ndarray:
    """CIELAB (D65) of sRGB colours (..., 3; 0-255) as seen with ``vision`` (a key of SIMULATIONS)."""
    lin = np.clip(_linear(rgb) @ SIMULATIONS[vision].T, 0, 1)
    xyz = lin @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def difference(a, b, vision: str = "normal") -> np.ndarray:
    """CIE76 colour difference of sRGB colours ``a`` and ``b`` (broadcast) as seen with ``vision``."""
    return np.linalg.norm(lab(a, vision) - lab(b, vision), axis=-1)
