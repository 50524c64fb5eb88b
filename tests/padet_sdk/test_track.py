"""The ByteTrack tracker on synthetic box sequences (no detector): identities through occlusions,
the lost buffer, and one identity per object."""
from __future__ import annotations

import numpy as np
import pytest

from padet_sdk.detections import DETECTION_DTYPE, Detections
from padet_sdk.track import Tracker, TrackState


def dets(boxes, scores=None, classes=None) -> Detections:
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    data = np.zeros(len(boxes), DETECTION_DTYPE)
    data["box"] = boxes
    data["score"] = 0.9 if scores is None else scores
    data["class_id"] = 0 if classes is None else classes
    return Detections(data, ("a", "b"), (480, 640))


def box_at(t: int, x0: float, y0: float, vx: float, vy: float = 0.0, w: float = 40, h: float = 60) -> list[float]:
    x, y = x0 + vx * t, y0 + vy * t
    return [x, y, x + w, y + h]


def run(tracker: Tracker, frames) -> list[dict[int, int]]:
    """Per frame, {object index: track id} (objects given as (index, box, score))."""
    out = []
    for objs in frames:
        d = dets([b for _, b, _ in objs], [s for _, _, s in objs]) if objs else dets([])
        tracked = tracker.update(d)
        ids = tracked.track_ids.tolist()
        assert len(set(ids)) == len(ids), f"one identity on two objects: {ids}"
        by_box = {tuple(np.float32(v) for v in b): k for k, b, _ in objs}
        out.append({by_box[tuple(bb)]: i for bb, i in zip(map(tuple, tracked.boxes), ids)})
    return out


def test_one_identity_through_a_five_frame_occlusion():
    frames = []
    for t in range(30):
        objs = [(1, box_at(t, 300, 300, -3.0, 1.0), 0.85)]  # a second object that stays visible
        if not 10 <= t < 15:  # object 0 hidden for 5 frames while it keeps moving
            objs.append((0, box_at(t, 20, 100, 6.0, 2.0), 0.9))
        frames.append(objs)
    seen = run(Tracker(lost_buffer=10), frames)
    ids0 = {s[0] for s in seen if 0 in s}
    assert ids0 == {seen[0][0]} and seen[15][0] == seen[0][0]
    assert {s[1] for s in seen} == {seen[0][1]} != ids0


def test_low_score_detections_keep_a_track_alive():
    """The second association: scores dipping under high_score (an object partly hidden) still
    match the track, and are reported with its identity."""
    frames = [[(0, box_at(t, 50, 50, 5.0), 0.3 if 8 <= t < 14 else 0.9)] for t in range(20)]
    tracker = Tracker(high_score=0.5, low_score=0.1)
    seen = run(tracker, frames)
    assert all(s == {0: 1} for s in seen)
    assert [s for s in run(Tracker(high_score=0.5, low_score=0.4), frames)][8:14] == [{}] * 6  # ignored below low_score


@pytest.mark.parametrize("gap, same", [(5, True), (6, False)])
def test_no_reidentification_after_the_lost_buffer(gap, same):
    tracker = Tracker(lost_buffer=5)
    frames = [[(0, box_at(t, 20, 100, 4.0), 0.9)] if not 10 <= t < 10 + gap else [] for t in range(30)]
    seen = run(tracker, frames)
    first, after = seen[9][0], seen[10 + gap + 1][0]  # births are confirmed one frame late
    assert (after == first) is same
    if not same:
        assert after > first and tracker.state_of(first) is TrackState.REMOVED  # never given out again


def test_track_states_new_confirmed_lost_removed():
    tracker = Tracker(lost_buffer=2)
    assert len(tracker.update(dets([[0, 0, 10, 10]]))) == 1  # frame 1: confirmed at once
    assert len(tracker.update(dets([[0, 0, 10, 10], [100, 100, 140, 150]]))) == 1  # a new object: NEW, not shown
    new_id = max(t.track_id for t in tracker.tracks)
    assert tracker.state_of(new_id) is TrackState.NEW
    out = tracker.update(dets([[0, 0, 10, 10], [101, 100, 141, 150]]))
    assert out.track_ids.tolist() == [1, new_id] and tracker.state_of(new_id) is TrackState.CONFIRMED
    tracker.update(dets([[0, 0, 10, 10]]))
    assert tracker.state_of(new_id) is TrackState.LOST
    tracker.update(dets([[0, 0, 10, 10]]))
    assert tracker.state_of(new_id) is TrackState.LOST
    tracker.update(dets([[0, 0, 10, 10]]))
    assert tracker.state_of(new_id) is TrackState.REMOVED and [t.track_id for t in tracker.tracks] == [1]
    tracker.update(dets([[0, 0, 10, 10], [500, 10, 540, 60]]))  # a NEW track not matched again dies at once
    born = max(t.track_id for t in tracker.tracks)
    tracker.update(dets([[0, 0, 10, 10]]))
    assert tracker.state_of(born) is TrackState.REMOVED
    tracker.reset()
    assert tracker.update(dets([[5, 5, 9, 9]])).track_ids.tolist() == [1]


def test_never_one_identity_on_two_objects_among_many_crossing_objects():
    rng = np.random.default_rng(0)
    n, t_max = 40, 60
    start = rng.uniform([0, 0], [600, 420], (n, 2))
    vel = rng.uniform(-6, 6, (n, 2))
    size = rng.uniform(20, 60, (n, 2))
    tracker = Tracker()
    identity: dict[int, set[int]] = {}
    for t in range(t_max):
        keep = rng.random(n) > 0.15  # dropped detections
        xy = start + vel * t + rng.normal(0, 1.0, (n, 2))
        boxes = np.concatenate([xy, xy + size], axis=1)[keep]
        scores = rng.uniform(0.2, 1.0, n).astype(np.float32)[keep]
        out = tracker.update(dets(boxes, scores))
        ids = out.track_ids.tolist()
        assert len(ids) == len(set(ids))
        assert out.boxes.tolist() == boxes.astype(np.float32)[np.isin(np.arange(len(boxes)), _rows(boxes, out.boxes))].tolist()
        for k, tid in zip(np.flatnonzero(keep)[_rows(boxes, out.boxes)], ids):
            identity.setdefault(tid, set()).add(int(k))
    # most identities follow one object only (switches happen where boxes cross)
    assert np.mean([len(v) == 1 for v in identity.values()]) > 0.8


def _rows(boxes: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Row indices of ``boxes`` of each of ``chosen`` (output boxes are input boxes)."""
    b32 = boxes.astype(np.float32)
    return np.array([int(np.flatnonzero((b32 == c).all(1))[0]) for c in chosen], np.intp)


def test_classes_are_kept_apart_on_request():
    a, b = [0, 0, 40, 40], [2, 0, 42, 40]
    for class_cost, expect in ((0.0, [1, 1]), (0.1, [1, 1]), (1.0, [1, 2])):  # IoU 0.9: a flicker still matches at 0.1
        tracker = Tracker(class_cost=class_cost)
        first = tracker.update(dets([a], classes=[0])).track_ids.tolist()
        tracker.update(dets([b], classes=[1]))
        third = tracker.update(dets([b], classes=[1])).track_ids.tolist()
        assert [first[0], third[0]] == expect


def test_a_near_duplicate_starts_no_track():
    """Soft-NMS keeps a second box on one object; it must not become a second identity."""
    obj, dup = [100, 100, 160, 200], [110, 110, 170, 210]  # IoU 0.6 with obj
    for birth_iou, tracks in ((0.3, 1), (1.0, 2)):
        tracker = Tracker(birth_iou=birth_iou)
        tracker.update(dets([obj]))
        for t in range(3):
            tracker.update(dets([obj, dup], [0.9, 0.8]))
        assert len(tracker.tracks) == tracks
    tracker = Tracker()
    assert tracker.update(dets([obj, dup], [0.9, 0.8])).track_ids.tolist() == [1]  # also among new ones


def test_coasting_reports_predicted_boxes_through_a_short_gap():
    frames = [[box_at(t, 20, 100, 4.0)] if t not in (6, 7, 8) else [] for t in range(12)]
    for coast, shown in ((0, []), (2, [6, 7])):
        tracker = Tracker(coast=coast)
        seen = []
        for t, boxes in enumerate(frames):
            out = tracker.update(dets(boxes, [0.9] * len(boxes)))
            if not boxes and len(out):
                seen.append(t)
                assert out.track_ids.tolist() == [1] and out.anchor_ids.tolist() == [-1]
                # the velocity the filter learnt in 6 frames (3.8 of 4 px per frame): within 2 px
                np.testing.assert_allclose(out.boxes[0], box_at(t, 20, 100, 4.0), atol=2.0)
        assert seen == shown
        assert tracker.update(dets([box_at(12, 20, 100, 4.0)])).track_ids.tolist() == [1]


def _slowed_down_behind_an_occluder(cls_after: int = 0, dx_after: float = 0.0):
    """An object at 6 px/frame hidden for frames 20-34, during which it slows to 4 px/frame: it
    comes out 32 px behind the Kalman prediction (IoU 0.11 for 40 px wide boxes), plus
    ``dx_after`` (-60: 92 px behind, no overlap even widened); a second object stays visible far away."""
    frames = []
    for t in range(45):
        x = 20 + 6 * t if t < 20 else 20 + 6 * 20 + 4 * (t - 20) + dx_after
        objs = [] if 20 <= t < 35 else [([x, 100, x + 40, 160], 0.9, 0 if t < 20 else cls_after)]
        frames.append(objs + [([400, 300, 440, 360], 0.9, 0)])
    return frames


def _ids_of_moving_object(tracker: Tracker, frames) -> list[int]:
    """The identity of the box left of x = 380 in every frame it is reported."""
    ids = []
    for objs in frames:
        out = tracker.update(dets([b for b, _, _ in objs], [s for _, s, _ in objs], [c for _, _, c in objs]))
        ids += [i for b, i in zip(out.boxes.tolist(), out.track_ids.tolist()) if b[0] < 380]
    return ids


def test_a_lost_track_is_found_again_by_buffered_iou_after_its_prediction_drifted():
    frames = _slowed_down_behind_an_occluder()
    assert set(_ids_of_moving_object(Tracker(), frames)) == {1}
    plain = _ids_of_moving_object(Tracker(recover_buffer=0.0), frames)  # ByteTrack: a new identity
    assert plain[:20] == [1] * 20 and set(plain[20:]) == {3}


@pytest.mark.parametrize("cls_after, dx_after", [(1, 0.0), (0, -60.0)])
def test_buffered_iou_recovers_neither_another_class_nor_a_far_box(cls_after, dx_after):
    ids = _ids_of_moving_object(Tracker(), _slowed_down_behind_an_occluder(cls_after, dx_after))
    assert ids[:20] == [1] * 20 and set(ids[20:]) == {3}


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="low_score"):
        Tracker(high_score=0.3, low_score=0.5)
    with pytest.raises(ValueError, match="lost_buffer"):
        Tracker(lost_buffer=-1)
    with pytest.raises(ValueError, match="coast"):
        Tracker(coast=1.5)
    with pytest.raises(ValueError, match="match_iou"):
        Tracker(match_iou=0.0)
    with pytest.raises(ValueError, match="recover_buffer"):
        Tracker(recover_buffer=-0.1)
    with pytest.raises(ValueError, match="recover_iou"):
        Tracker(recover_iou=1.5)


def test_the_blockwise_kalman_filter_equals_the_full_8x8_one():
    """The tracker keeps the covariance as four 2x2 blocks; the textbook 8x8 filter (state cx, cy,
    w, h and velocities, ByteTrack's noises) must give the same means and covariances."""
    from padet_sdk.track import STD_POSITION as wp, STD_VELOCITY as wv

    rng = np.random.default_rng(3)
    z_seq = [np.array([100 + 5 * t, 80 + 2 * t, 40 + 0.5 * t, 60 - 0.3 * t]) + rng.normal(0, 1.5, 4) for t in range(12)]
    F = np.eye(8)
    F[:4, 4:] = np.eye(4)
    H = np.eye(4, 8)
    scale = lambda m: np.array([m[2], m[3], m[2], m[3]])  # noqa: E731
    to_box = lambda z: [z[0] - z[2] / 2, z[1] - z[3] / 2, z[0] + z[2] / 2, z[1] + z[3] / 2]  # noqa: E731

    def measured(z: np.ndarray) -> np.ndarray:
        """cx, cy, w, h of the box as the tracker gets it (float32 x1, y1, x2, y2)."""
        b = np.array(to_box(z), np.float32).astype(np.float64)
        return np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]])

    z0 = measured(z_seq[0])
    mean = np.concatenate([z0, np.zeros(4)])
    P = np.diag(np.concatenate([(2 * wp * scale(z0)) ** 2, (10 * wv * scale(z0)) ** 2]))
    tracker = Tracker()
    tracker.update(dets([to_box(z_seq[0])]))
    for z in z_seq[1:]:
        Q = np.diag(np.concatenate([(wp * scale(mean)) ** 2, (wv * scale(mean)) ** 2]))
        mean, P = F @ mean, F @ P @ F.T + Q
        S = H @ P @ H.T + np.diag((wp * scale(mean)) ** 2)
        K = P @ H.T @ np.linalg.inv(S)
        mean, P = mean + K @ (measured(z) - H @ mean), (np.eye(8) - K @ H) @ P
        assert len(tracker.update(dets([to_box(z)]))) == 1
        # both float64; the 8x8 products round differently: 1e-9 relative is float64 noise, not a bias
        np.testing.assert_allclose(tracker._x[0], mean[:4], rtol=1e-9)
        np.testing.assert_allclose(tracker._v[0], mean[4:], rtol=1e-9, atol=1e-9)
        for block, full in ((tracker._ppp, P[:4, :4]), (tracker._ppv, P[:4, 4:]), (tracker._pvv, P[4:, 4:])):
            np.testing.assert_allclose(np.diag(block[0]), full, rtol=1e-9, atol=1e-9)
