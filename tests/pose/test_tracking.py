import numpy as np
import pytest

from pose.tracking import bbox_iou, fill_gaps, select_performer

SMALL = (10, 10, 60, 110)   # small and off-centre (top-left)
BIG = (300, 150, 500, 450)  # large and central in a 800x600 frame


def det(box, score=0.9):
    return {"bbox": box, "score": score}


def shifted(box, dx):
    return (box[0] + dx, box[1], box[2] + dx, box[3])


def test_iou():
    assert bbox_iou((0, 0, 2, 2), (0, 0, 2, 2)) == pytest.approx(1.0)
    assert bbox_iou((0, 0, 2, 2), (1, 0, 3, 2)) == pytest.approx(1 / 3)
    assert bbox_iou((0, 0, 1, 1), (5, 5, 6, 6)) == 0.0


def test_larger_central_person_chosen_consistently():
    frames = []
    for f in range(8):
        small = det(shifted(SMALL, 2 * f), score=0.99)
        big = det(shifted(BIG, 3 * f), score=0.6)
        if f < 2:
            frames.append([small])  # only the small, off-centre one at first
        elif f % 2:
            frames.append([big, small])  # order of the detections changes from frame to frame
        else:
            frames.append([small, big])
    chosen = select_performer(frames, frame_size=(800, 600))
    assert chosen[:2] == [None, None]
    for f in range(2, 8):
        assert frames[f][chosen[f]]["bbox"] == shifted(BIG, 3 * f)
    assert select_performer(frames) == chosen  # frame from the boxes' extent: same choice


def test_link_across_empty_frame():
    frames = [[det(shifted(BIG, 5 * f)), det(SMALL)] if f != 3 else [] for f in range(7)]
    chosen = select_performer(frames, frame_size=(800, 600))
    assert chosen == [0, 0, 0, None, 0, 0, 0]


def test_track_beats_single_large_frame():
    # a person who is central for the whole recording beats one who is huge in a single frame
    frames = [[det(BIG)] for _ in range(6)]
    frames[2].append(det((0, 0, 800, 300)))
    chosen = select_performer(frames, frame_size=(800, 600))
    assert chosen == [0] * 6


def test_nobody_anywhere():
    assert select_performer([[], []]) == [None, None]
    assert select_performer([]) == []


def test_fill_gaps():
    F = 12
    t = np.arange(F, dtype=float)
    xyz = np.stack([np.stack([t, 2 * t, -t], axis=-1)] * 2, axis=1)  # (F, 2, 3), linear in time
    holes = xyz.copy()
    holes[[0, 1], 0] = np.nan        # leading
    holes[[4, 5], 0] = np.nan        # 2-frame gap
    holes[[8, 9, 10], 0] = np.nan    # 3-frame gap
    holes[11, 1] = np.nan            # trailing
    holes[3, 1, 2] = np.nan          # one NaN coordinate makes the joint missing
    out = fill_gaps(holes, max_gap=2)
    np.testing.assert_allclose(out[[4, 5], 0], xyz[[4, 5], 0])
    np.testing.assert_allclose(out[3, 1], xyz[3, 1])
    assert np.isnan(out[[0, 1], 0]).all()
    assert np.isnan(out[[8, 9, 10], 0]).all()
    assert np.isnan(out[11, 1]).all()
    np.testing.assert_array_equal(out[2:4, 0], xyz[2:4, 0])
    assert np.isnan(holes[4, 0]).all()  # input untouched


def test_fill_gaps_zero_is_copy():
    xyz = np.full((4, 1, 3), np.nan)
    xyz[[0, 3]] = 1.0
    out = fill_gaps(xyz, max_gap=0)
    np.testing.assert_array_equal(out, xyz)
    assert out is not xyz
    np.testing.assert_allclose(fill_gaps(xyz, max_gap=2), np.ones((4, 1, 3)))
    with pytest.raises(ValueError):
        fill_gaps(xyz, max_gap=-1)
