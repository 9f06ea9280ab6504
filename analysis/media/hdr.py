"""HDR video (PQ or HLG, BT.2020) read as an SDR player shows it, for the affect sources.

swscale converts YCbCr to RGB with the right matrix but keeps the transfer function: a PQ
frame handed over as ``rgb24`` still holds PQ code values (reference white near 58%, colours
greyed out by the wide BT.2020 primaries), so an HDR clip read darker and calmer than the
same picture in SDR. Here a sampled frame is decoded at 16 bits, already at the small
analysis size, then in NumPy:

1. linearised to display light with HDR reference white, 203 cd/m² (ITU-R BT.2408), at 1.0:
   PQ by its EOTF (SMPTE ST 2084); HLG by its inverse OETF (BT.2100) and the HLG system
   gamma 1.2 of the 1000 cd/m² reference display, applied per channel as FFmpeg's zscale
   (zimg) does. BT.2100's luminance-based OOTF would leave colours paler than the SDR
   picture: on colour bars taken SDR -> HLG by zscale it missed by 13.5 code values on average,
   per channel by 4.5;
2. taken from BT.2020 to BT.709 primaries (colours outside BT.709 clipped);
3. tone mapped: light above a knee just below SDR white is rolled off towards it, on the
   largest channel so hues stay as they are;
4. encoded for an SDR display (the inverse of the BT.1886 EOTF, gamma 2.4) to 8 bits.

SDR frames never come here (see :func:`hdr_transfer`); their fast path is unchanged.
"""

from __future__ import annotations

from functools import cache

import av
import numpy as np

#: FFmpeg's AVColorTransferCharacteristic values for PQ (SMPTE ST 2084) and HLG (ARIB STD-B67).
TRC_PQ = 16
TRC_HLG = 18
#: AVColorPrimaries / AVColorSpace values read here.
_PRI_BT709 = 1
_SPC_UNSPECIFIED = 2

#: HDR reference white, cd/m² (ITU-R BT.2408): shown as SDR white.
REFERENCE_WHITE = 203.0
#: Peak of the HLG reference display, cd/m² (ITU-R BT.2100), and its system gamma.
HLG_PEAK = 1000.0
HLG_GAMMA = 1.2
#: Linear level (1.0 = SDR white) above which highlights are compressed; below it light is kept.
KNEE = 0.9

#: Linear BT.2020 RGB -> linear BT.709 RGB (ITU-R BT.2087).
BT2020_TO_BT709 = np.array(
    [[1.6605, -0.5876, -0.0728],
     [-0.1246, 1.1329, -0.0083],
     [-0.0182, -0.1006, 1.1187]],
    dtype=np.float32,
)


def hdr_transfer(frame: av.VideoFrame) -> int | None:
    """:data:`TRC_PQ` or :data:`TRC_HLG` when ``frame`` is tagged as HDR, else None."""
    trc = int(getattr(frame, "color_trc", 0) or 0)
    return trc if trc in (TRC_PQ, TRC_HLG) else None


def pq_eotf(signal: np.ndarray) -> np.ndarray:
    """Display light in cd/m² of PQ code values in [0, 1] (SMPTE ST 2084)."""
    m1, m2 = 2610 / 16384, 2523 / 4096 * 128
    c1, c2, c3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
    p = np.power(np.clip(signal, 0.0, 1.0), 1.0 / m2)
    return 10000.0 * np.power(np.maximum(p - c1, 0.0) / (c2 - c3 * p), 1.0 / m1)


def hlg_inverse_oetf(signal: np.ndarray) -> np.ndarray:
    """Scene light in [0, 1] of HLG code values in [0, 1] (ITU-R BT.2100)."""
    a, b, c = 0.17883277, 0.28466892, 0.55991073
    e = np.clip(signal, 0.0, 1.0)
    with np.errstate(over="ignore"):
        high = (np.exp((e - c) / a) + b) / 12.0
    return np.where(e <= 0.5, e * e / 3.0, high)


@cache
def _linear_table(trc: int) -> np.ndarray:
    """16-bit code value -> linear light with reference white at 1.0, for ``trc``."""
    codes = np.arange(65536, dtype=np.float64) / 65535.0
    if trc == TRC_PQ:
        return (pq_eotf(codes) / REFERENCE_WHITE).astype(np.float32)
    return (HLG_PEAK * np.power(hlg_inverse_oetf(codes), HLG_GAMMA) / REFERENCE_WHITE).astype(np.float32)


#: Levels of :data:`_ENCODE`: linear [0, 1] is quantised this finely before the display curve.
_LEVELS = 4096
#: Linear light -> 8-bit code value an SDR display (BT.1886, gamma 2.4) shows as that light.
_ENCODE = np.round(np.power(np.arange(_LEVELS) / (_LEVELS - 1), 1.0 / 2.4) * 255.0).astype(np.uint8)


def tone_map(peak: np.ndarray) -> np.ndarray:
    """Displayed level of the largest channel ``peak`` (1.0 = SDR white): unchanged up to
    :data:`KNEE`, then rolled off smoothly (same slope at the knee) towards 1.0."""
    room = 1.0 - KNEE
    over = np.maximum(peak - KNEE, 0.0)
    return np.where(peak <= KNEE, peak, KNEE + room * (1.0 - np.exp(-over / room)))


def to_sdr(rgb16: np.ndarray, trc: int, *, bt2020: bool = True) -> np.ndarray:
    """RGB uint8 (BT.709, SDR) of ``rgb16``, 16-bit RGB code values in transfer ``trc``."""
    light = _linear_table(trc)[rgb16]
    if bt2020:
        light = light @ BT2020_TO_BT709.T
    light = np.maximum(light, 0.0)
    peak = light.max(axis=-1, keepdims=True)
    light *= tone_map(peak) / np.maximum(peak, 1e-6)
    return _ENCODE[np.rint(np.clip(light, 0.0, 1.0) * (_LEVELS - 1)).astype(np.intp)]


def hdr_to_sdr(frame: av.VideoFrame, trc: int, width: int, height: int) -> np.ndarray:
    """The ``width`` x ``height`` RGB uint8 picture of the HDR ``frame`` (see the module docstring).

    An untagged YCbCr matrix is taken as BT.2020 (the HDR formats use it); primaries are
    BT.2020 unless tagged BT.709.
    """
    src = "BT2020" if int(getattr(frame, "colorspace", 0) or 0) == _SPC_UNSPECIFIED else None
    rgb16 = frame.to_ndarray(width=width, height=height, format="rgb48le", interpolation="AREA",
                             src_colorspace=src)
    bt2020 = int(getattr(frame, "color_primaries", 0) or 0) != _PRI_BT709
    return to_sdr(rgb16, trc, bt2020=bt2020)
