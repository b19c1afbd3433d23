"""The hand-written COCO RLE decoder against masks encoded here from the published algorithm (maskApi.c)."""
import numpy as np
import pytest

from saliency_audit.data.cocorle import CocoRLEError, counts, decode, is_empty


def coco_encode(mask: np.ndarray) -> tuple[str, list[int]]:
    """(compressed string, run lengths) of ``mask``, written from the COCO API's specification: runs of the
    column-major pixels starting with 0s; each count (less the count two before, from the fourth on) in 5-bit
    groups, low first, as chr(48 + group), +32 while more follow, the last group's bit 16 its sign."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F").astype(np.int8)
    changes = np.flatnonzero(np.diff(np.concatenate(([0], flat))))  # where a run of the other value starts
    runs = np.diff(np.concatenate(([0], changes, [flat.size]))).tolist()  # the first run: 0s, maybe none
    chars = []
    for i, c in enumerate(runs):
        x = c - runs[i - 2] if i > 2 else c
        more = True
        while more:
            group = x & 0x1F
            x >>= 5  # arithmetic shift, as C's on a signed long
            more = x != -1 if group & 0x10 else x != 0
            chars.append(chr(48 + (group | 0x20 if more else group)))
    return "".join(chars), runs


def test_hand_worked_examples():
    # 3x2: column 0 is 0,1,0 and column 1 is 1,1,0 -> runs 1,1,1,2,1; the 4th and 5th written as 2-1, 1-1
    m = np.array([[0, 1], [1, 1], [0, 0]], dtype=bool)
    assert coco_encode(m) == ("11110", [1, 1, 1, 2, 1])
    assert np.array_equal(decode("11110", [3, 2]), m)
    # runs 0,5,3,1: the 4th is written as 1 - 5 = -4, one character 'L' (28 + 48: group 28 has the sign bit)
    assert counts("053L") == [0, 5, 3, 1]
    assert np.array_equal(decode("053L", [3, 3]), np.array([[1, 1, 0], [1, 1, 0], [1, 0, 1]], dtype=bool))
    # a long run in several characters: 6560960 = 0 + 6<<5 + 7<<10 + 8<<15 + 6<<20 ('P' 'V' 'W' 'X' carry on)
    assert counts("PVWX6") == [2320 * 2828]


def test_published_empty_masks():
    # the empty masks of CheXlocalize's sample gt_segmentations_val.json (a 2320x2828 and a 2022x2021 image)
    assert is_empty("PVWX6", [2320, 2828]) and is_empty("nefl3", [2022, 2021])
    assert not decode("nefl3", [2022, 2021]).any()
    with pytest.raises(CocoRLEError, match="cover 6560960 pixels, not the 2022x2021"):
        is_empty("PVWX6", [2022, 2021])


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (3, 7), (64, 48), (33, 65)])
def test_round_trip_random_masks(shape):
    rng = np.random.default_rng(sum(shape))
    for density in (0.0, 0.02, 0.5, 0.98, 1.0):
        m = rng.random(shape) < density
        text, runs = coco_encode(m)
        assert np.array_equal(decode(text, list(shape)), m)
        assert np.array_equal(decode(runs, list(shape)), m)  # the uncompressed form
        assert is_empty(text, list(shape)) == (not m.any())
        assert counts(text) == runs


def test_shapes_and_long_runs():
    # a blob in a large mask: counts far beyond one character, deltas both signs
    m = np.zeros((700, 900), dtype=bool)
    m[100:600, 200:203] = True
    m[300:310, 800:850] = True
    text, runs = coco_encode(m)
    assert max(runs) > 2**15 and np.array_equal(decode(text, [700, 900]), m)
    assert decode(text, [700, 900]).sum() == 500 * 3 + 10 * 50
    # the mask is column-major: the same runs read as 900x700 give the transpose's layout, not the same mask
    assert not np.array_equal(decode(text, [900, 700]).T, m)


@pytest.mark.parametrize("rle,shape,message", [
    ("11110", [2, 2], "runs cover 6 pixels, not the 2x2 = 4"),
    ("1p", [1, 1], r"character 'p' at position 2 is not a compressed RLE character"),
    ("1P", [1, 1], "truncated"),
    ("0L", [1, 1], "negative length"),
    ([1, -1], [1, 1], "negative length"),
    ("11110", [0, 6], r"size must be \[height, width\]"),
    ("o" * 14, [1, 1], "more than 13 characters"),
])
def test_malformed(rle, shape, message):
    with pytest.raises(CocoRLEError, match=message):
        decode(rle, shape)
