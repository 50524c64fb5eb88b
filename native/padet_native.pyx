# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Native post-processing kernels of the PADet SDK (built as ``padet_sdk._native``).

The algorithm is docs/postprocess_contract.md, step for step; ``padet_sdk/postprocess_numpy.py``
is the numpy copy the tests compare this module against. Everything here is meant to be called
through ``padet_sdk.native``, which validates and converts the inputs: the functions below
assume C-contiguous float32 arrays of the right shapes.

Numerics (the same in the numpy reference, so that both give the same boxes bit for bit):
- box decoding is computed in float64 from the float32 inputs and rounded to float32 once per
  decode; cxcywh -> xyxy and the clip to [0, 1] are float32;
- IoU, the soft-NMS decay factors and box areas are float64; the current scores are stored as
  float32 (rounded after every decay) and compared with float32 thresholds.
"""
import numpy as np

from padet_sdk.boxes import BBOX_XFORM_CLIP
from padet_sdk.options import NMS_METHODS

from libc.math cimport exp
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc, qsort

cdef enum Method:
    LINEAR = 0
    GAUSSIAN = 1
    HARD = 2

#: Method codes accepted by :func:`soft_nms` ("linear", "gaussian", "hard").
METHODS = {"linear": LINEAR, "gaussian": GAUSSIAN, "hard": HARD}

#: dw, dh are clamped to this before exp (see padet_sdk.boxes).
cdef double CLIP = BBOX_XFORM_CLIP

ctypedef struct Options:
    # padet_sdk.options.PostprocessOptions as the kernels read it: thresholds compared with
    # float32 scores are float32, IoU and sigma enter float64 arithmetic.
    float theta
    float conf
    int method
    double iou
    double sigma
    float nms_floor
    Py_ssize_t pre_nms_top_k
    Py_ssize_t max_det


cdef Options _unpack_options(object options) except *:
    """The one place where the Python options become the kernels' typed fields."""
    cdef Options o
    o.theta = options.theta
    o.conf = options.conf
    o.method = METHODS[NMS_METHODS[options.nms]]
    o.iou = options.iou
    o.sigma = options.sigma
    o.nms_floor = options.nms_floor
    o.pre_nms_top_k = options.pre_nms_top_k
    o.max_det = options.max_det
    return o

ctypedef struct Cand:
    int64_t key    # flat index (top-k) or position in the concatenated output (final sort)
    float score


# ---------------------------------------------------------------- boxes

cdef inline void _decode_one(const float* d, const float* a, double v0, double v1,
                             float* out) noexcept nogil:
    """SSD decode of one box: cxcywh out from deltas d on anchor a (float64 inside)."""
    cdef double tw = <double>d[2] * v1
    cdef double th = <double>d[3] * v1
    if tw > CLIP:
        tw = CLIP
    if th > CLIP:
        th = CLIP
    out[0] = <float>(<double>a[0] + <double>d[0] * v0 * <double>a[2])
    out[1] = <float>(<double>a[1] + <double>d[1] * v0 * <double>a[3])
    out[2] = <float>(<double>a[2] * exp(tw))
    out[3] = <float>(<double>a[3] * exp(th))


cdef inline float _clip01(float x) noexcept nogil:
    if x < 0.0:
        return 0.0
    if x > 1.0:
        return 1.0
    return x


cdef inline void _cxcywh_to_clipped_xyxy(const float* b, float* out) noexcept nogil:
    """float32 like the torch reference: x1 = cx - w/2, x2 = cx + w/2, then clip to [0, 1]."""
    cdef float hw = b[2] / 2.0
    cdef float hh = b[3] / 2.0
    out[0] = _clip01(b[0] - hw)
    out[1] = _clip01(b[1] - hh)
    out[2] = _clip01(b[0] + hw)
    out[3] = _clip01(b[1] + hh)


cdef inline double _area(const float* b) noexcept nogil:
    return (<double>b[2] - <double>b[0]) * (<double>b[3] - <double>b[1])


cdef inline double _iou(float ax1, float ay1, float ax2, float ay2, double area_a,
                        float bx1, float by1, float bx2, float by2, double area_b) noexcept nogil:
    """IoU of two xyxy boxes in float64; 0 when they do not overlap or the union is <= 0.

    The max/min pick one of the float32 inputs, so they are exact in float32; the rest is
    float64 (the numpy reference's ``box_iou`` does the same operations in the same order).
    """
    cdef double iw = <double>(ax2 if ax2 < bx2 else bx2) - <double>(ax1 if ax1 > bx1 else bx1)
    cdef double ih = <double>(ay2 if ay2 < by2 else by2) - <double>(ay1 if ay1 > by1 else by1)
    cdef double inter, union
    if not (iw > 0.0 and ih > 0.0):
        return 0.0
    inter = iw * ih
    union = area_a + area_b - inter
    if not (union > 0.0):
        return 0.0
    return inter / union


def decode_boxes(const float[:, ::1] deltas, const float[:, ::1] anchors, double v0, double v1):
    """(N, 4) float32 cxcywh boxes from (N, 4) deltas on (N, 4) cxcywh anchors."""
    cdef Py_ssize_t n = deltas.shape[0], i
    if deltas.shape[1] != 4 or anchors.shape[1] != 4 or anchors.shape[0] != n:
        raise ValueError("decode_boxes: deltas and anchors must both be (N, 4)")
    out = np.empty((n, 4), dtype=np.float32)
    cdef float[:, ::1] o = out
    with nogil:
        for i in range(n):
            _decode_one(&deltas[i, 0], &anchors[i, 0], v0, v1, &o[i, 0])
    return out


# ---------------------------------------------------------------- NMS kernels

ctypedef struct Work:
    # Structure of arrays over the boxes still in play (positions 0..n_rem-1, no order).
    double* area
    Py_ssize_t* idx
    float* x1
    float* y1
    float* x2
    float* y2
    float* s


cdef int _work_alloc(Work* w, Py_ssize_t n) noexcept nogil:
    """One allocation for all the arrays of ``w`` (n entries each); 0 on success."""
    cdef char* mem = <char*>malloc((n if n > 0 else 1) * (sizeof(double) + sizeof(Py_ssize_t) + 5 * sizeof(float)))
    if mem == NULL:
        return -1
    w.area = <double*>mem
    w.idx = <Py_ssize_t*>(mem + n * sizeof(double))
    w.x1 = <float*>(mem + n * (sizeof(double) + sizeof(Py_ssize_t)))
    w.y1 = w.x1 + n
    w.x2 = w.y1 + n
    w.y2 = w.x2 + n
    w.s = w.y2 + n
    return 0


cdef inline void _work_move(Work* w, Py_ssize_t src, Py_ssize_t dst) noexcept nogil:
    w.area[dst] = w.area[src]
    w.idx[dst] = w.idx[src]
    w.x1[dst] = w.x1[src]
    w.y1[dst] = w.y1[src]
    w.x2[dst] = w.x2[src]
    w.y2[dst] = w.y2[src]
    w.s[dst] = w.s[src]


cdef Py_ssize_t _soft_nms_kernel(const float* boxes, const float* scores_in, Py_ssize_t n,
                                 int method, double iou_threshold, double sigma,
                                 float score_threshold, Work* w,
                                 int64_t* keep_out, float* score_out) noexcept nogil:
    """Soft-NMS of n xyxy boxes; ``w`` is a caller-owned work area for at least n boxes.

    The boxes in play are compacted into ``w`` and removed by moving the last one into the
    hole, so their order is arbitrary: ties are broken on the input index itself. Picking the
    next box is fused into the decay loop: one pass over the boxes in play per emitted box.
    Returns how many boxes were emitted into keep_out / score_out.
    """
    cdef Py_ssize_t i, t, best = -1, n_rem = 0, n_keep = 0, best_i = 0
    cdef float px1, py1, px2, py2, st, best_s = 0.0
    cdef double pa, iou
    # A zero IoU leaves the score as it is, except for hard NMS with a negative threshold.
    cdef bint zero_iou_noop = not (method == HARD and 0.0 > iou_threshold)
    for i in range(n):
        if scores_in[i] >= score_threshold:
            w.idx[n_rem] = i
            w.s[n_rem] = scores_in[i]
            w.x1[n_rem] = boxes[4 * i]
            w.y1[n_rem] = boxes[4 * i + 1]
            w.x2[n_rem] = boxes[4 * i + 2]
            w.y2[n_rem] = boxes[4 * i + 3]
            w.area[n_rem] = _area(boxes + 4 * i)
            if best < 0 or w.s[n_rem] > w.s[best]:  # ascending i: '>' keeps the lowest index
                best = n_rem
            n_rem += 1
    while n_rem > 0:
        keep_out[n_keep] = w.idx[best]
        score_out[n_keep] = w.s[best]
        n_keep += 1
        px1, py1, px2, py2, pa = w.x1[best], w.y1[best], w.x2[best], w.y2[best], w.area[best]
        n_rem -= 1
        _work_move(w, n_rem, best)
        best = -1
        t = 0
        while t < n_rem:
            st = w.s[t]
            iou = _iou(px1, py1, px2, py2, pa, w.x1[t], w.y1[t], w.x2[t], w.y2[t], w.area[t])
            if iou != 0.0 or not zero_iou_noop:
                if method == LINEAR:
                    if iou > iou_threshold:
                        st = <float>(<double>st * (1.0 - iou))
                elif method == GAUSSIAN:
                    st = <float>(<double>st * exp(-(iou * iou) / sigma))
                elif iou > iou_threshold:
                    st = 0.0
                if not (st >= score_threshold):
                    n_rem -= 1
                    _work_move(w, n_rem, t)
                    continue
                w.s[t] = st
            if best < 0 or st > best_s or (st == best_s and w.idx[t] < best_i):
                best, best_s, best_i = t, st, w.idx[t]
            t += 1
    return n_keep


cdef int _cmp_nms_order(const void* pa, const void* pb) noexcept nogil:
    """Score descending, NaN after everything, ties by index ascending (a total order)."""
    cdef const Cand* a = <const Cand*>pa
    cdef const Cand* b = <const Cand*>pb
    cdef bint a_nan = a.score != a.score
    cdef bint b_nan = b.score != b.score
    if a_nan != b_nan:
        return 1 if a_nan else -1
    if not a_nan:
        if a.score > b.score:
            return -1
        if a.score < b.score:
            return 1
    return (a.key > b.key) - (a.key < b.key)


cdef int _cmp_key(const void* pa, const void* pb) noexcept nogil:
    cdef int64_t a = (<const Cand*>pa).key
    cdef int64_t b = (<const Cand*>pb).key
    return (a > b) - (a < b)


def soft_nms(const float[:, ::1] boxes, const float[::1] scores, int method,
             double iou_threshold, double sigma, float score_threshold):
    """Soft-NMS (contract §soft_nms) of (n, 4) xyxy boxes; the inputs are not modified.

    Returns (keep int64 (m,), new_scores float32 (m,)) in emit order.
    """
    cdef Py_ssize_t n = scores.shape[0], m = 0
    if boxes.shape[1] != 4 or boxes.shape[0] != n:
        raise ValueError("soft_nms: boxes must be (n, 4) and scores (n,)")
    if method not in (LINEAR, GAUSSIAN, HARD):
        raise ValueError(f"soft_nms: unknown method code {method}")
    keep = np.empty(n, dtype=np.int64)
    new_scores = np.empty(n, dtype=np.float32)
    if n == 0:
        return keep, new_scores
    cdef int64_t[::1] k = keep
    cdef float[::1] ns = new_scores
    cdef Work w
    if _work_alloc(&w, n) != 0:
        raise MemoryError()
    try:
        with nogil:
            m = _soft_nms_kernel(&boxes[0, 0], &scores[0], n, method, iou_threshold, sigma,
                                 score_threshold, &w, &k[0], &ns[0])
    finally:
        free(w.area)
    return keep[:m], new_scores[:m]


def nms(const float[:, ::1] boxes, const float[::1] scores, double iou_threshold):
    """Greedy hard NMS of (n, 4) xyxy boxes: keep int64 indices, by score descending
    (ties: lowest index first; NaN scores last). Suppressed boxes are removed outright."""
    cdef Py_ssize_t n = scores.shape[0], i, j, m = 0, p, q
    if boxes.shape[1] != 4 or boxes.shape[0] != n:
        raise ValueError("nms: boxes must be (n, 4) and scores (n,)")
    keep = np.empty(n, dtype=np.int64)
    if n == 0:
        return keep
    cdef int64_t[::1] k = keep
    cdef double[::1] area = np.empty(n, dtype=np.float64)
    cdef unsigned char[::1] suppressed = np.zeros(n, dtype=np.uint8)
    cdef Cand* order = <Cand*>malloc(n * sizeof(Cand))
    if order == NULL:
        raise MemoryError()
    try:
        with nogil:
            for i in range(n):
                order[i].key = i
                order[i].score = scores[i]
                area[i] = _area(&boxes[i, 0])
            qsort(order, n, sizeof(Cand), _cmp_nms_order)
            for i in range(n):
                p = order[i].key
                if suppressed[p]:
                    continue
                k[m] = p
                m += 1
                for j in range(i + 1, n):
                    q = order[j].key
                    if suppressed[q]:
                        continue
                    if _iou(boxes[p, 0], boxes[p, 1], boxes[p, 2], boxes[p, 3], area[p],
                            boxes[q, 0], boxes[q, 1], boxes[q, 2], boxes[q, 3], area[q]) > iou_threshold:
                        suppressed[q] = 1
    finally:
        free(order)
    return keep[:m]


# ---------------------------------------------------------------- full pipeline

cdef inline bint _ranks_after(Cand a, Cand b) noexcept nogil:
    """True when a comes after b in the pre-NMS order (score descending, flat ascending)."""
    return a.score < b.score or (a.score == b.score and a.key > b.key)


cdef inline void _heap_sift_down(Cand* h, Py_ssize_t size, Py_ssize_t i) noexcept nogil:
    """Min-heap on the pre-NMS order: the root is the candidate that ranks last."""
    cdef Py_ssize_t c, worst
    cdef Cand tmp
    while True:
        worst = i
        c = 2 * i + 1
        if c < size and _ranks_after(h[c], h[worst]):
            worst = c
        if c + 1 < size and _ranks_after(h[c + 1], h[worst]):
            worst = c + 1
        if worst == i:
            return
        tmp = h[i]
        h[i] = h[worst]
        h[worst] = tmp
        i = worst


cdef inline void _heap_push(Cand* h, Py_ssize_t size, Cand x) noexcept nogil:
    """Append x at h[size] (the heap has size entries before) and sift it up."""
    cdef Py_ssize_t i = size, parent
    while i > 0:
        parent = (i - 1) // 2
        if not _ranks_after(x, h[parent]):
            break
        h[i] = h[parent]
        i = parent
    h[i] = x


cdef Py_ssize_t _select_top_k(const float* apm, float theta, const float* cls, Py_ssize_t n,
                              Py_ssize_t c1, float conf, Py_ssize_t k, Cand* heap) noexcept nogil:
    """Selection steps 1-3: the k best (anchor, class) candidates, as a heap (any order).

    Candidates are visited in ascending flat index, so a later one with an equal score never
    displaces a kept one: this is the stable tie rule of the contract.
    """
    cdef Py_ssize_t i, c, size = 0, nc = c1 - 1, above
    cdef const float* row
    cdef float sc, worst
    cdef Cand x
    for i in range(n):
        if apm != NULL and not (apm[i] >= theta):
            continue
        row = cls + i * c1 + 1
        if size == k:  # full: skip a row with nothing above the worst kept score (vectorised)
            worst = heap[0].score
            above = 0
            for c in range(nc):
                above += row[c] > worst
            if above == 0:
                continue
        for c in range(nc):
            sc = row[c]
            if sc >= conf:
                if size < k:
                    x.key = i * nc + c
                    x.score = sc
                    _heap_push(heap, size, x)
                    size += 1
                elif sc > heap[0].score:
                    heap[0].key = i * nc + c
                    heap[0].score = sc
                    _heap_sift_down(heap, size, 0)
    return size


def postprocess(const float[:, ::1] anchors, apm_scores, apm_deltas,
                const float[:, ::1] cls_scores, const float[:, ::1] det_deltas,
                options, variances):
    """The single-image pipeline of the contract.

    anchors (N, 4) cxcywh; apm_scores (N,) or None; apm_deltas (N, 4) or None;
    cls_scores (N, C+1) with column 0 = background; det_deltas (N, 4); all float32 C-contiguous.
    options: a padet_sdk.options.PostprocessOptions (validated there); variances: (v0, v1).
    Returns boxes (M, 4) float32 xyxy clipped to [0, 1], scores (M,) float32, labels (M,) int64
    in 1..C and anchor indices (M,) int64, sorted by score descending (stable).
    """
    cdef Py_ssize_t n = anchors.shape[0], c1 = cls_scores.shape[1], nc = c1 - 1
    cdef Py_ssize_t size = 0, i, c, a, pos, m_total = 0, m_out, off
    cdef const float[::1] apm_s
    cdef const float[:, ::1] apm_d
    cdef const float* apm_ptr = NULL
    cdef const float* apm_d_ptr = NULL
    cdef float promoted[4]
    cdef float box[4]
    cdef Options o = _unpack_options(options)
    cdef double v0 = variances[0], v1 = variances[1]
    if nc < 1 or anchors.shape[1] != 4 or cls_scores.shape[0] != n or det_deltas.shape[0] != n \
            or det_deltas.shape[1] != 4:
        raise ValueError("postprocess: expected anchors (N, 4), cls_scores (N, C+1), det_deltas (N, 4)")
    if apm_scores is not None:
        apm_s = apm_scores
        if apm_s.shape[0] != n:
            raise ValueError("postprocess: apm_scores must be (N,)")
        if n:
            apm_ptr = &apm_s[0]
    if apm_deltas is not None:
        apm_d = apm_deltas
        if apm_d.shape[0] != n or apm_d.shape[1] != 4:
            raise ValueError("postprocess: apm_deltas must be (N, 4)")
        if n:
            apm_d_ptr = &apm_d[0, 0]

    cdef Py_ssize_t k = min(max(o.pre_nms_top_k, 0), n * nc)
    if k == 0 or o.max_det <= 0:
        return (np.empty((0, 4), np.float32), np.empty(0, np.float32),
                np.empty(0, np.int64), np.empty(0, np.int64))

    # Work arrays, all of length k (the kept candidates, class-major once bucketed).
    cdef float[:, ::1] cand_boxes = np.empty((k, 4), dtype=np.float32)
    cdef float[::1] cand_scores = np.empty(k, dtype=np.float32)
    cdef int64_t[::1] cand_anchor = np.empty(k, dtype=np.int64)
    cdef int64_t[::1] cand_label = np.empty(k, dtype=np.int64)
    cdef Py_ssize_t[::1] class_start = np.zeros(nc + 1, dtype=np.intp)
    cdef Work w
    cdef int64_t[::1] nms_keep = np.empty(k, dtype=np.int64)
    cdef float[::1] nms_scores = np.empty(k, dtype=np.float32)
    cdef Cand* heap = <Cand*>malloc(k * sizeof(Cand))
    if heap == NULL:
        raise MemoryError()
    if _work_alloc(&w, k) != 0:
        free(heap)
        raise MemoryError()
    try:
        with nogil:
            size = _select_top_k(apm_ptr, o.theta, &cls_scores[0, 0], n, c1, o.conf, k, heap)
            # Step 4: per class, ascending anchor index = ascending flat index.
            qsort(heap, size, sizeof(Cand), _cmp_key)
            for i in range(size):
                class_start[heap[i].key % nc + 1] += 1
            for c in range(nc):
                class_start[c + 1] += class_start[c]
            for i in range(size):  # counting sort by class, stable: keeps anchor order
                c = heap[i].key % nc
                a = heap[i].key // nc
                pos = class_start[c]
                class_start[c] += 1
                cand_scores[pos] = heap[i].score
                cand_anchor[pos] = a
                cand_label[pos] = c + 1
                if apm_d_ptr != NULL:
                    _decode_one(apm_d_ptr + 4 * a, &anchors[a, 0], v0, v1, promoted)
                else:
                    promoted[0] = anchors[a, 0]
                    promoted[1] = anchors[a, 1]
                    promoted[2] = anchors[a, 2]
                    promoted[3] = anchors[a, 3]
                _decode_one(&det_deltas[a, 0], promoted, v0, v1, box)
                _cxcywh_to_clipped_xyxy(box, &cand_boxes[pos, 0])
            for c in range(nc, 0, -1):  # the fill advanced each start to the next class's
                class_start[c] = class_start[c - 1]
            class_start[0] = 0
            # Soft-NMS class by class; results concatenated in class order, as positions.
            for c in range(nc):
                off = class_start[c]
                m_out = _soft_nms_kernel(&cand_boxes[off, 0], &cand_scores[off],
                                         class_start[c + 1] - off, o.method, o.iou, o.sigma,
                                         o.nms_floor, &w, &nms_keep[m_total],
                                         &nms_scores[m_total])
                for i in range(m_total, m_total + m_out):
                    heap[i].key = off + nms_keep[i]
                    heap[i].score = nms_scores[i]
                m_total += m_out
            # Step 5: stable sort by score descending = sort on (score desc, position asc).
            qsort(heap, m_total, sizeof(Cand), _cmp_nms_order)
        m_out = min(m_total, o.max_det)
        out_boxes = np.empty((m_out, 4), dtype=np.float32)
        out_scores = np.empty(m_out, dtype=np.float32)
        out_labels = np.empty(m_out, dtype=np.int64)
        out_anchor = np.empty(m_out, dtype=np.int64)
        _gather(heap, m_out, cand_boxes, cand_label, cand_anchor,
                out_boxes, out_scores, out_labels, out_anchor)
    finally:
        free(heap)
        free(w.area)
    return out_boxes, out_scores, out_labels, out_anchor


cdef void _gather(const Cand* order, Py_ssize_t m, const float[:, ::1] cand_boxes,
                  const int64_t[::1] cand_label, const int64_t[::1] cand_anchor,
                  float[:, ::1] boxes, float[::1] scores, int64_t[::1] labels,
                  int64_t[::1] anchor) noexcept:
    cdef Py_ssize_t i, p
    for i in range(m):
        p = order[i].key
        boxes[i, 0] = cand_boxes[p, 0]
        boxes[i, 1] = cand_boxes[p, 1]
        boxes[i, 2] = cand_boxes[p, 2]
        boxes[i, 3] = cand_boxes[p, 3]
        scores[i] = order[i].score
        labels[i] = cand_label[p]
        anchor[i] = cand_anchor[p]
