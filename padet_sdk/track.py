"""Multi-object tracking: give each detected object an identity that persists across frames.

:class:`Tracker` is ByteTrack (Zhang et al., ECCV 2022): a constant-velocity Kalman filter per
box, a first association of the confident detections to the tracks by IoU, then a second one of
the low-score detections (PADet's soft-NMS keeps many) to the tracks still unmatched, so that an
object whose score dips behind an occluder keeps its track. Tracks are born ``NEW``, become
``CONFIRMED`` when matched again, turn ``LOST`` when unmatched and are ``REMOVED`` after
``lost_buffer`` frames unseen; a removed identity is never given out again.

A lost track gets one more chance before the leftover detections start tracks: the buffered IoU
of C-BIoU (Yang et al., WACV 2023), both boxes widened by ``recover_buffer`` of their size per
frame the track has been lost (at most ``recover_max``), same class only. The Kalman prediction
of an object hidden for many frames drifts from where it comes out, so plain IoU misses it and a
new identity is born (on the tuning clips, seeds 10-13, both switches on true boxes were this).

It takes :class:`~padet_sdk.detections.Detections` and needs no detector, so it can be tested and
benchmarked on recorded or synthetic boxes; assignment is ``scipy.optimize.linear_sum_assignment``.

Kalman filter: the state of a box is (cx, cy, w, h) and their velocities. With ByteTrack's
diagonal noises the 8x8 covariance never couples two coordinates, so it is kept exactly as four
independent 2x2 (position, velocity) blocks per track — elementwise numpy over all tracks at
once instead of batched 8x8 matrix products.
"""
from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .boxes import box_iou
from .detections import TRACKED_DTYPE, Detections

if TYPE_CHECKING:
    from .frame_result import FrameResult

#: ByteTrack's noise weights: standard deviations as fractions of the box's width/height
STD_POSITION = 1.0 / 20
STD_VELOCITY = 1.0 / 160


class TrackState(IntEnum):
    """Life cycle of a track."""

    NEW = 0  # seen once; reported only once matched again (or in the first frame)
    CONFIRMED = 1  # matched in the latest frame
    LOST = 2  # unmatched for at most ``lost_buffer`` frames; may be found again with its identity
    REMOVED = 3  # unseen longer than ``lost_buffer``: dropped, its identity retired


# plain ints for the per-frame array comparisons (an IntEnum member costs an attribute lookup each)
_NEW, _CONFIRMED, _LOST = int(TrackState.NEW), int(TrackState.CONFIRMED), int(TrackState.LOST)


class Track(NamedTuple):
    """A snapshot of one live track (:attr:`Tracker.tracks`)."""

    track_id: int
    state: TrackState
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 px: the Kalman filter's estimate
    class_id: int  # of the latest matched detection
    score: float  # of the latest matched detection
    hits: int  # frames matched
    last_frame: int  # latest frame matched (1-based frame count of this tracker)


def _xyxy_to_cxcywh(b: np.ndarray) -> np.ndarray:
    return np.concatenate([(b[:, :2] + b[:, 2:]) / 2, np.maximum(b[:, 2:] - b[:, :2], 1e-3)], axis=1)


def _cxcywh_to_xyxy(s: np.ndarray) -> np.ndarray:
    return np.concatenate([s[:, :2] - s[:, 2:] / 2, s[:, :2] + s[:, 2:] / 2], axis=1)


def _scale(state: np.ndarray) -> np.ndarray:
    """(N, 4) w, h, w, h of (N, 4) cx, cy, w, h: what each coordinate's noise scales with."""
    return state[:, [2, 3, 2, 3]]


def _assign(cost: np.ndarray, max_cost: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(matched rows, matched cols, costs) of the cheapest assignment, pairs above ``max_cost`` dropped.

    Pairs over the limit are priced out rather than removed, so the solver first maximises the
    number of admissible pairs and then minimises their cost."""
    from scipy.optimize import linear_sum_assignment

    if cost.size == 0:
        empty = np.zeros(0, np.intp)
        return empty, empty, np.zeros(0)
    priced = np.where(cost <= max_cost, cost, 1e6)
    rows, cols = linear_sum_assignment(priced)
    ok = cost[rows, cols] <= max_cost
    return rows[ok], cols[ok], cost[rows[ok], cols[ok]]


@dataclass
class Tracker:
    """ByteTrack over :class:`~padet_sdk.detections.Detections`, one frame per :meth:`update`.

    Args:
        high_score: detections scoring at least this are "confident": first association, and
            only they start tracks.
        low_score: detections between this and ``high_score`` join the second association;
            below it they are ignored.
        new_track_score: a confident detection left unmatched starts a track if it scores at
            least this (default ``high_score + 0.1``, ByteTrack's ``det_thresh``).
        match_iou: minimum IoU of a first-association pair (a lost track found again included).
        low_match_iou: minimum IoU of a second-association pair (low-score detections).
        new_match_iou: minimum IoU for a NEW track's confirming match.
        lost_buffer: frames a track stays LOST (findable with its identity) before it is REMOVED:
            an object missed for up to this many frames in a row keeps its identity.
        class_cost: added to a pair's cost (1 - IoU) when the detection's class is not the
            track's: two overlapping objects of different classes keep their identities, while a
            class that flickers between frames still matches; >= 1 forbids such pairs, 0 is
            class-agnostic ByteTrack.
        trail_length: centre points kept per track for drawing (:attr:`trails`).
        birth_iou: a detection overlapping a tracked box (or a better new one) by more than this
            IoU starts no track (1 = off): PADet's soft-NMS keeps near-duplicates for AP.
        coast: for this many frames after a track's last match, report its predicted box
            (``anchor`` -1, its last score and class) instead of nothing, so that a detection
            missed now and then does not break a count or a trail (0 = ByteTrack: matched only).
        recover_buffer: a lost track and a confident detection left over by both associations
            are paired if their boxes, each widened on every side by this fraction of its size
            per frame lost, overlap by ``recover_iou`` (0 = off, plain ByteTrack).
        recover_max: the widening's cap (fraction of the size per side).
        recover_iou: minimum buffered IoU of such a pair.

    Identities are 1, 2, 3... per Tracker (:meth:`reset` starts again at 1).
    """

    high_score: float = 0.5
    low_score: float = 0.1
    new_track_score: float | None = None
    match_iou: float = 0.2
    low_match_iou: float = 0.5
    new_match_iou: float = 0.3
    lost_buffer: int = 30
    class_cost: float = 0.1
    trail_length: int = 30
    birth_iou: float = 0.3
    coast: int = 0
    recover_buffer: float = 0.05
    recover_max: float = 0.5
    recover_iou: float = 0.3

    def __post_init__(self) -> None:
        if not 0.0 <= self.low_score <= self.high_score <= 1.0:
            raise ValueError(f"need 0 <= low_score <= high_score <= 1, got {self.low_score} and {self.high_score}")
        if not self.class_cost >= 0:
            raise ValueError(f"class_cost must be >= 0, got {self.class_cost!r}")
        if not (self.recover_buffer >= 0 and self.recover_max >= 0):
            raise ValueError(f"recover_buffer and recover_max must be >= 0, got {self.recover_buffer!r} and {self.recover_max!r}")
        for name in ("match_iou", "low_match_iou", "new_match_iou", "birth_iou", "recover_iou"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)!r}")
        if int(self.coast) != self.coast or self.coast < 0:
            raise ValueError(f"coast must be a whole number of frames >= 0, got {self.coast!r}")
        if int(self.lost_buffer) != self.lost_buffer or self.lost_buffer < 0:
            raise ValueError(f"lost_buffer must be a whole number of frames >= 0, got {self.lost_buffer!r}")
        self.reset()

    def reset(self) -> None:
        """Forget every track; the next identity is 1 again."""
        self.frame = 0
        self._next_id = 1
        self._x = np.zeros((0, 4))  # cx, cy, w, h
        self._v = np.zeros((0, 4))  # their velocities, px per frame
        self._ppp = np.zeros((0, 4))  # covariance blocks: position-position,
        self._ppv = np.zeros((0, 4))  # position-velocity,
        self._pvv = np.zeros((0, 4))  # velocity-velocity, per coordinate
        self._id = np.zeros(0, np.int64)
        self._state = np.zeros(0, np.int8)
        self._cls = np.zeros(0, np.int64)
        self._score = np.zeros(0, np.float32)
        self._hits = np.zeros(0, np.int64)
        self._last = np.zeros(0, np.int64)
        self.trails: dict[int, deque[tuple[float, float]]] = {}

    # ---- Kalman filter (elementwise over tracks and coordinates) ------------------------------
    def _predict(self) -> None:
        lost = self._state == _LOST
        self._v[lost, 2:] = 0.0  # a lost box keeps its size (ByteTrack)
        s = _scale(self._x)
        self._x += self._v
        self._ppp += 2 * self._ppv + self._pvv + (STD_POSITION * s) ** 2
        self._ppv += self._pvv
        self._pvv += (STD_VELOCITY * s) ** 2

    def _correct(self, rows: np.ndarray, z: np.ndarray) -> None:
        """Kalman update of tracks ``rows`` with measured (K, 4) cx, cy, w, h ``z``."""
        ppp, ppv = self._ppp[rows], self._ppv[rows]
        s = ppp + (STD_POSITION * _scale(self._x[rows])) ** 2
        kp, kv = ppp / s, ppv / s
        y = z - self._x[rows]
        self._x[rows] += kp * y
        self._v[rows] += kv * y
        self._ppp[rows] = (1 - kp) * ppp
        self._ppv[rows] = (1 - kp) * ppv
        self._pvv[rows] -= kv * ppv

    def _append(self, z: np.ndarray, cls: np.ndarray, score: np.ndarray, state: int) -> None:
        n = len(z)
        s = _scale(z)
        ids = np.arange(self._next_id, self._next_id + n)
        self._next_id += n
        self._x = np.concatenate([self._x, z])
        self._v = np.concatenate([self._v, np.zeros((n, 4))])
        self._ppp = np.concatenate([self._ppp, (2 * STD_POSITION * s) ** 2])
        self._ppv = np.concatenate([self._ppv, np.zeros((n, 4))])
        self._pvv = np.concatenate([self._pvv, (10 * STD_VELOCITY * s) ** 2])
        self._id = np.concatenate([self._id, ids])
        self._state = np.concatenate([self._state, np.full(n, state, np.int8)])
        self._cls = np.concatenate([self._cls, cls])
        self._score = np.concatenate([self._score, score])
        self._hits = np.concatenate([self._hits, np.ones(n, np.int64)])
        self._last = np.concatenate([self._last, np.full(n, self.frame)])

    def _keep(self, keep: np.ndarray) -> None:
        for name in ("_x", "_v", "_ppp", "_ppv", "_pvv", "_id", "_state", "_cls", "_score", "_hits", "_last"):
            setattr(self, name, getattr(self, name)[keep])

    # ---- association ------------------------------------------------------------------------
    def _match(
        self, tracks: np.ndarray, dets: np.ndarray, boxes: np.ndarray, cls: np.ndarray, min_iou: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(track rows, detection indices) paired by IoU of predicted and detected boxes."""
        if len(tracks) == 0 or len(dets) == 0:
            return np.zeros(0, np.intp), np.zeros(0, np.intp)
        cost = 1.0 - box_iou(self._pred[tracks], boxes[dets])
        if self.class_cost:
            cost += self.class_cost * (self._cls[tracks][:, None] != cls[dets][None, :])
        r, c, _ = _assign(cost, 1.0 - min_iou)
        return tracks[r], dets[c]

    def _recover(self, tracks: np.ndarray, dets: np.ndarray, boxes: np.ndarray, cls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lost track rows, detection indices) paired by buffered IoU, the same class only."""
        if len(tracks) == 0 or len(dets) == 0 or self.recover_buffer == 0:
            return np.zeros(0, np.intp), np.zeros(0, np.intp)
        b = np.minimum(self.recover_buffer * (self.frame - self._last[tracks]), self.recover_max)[:, None, None]
        t, d = self._pred[tracks][:, None, :], boxes[dets][None, :, :]  # (T, 1, 4), (1, D, 4)
        t_wh, d_wh = t[..., 2:] - t[..., :2], d[..., 2:] - d[..., :2]
        t_lo, t_hi = t[..., :2] - b * t_wh, t[..., 2:] + b * t_wh  # (T, 1, 2)
        d_lo, d_hi = d[..., :2] - b * d_wh, d[..., 2:] + b * d_wh  # (T, D, 2)
        inter = np.clip(np.minimum(t_hi, d_hi) - np.maximum(t_lo, d_lo), 0, None).prod(-1)
        union = (t_hi - t_lo).prod(-1) + (d_hi - d_lo).prod(-1) - inter
        cost = 1.0 - inter / np.maximum(union, 1e-9)
        cost[self._cls[tracks][:, None] != cls[dets][None, :]] = np.inf
        r, c, _ = _assign(cost, 1.0 - self.recover_iou)
        return tracks[r], dets[c]

    def _not_duplicates(self, born: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """The candidates (best score first) overlapping no live track nor a better candidate by
        more than ``birth_iou``: soft-NMS keeps near-duplicates that would each start a track."""
        cand = boxes[born]
        live = _cxcywh_to_xyxy(self._x[self._state != _LOST])
        ok = (box_iou(cand, live).max(axis=1) <= self.birth_iou) if len(live) else np.ones(len(born), bool)
        among = box_iou(cand, cand)
        for k in range(len(born)):
            if ok[k]:
                ok[k + 1 :] &= among[k, k + 1 :] <= self.birth_iou
        return born[ok]

    def _with_coasting(self, out: Detections, rows: np.ndarray, boxes: np.ndarray) -> Detections:
        """``out`` plus the predicted boxes of lost tracks ``rows`` (anchor -1, the track's last
        score and class), kept in score order."""
        extra = np.zeros(len(rows), TRACKED_DTYPE)
        extra["box"], extra["score"], extra["class_id"] = boxes, self._score[rows], self._cls[rows]
        extra["anchor"], extra["track_id"] = -1, self._id[rows]
        data = np.concatenate([out.data, extra])
        return Detections(data[np.argsort(-data["score"], kind="stable")], out.class_names, out.image_size, out.timing)

    def update(self, detections: Detections) -> Detections:
        """Track one frame: the detections that belong to a confirmed track, each with its
        ``track_id`` (:meth:`Detections.with_track_ids`), in their original order. Detections
        of a track just born are left out until it is confirmed (except in the first frame)."""
        self.frame += 1
        boxes = detections.boxes.astype(np.float64)
        scores, cls = detections.scores, detections.class_ids.astype(np.int64)
        high = np.flatnonzero(scores >= self.high_score)
        low = np.flatnonzero((scores >= self.low_score) & (scores < self.high_score))
        self._predict()
        self._pred = _cxcywh_to_xyxy(self._x)  # predicted boxes, x1 y1 x2 y2, for the three associations
        rows = np.arange(len(self._id))
        state = self._state.copy()  # the states at the start of this frame
        # 1. confident detections <-> tracked and lost tracks
        pool = rows[(state == _CONFIRMED) | (state == _LOST)]
        t1, d1 = self._match(pool, high, boxes, cls, self.match_iou)
        matched = np.zeros(len(rows), bool)  # masks rather than np.setdiff1d: this runs every frame
        matched[t1] = True
        claimed = np.zeros(len(scores), bool)
        claimed[d1] = True
        # 2. low-score detections <-> the tracks still unmatched (tracked or lost: an object coming
        #    out from behind another often scores low at first)
        left = rows[((state == _CONFIRMED) | (state == _LOST)) & ~matched]
        t2, d2 = self._match(left, low, boxes, cls, self.low_match_iou)
        matched[t2] = True
        # 2b. the confident rest <-> lost tracks still unmatched, by buffered IoU
        rest = high[~claimed[high]]
        t2b, d2b = self._recover(rows[(state == _LOST) & ~matched], rest, boxes, cls)
        claimed[d2b] = True
        # 3. the confident rest <-> tracks born last frame; unmatched ones die at once
        rest = high[~claimed[high]]
        t3, d3 = self._match(rows[state == _NEW], rest, boxes, cls, self.new_match_iou)
        claimed[d3] = True
        t, d = np.concatenate([t1, t2, t2b, t3]), np.concatenate([d1, d2, d2b, d3])
        matched[t] = True
        if len(t):
            self._correct(t, _xyxy_to_cxcywh(boxes[d]))
            self._state[t] = _CONFIRMED
            self._cls[t], self._score[t] = cls[d], scores[d]
            self._hits[t] += 1
            self._last[t] = self.frame
        out_det, out_id = d, self._id[t]  # matched tracks are never the ones removed below
        self._state[~matched & (state == _CONFIRMED)] = _LOST
        gone = (~matched & (state == _NEW)) | (self.frame - self._last > self.lost_buffer)
        for tid in self._id[gone].tolist():
            self.trails.pop(tid, None)
        self._keep(~gone)
        coasting = np.flatnonzero((self._state == _LOST) & (self.frame - self._last <= self.coast))
        coast_boxes = self._pred[~gone][coasting]
        # 4. births: confident detections nobody claimed
        new_track_score = min(self.high_score + 0.1, 1.0) if self.new_track_score is None else self.new_track_score
        born = rest[~claimed[rest] & (scores[rest] >= new_track_score)]
        if len(born) and self.birth_iou < 1.0:
            born = self._not_duplicates(born, boxes)
        if len(born):
            first = self.frame == 1
            self._append(_xyxy_to_cxcywh(boxes[born]), cls[born], scores[born], _CONFIRMED if first else _NEW)
            if first:
                out_det = np.concatenate([out_det, born])
                out_id = np.concatenate([out_id, self._id[-len(born):]])
        order = np.argsort(out_det, kind="stable")
        out = detections[out_det[order]].with_track_ids(out_id[order])
        if len(coasting):
            out = self._with_coasting(out, coasting, coast_boxes)
        for tid, (cx, cy) in zip(out.track_ids.tolist(), ((out.boxes[:, :2] + out.boxes[:, 2:]) / 2).tolist()):
            self.trails.setdefault(tid, deque(maxlen=self.trail_length)).append((cx, cy))
        return out

    def __call__(self, result: "FrameResult") -> "FrameResult":
        """The stream stage (:func:`padet_sdk.stream`): the frame's detections replaced by the
        tracked ones (all of them stay in ``untracked``, e.g. for scoring AP), and the trails of
        the tracks in it for drawing."""
        tracked = self.update(result.detections)
        trails = {tid: list(self.trails[tid]) for tid in tracked.track_ids.tolist()}
        return dataclasses.replace(result, detections=tracked, trails=trails, untracked=result.detections, _annotated=None)

    @property
    def tracks(self) -> list[Track]:
        """Snapshots of the live (NEW, CONFIRMED, LOST) tracks, by identity."""
        boxes = _cxcywh_to_xyxy(self._x)
        return [
            Track(int(self._id[i]), TrackState(int(self._state[i])), tuple(float(v) for v in boxes[i]),  # type: ignore[arg-type]
                  int(self._cls[i]), float(self._score[i]), int(self._hits[i]), int(self._last[i]))
            for i in np.argsort(self._id)
        ]  # fmt: skip

    def state_of(self, track_id: int) -> TrackState:
        """The state of identity ``track_id``; REMOVED once it has been dropped (or never existed)."""
        hit = np.flatnonzero(self._id == track_id)
        return TrackState(int(self._state[hit[0]])) if len(hit) else TrackState.REMOVED


__all__ = ["Tracker", "Track", "TrackState", "STD_POSITION", "STD_VELOCITY"]
