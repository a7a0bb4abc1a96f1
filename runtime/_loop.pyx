# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The compiled search loop: same semantics as `reference_loop.decode`, token for token.

What makes it fast:

* every buffer is preallocated once per decode for the most rows it can need (B x beam);
* each state has two buffers; step t writes into the one step t-1 read from, and the two
  prepared IOBindings (A: buffer 0 -> 1, B: 1 -> 0) alternate, so state is never copied;
  a binding is re-bound only when the row count N changes (start-up expansion, rows
  dropped); token/row/batch_of_row are written in place into the bound input buffers;
* step 0 reads the initial states straight from the encoder outputs (no copy);
* the memory tensors are bound once per decode, never copied per beam;
* candidate selection, finished hypotheses and back-pointers are typed C loops; the
  hypotheses are rebuilt from back-pointers only once, at the end;
* `run_with_iobinding(binding, None)`: no RunOptions object (it costs ~34 us a call);
* bindings and runs go to ORT's C++ binding objects directly (`_Binder`): the Python wrappers
  make a new device object for every bind call and check for WebGPU graph capture on every run,
  ~6 us a bind and ~2 us a run; the public API stays the fallback when those objects are absent.

On the "cuda" device states, memory and logprobs live on the GPU as OrtValues and only
topk outputs and attention come back to the host (logprobs too when sampling, forcing a
prefix or applying penalties). That path is written to the ORT API but has not been run
on a GPU.

Forced prefixes and penalties (semantics in `reference_loop`) stay off the default path:
the prefix is a [B, P] id table read by one C test per row; with penalties on, each row's
history is kept in a double buffer (copied from its parent row whenever a row is
produced), `loop_common.apply_penalties` rewrites the host logprobs buffer in place and
`loop_common.host_topk` refills the TopK buffers from it, so the rest of the loop reads
the same buffers as without penalties.
"""

import threading
import time

import numpy as np

from libc.math cimport pow
from libc.stdint cimport int64_t
from libc.string cimport memcpy

from .loop_common import (
    NP_DTYPES, apply_penalties, batch_and_length, check_prefix, check_search, has_penalties, host_topk, initial_states,
    make_rng, sample_rows, topk_width,
)
from .manifest import (
    ATTENTION, BATCH_OF_ROW, LOGPROBS, ROW, TOKEN, TOPK, TOPK_IDS, TOPK_LOGPROBS, state_input, state_output,
)
from .results import RawHypothesis, TokenEvent
from .search import Beam, Sample


class _Binder:
    """One IOBinding of the step session, bound through ORT's C++ object when there is one."""

    def __init__(self, session):
        self.public = session.io_binding()
        self.c = getattr(self.public, "_iobinding", None)
        self.devices = {}
        if self.c is not None:
            try:
                import onnxruntime

                self._make = onnxruntime.OrtDevice.make
                self._make("cpu", 0)._get_c_device()
            except (AttributeError, TypeError):
                self.c = None

    def _device(self, name):
        d = self.devices.get(name)
        if d is None:
            d = self.devices[name] = self._make(name, 0)._get_c_device()
        return d

    def input(self, name, dev, dtype, shape, ptr):
        if self.c is not None:
            self.c.bind_input(name, self._device(dev), dtype, shape, ptr)
        else:
            self.public.bind_input(name, dev, 0, dtype, shape, ptr)

    def output(self, name, dev, dtype, shape, ptr):
        if self.c is not None:
            self.c.bind_output(name, self._device(dev), dtype, shape, ptr)
        else:
            self.public.bind_output(name, dev, 0, dtype, shape, ptr)


RUNNER_CACHE_BYTES = 64 << 20  # a thread keeps its last runner only when its buffers are smaller than this
MEMORY_COPY_BYTES = 1 << 20  # a CPU runner copies memory this small into its own bound buffers (`_bind_memory`)


class _Runner:
    """The step session with its three IO bindings and every preallocated buffer.

    Bindings 0 and 1 alternate between the two state buffers (0 reads buffer 0 and writes 1, 1 the
    reverse); binding 2 is step 0's, reading the initial states. On the CPU a thread keeps its
    runner on the session and the next decode of the same shape reuses it (`_acquire`): the
    initial states are copied into its buffers and only the memory inputs are bound again, so
    none of the bindings, buffers or ORT objects are made twice (~170 us a decode).
    """

    def __init__(self, session, manifest, memory, init_states, int max_rows, int K, int V, int L,
                 str device, bint logprobs_on_host):
        self.sess = session
        self.device = device
        self.busy = False
        self.key = None
        self._ort = None
        if device != "cpu":
            import onnxruntime
            self._ort = onnxruntime
        self.token = np.zeros(max_rows, np.int64)
        self.row = np.zeros(max_rows, np.int64)
        self.bor = np.zeros(max_rows, np.int64)
        self.topk = np.array([K], np.int64)
        self.V, self.K, self.L = V, K, L
        self.topk_lp = np.zeros((max_rows, K), np.float32)
        self.topk_ids = np.zeros((max_rows, K), np.int64)
        self.att = np.zeros((max_rows, L), np.float32) if manifest.attention else None
        if logprobs_on_host:
            self.logprobs = np.zeros((max_rows, V), np.float32)
            self.logprobs_ptr = ("cpu", self.logprobs.ctypes.data)
        else:
            self.logprobs, ptr = self._device_buffer((max_rows, V), np.float32)
            self.logprobs_ptr = (device, ptr)
        self.nbytes = max_rows * (V + K + L) * 4 + max_rows * (3 + K) * 8
        self.keep = []  # everything a binding points at stays alive here
        self.states = []  # (name, np dtype, rest dims, initial (array, (dev, ptr)), [(dev, ptr), (dev, ptr)])
        for spec in manifest.state:
            init = np.ascontiguousarray(init_states[spec.name], dtype=NP_DTYPES[spec.dtype])
            dtype = NP_DTYPES[spec.dtype]
            rest = tuple(init.shape[1:])
            if device == "cpu":
                init = init.copy()  # its own buffer: a reused runner copies the next initial states in
            init_ptr = self._to_device(init)
            bufs = []
            for _ in range(2):
                buf, ptr = self._device_buffer((max_rows,) + rest, dtype)
                self.keep.append(buf)
                bufs.append((device, ptr))
            self.nbytes += (2 * max_rows + init.shape[0]) * init[:1].nbytes
            self.states.append((spec.name, dtype, rest, (init, init_ptr), bufs))
        self.bindings = [_Binder(session), _Binder(session), _Binder(session)]
        for bnd in self.bindings:
            bnd.input(TOPK, "cpu", np.int64, [1], self.topk.ctypes.data)
        self.memory = []
        self.own_memory = None
        self._bind_memory(memory)
        self.bound = [None, None, None]
        self.parity = 0
        self.first = True
        self.scratch = {}  # the search's own arrays, by shape (`_scratch`): made once, reused by later decodes
        c_sess = getattr(session, "_sess", None)
        if c_sess is not None and all(b.c is not None for b in self.bindings):
            # the raw call and its argument per binding: the loop calls it with no Python frame between
            self.raw_run = c_sess.run_with_iobinding
            self.raw_bindings = [b.c for b in self.bindings]
        else:
            self.raw_run = session.run_with_iobinding
            self.raw_bindings = [b.public for b in self.bindings]

    def _bind_memory(self, memory):
        """Bind this decode's memory tensors to all three bindings. On the CPU, memory up to
        MEMORY_COPY_BYTES goes into the runner's own buffers: a later decode of the same shapes copies
        its memory in and binds nothing (nine binds cost ~50 us right after a decode has cooled the
        caches; the copy of what the encoder has just written, a few)."""
        own = self.own_memory
        if own is not None and len(own) == len(memory):
            for name, value in memory.items():
                buf = own.get(name)
                if buf is None or buf.shape != value.shape or buf.dtype != value.dtype:
                    break
            else:
                for name, value in memory.items():
                    np.copyto(own[name], value)
                return
        self.own_memory = None
        self.memory = []  # this decode's memory tensors, alive while bound
        copy = self.device == "cpu" and sum(np.asarray(v).nbytes for v in memory.values()) <= MEMORY_COPY_BYTES
        if copy:
            self.own_memory = {}
        for name, value in memory.items():
            value = np.ascontiguousarray(value)
            if copy:
                value = self.own_memory[name] = value.copy()
            dev, ptr = self._to_device(value, self.memory)
            for bnd in self.bindings:
                bnd.input(name, dev, value.dtype.type, list(value.shape), ptr)

    def reset(self, memory, init_states):
        """Ready a CPU runner for the next decode (same shapes): new initial states and memory."""
        for name, dtype, rest, (init, _), bufs in self.states:
            np.copyto(init, init_states[name], casting="same_kind")
        self._bind_memory(memory)
        self.parity = 0
        self.first = True

    def _device_buffer(self, shape, dtype):
        if self.device == "cpu":
            arr = np.zeros(shape, dtype)
            return arr, arr.ctypes.data
        ov = self._ort.OrtValue.ortvalue_from_shape_and_type(list(shape), dtype, self.device, 0)
        return ov, ov.data_ptr()

    def _to_device(self, arr, keep=None):
        keep = self.keep if keep is None else keep
        if self.device == "cpu":
            keep.append(arr)
            return ("cpu", arr.ctypes.data)
        ov = self._ort.OrtValue.ortvalue_from_numpy(arr, self.device, 0)
        keep.append(ov)
        return (self.device, ov.data_ptr())

    def _bind(self, bnd, int p, int n_in, int n_out):
        """Bind binding p (2: step 0's) for n_in rows in and n_out out."""
        for name, dtype, rest, init, bufs in self.states:
            src = init[1] if p == 2 else bufs[p]
            bnd.input(state_input(name), src[0], dtype, [n_in, *rest], src[1])
        bnd.input(TOKEN, "cpu", np.int64, [n_out], self.token.ctypes.data)
        bnd.input(ROW, "cpu", np.int64, [n_out], self.row.ctypes.data)
        bnd.input(BATCH_OF_ROW, "cpu", np.int64, [n_out], self.bor.ctypes.data)
        for name, dtype, rest, init, bufs in self.states:
            dst = bufs[0] if p == 1 else bufs[1]
            bnd.output(state_output(name), dst[0], dtype, [n_out, *rest], dst[1])
        dev, ptr = self.logprobs_ptr
        bnd.output(LOGPROBS, dev, np.float32, [n_out, self.V], ptr)
        bnd.output(TOPK_LOGPROBS, "cpu", np.float32, [n_out, self.K], self.topk_lp.ctypes.data)
        bnd.output(TOPK_IDS, "cpu", np.int64, [n_out, self.K], self.topk_ids.ctypes.data)
        if self.att is not None:
            bnd.output(ATTENTION, "cpu", np.float32, [n_out, self.L], self.att.ctypes.data)

    def _scratch(self, key):
        """`_make_scratch(*key)`'s arrays, kept per key (a decode's shapes) so the next decode of the same
        shapes skips ~20 allocations; every array the loop reads before writing is zeroed again."""
        got = self.scratch.get(key)
        if got is None:
            if len(self.scratch) >= 4:
                self.scratch.clear()
            got = self.scratch[key] = _make_scratch(*key)
        else:
            for a in got["zeroed"]:
                a.fill(0)
        return got


def _acquire(session, manifest, memory, init, int max_rows, int K, int V, int L, str device, bint host_lp):
    """A runner for this decode: on the CPU the thread's last one when the shapes match (and it is
    not in use by an outer decode of this thread, e.g. from a callback), else a new one, kept for
    next time when small enough."""
    if device != "cpu":
        runner = _Runner(session, manifest, memory, init, max_rows, K, V, L, device, host_lp)
        runner.busy = True
        return runner
    key = (max_rows, K, L, host_lp, tuple([v.shape for v in init.values()]))
    local = getattr(session, "_edge_s2s_runners", None)
    if local is None:
        local = threading.local()
        try:
            session._edge_s2s_runners = local
        except AttributeError:  # a session object that takes no attributes: no reuse
            local = None
    runner = getattr(local, "runner", None) if local is not None else None
    if runner is not None and not runner.busy and runner.key == key:
        runner.reset(memory, init)
    else:
        nested = runner is not None and runner.busy
        runner = _Runner(session, manifest, memory, init, max_rows, K, V, L, device, host_lp)
        runner.key = key
        if local is not None and not nested:
            local.runner = runner if runner.nbytes <= RUNNER_CACHE_BYTES else None
    runner.busy = True
    return runner


cdef int _worst(double[:, ::1] fin_score, int b, int n):
    cdef int w = 0, q
    for q in range(1, n):
        if fin_score[b, q] <= fin_score[b, w]:
            w = q
    return w


def decode(session, manifest, dict encoder_outputs, search, max_length=None, int min_length=0,
           callback=None, tokens=None, timings=None, str device="cpu", prefix=None):
    """Run the search with the step graph `session`; see `reference_loop.decode`.

    device: "cpu", or "cuda" to keep state and memory on the GPU (untested here).
    prefix: one list of token ids per batch item forced at its first steps.
    """
    cdef int ml = manifest.max_length if max_length is None else int(max_length)
    check_search(search, callback, ml, min_length)
    t_start = time.perf_counter_ns()
    B_, L_ = batch_and_length(manifest, encoder_outputs)
    cdef int B = B_, L = L_
    cdef int V = manifest.tokens.size
    cdef int64_t eos = manifest.tokens.eos_id
    cdef int K = topk_width(search, V, min_length)
    cdef bint is_beam = isinstance(search, Beam)
    cdef bint is_sample = isinstance(search, Sample)
    cdef int size = search.size if is_beam else 1
    cdef int max_rows = B * size
    forced_ids = check_prefix(prefix, B, V, eos, ml, min_length)
    cdef bint has_prefix = forced_ids is not None
    cdef bint penal = has_penalties(search)
    cdef bint host_lp = is_sample or has_prefix or penal
    init = initial_states(manifest, encoder_outputs)
    memory = {name: encoder_outputs[name] for name in manifest.memory}
    runner = _acquire(session, manifest, memory, init, max_rows, K, V, L, device, host_lp or device == "cpu")
    try:
        return _search(runner, manifest, encoder_outputs, search, ml, min_length, callback, tokens, timings, t_start,
                       B, L, V, K, forced_ids)
    finally:
        runner.busy = False


def _search(runner, manifest, dict encoder_outputs, search, int ml, int min_length, callback, tokens, timings,
            t_start, int B, int L, int V, int K, forced_ids):
    """The loop itself, over a runner that is ready for step 0."""
    cdef int64_t bos = manifest.tokens.bos_id, eos = manifest.tokens.eos_id
    cdef bint is_beam = isinstance(search, Beam)
    cdef bint is_sample = isinstance(search, Sample)
    cdef bint has_att = bool(manifest.attention)
    cdef bint timed = timings is not None
    cdef int size = search.size if is_beam else 1
    cdef int max_rows = B * size
    cdef bint has_prefix = forced_ids is not None
    cdef bint penal = has_penalties(search)
    cdef bint host_lp = is_sample or has_prefix or penal

    cdef int64_t[::1] tok = runner.token
    cdef int64_t[::1] row = runner.row
    cdef int64_t[::1] bor = runner.bor
    cdef float[:, ::1] top_lp = runner.topk_lp
    cdef int64_t[:, ::1] top_ids = runner.topk_ids
    cdef float[:, ::1] att_out
    cdef float[:, :, ::1] att_hist
    if has_att:
        att_out = runner.att
    else:
        att_out = np.zeros((1, 1), np.float32)

    z = runner._scratch((ml, max_rows, B, size, L, has_att, penal))
    att_hist = z["att_hist"]
    cdef int64_t[:, ::1] h_tok = z["h_tok"]
    cdef int64_t[:, ::1] h_par = z["h_par"]
    cdef double[:, ::1] h_lp = z["h_lp"]
    cdef double[::1] sums_cur = z["sums_cur"]
    cdef double[::1] sums_next = z["sums_next"]
    cdef double[::1] sums_tmp
    # Ended hypotheses per item: (step, row at that step, last token, its log-prob, sum, score, finished).
    cdef int64_t[:, ::1] fin_t = z["fin_t"]
    cdef int64_t[:, ::1] fin_i = z["fin_i"]
    cdef int64_t[:, ::1] fin_tok = z["fin_tok"]
    cdef double[:, ::1] fin_lp = z["fin_lp"]
    cdef double[:, ::1] fin_sum = z["fin_sum"]
    cdef double[:, ::1] fin_score = z["fin_score"]
    cdef signed char[:, ::1] fin_ok = z["fin_ok"]
    cdef int64_t[::1] fin_n = z["fin_n"]
    # Beam scratch: rows of each item in the current step, and the candidate list.
    cdef int64_t[::1] item_start = z["item_start"]
    cdef int64_t[::1] item_count = z["item_count"]
    cdef int64_t[::1] active = z["active"]
    cdef double[::1] cs = z["cs"]
    cdef int64_t[::1] cr = z["cr"]
    cdef int64_t[::1] cj = z["cj"]
    # Forced prefix: pref[b, t] for t < plen[b] (a 1x1 dummy when there is none).
    cdef int64_t[:, ::1] pref
    cdef int64_t[::1] plen
    pref_a, plen_a = _prefix_table(forced_ids, B)
    pref = pref_a
    plen = plen_a
    # Penalties: hist[t & 1, i, :t] is row i's history at step t (double buffer).
    cdef int64_t[:, :, ::1] hist = z["hist"]
    hist_a = z["hist"]
    cdef int hc = 0, hn = 1

    cdef int N = B, n_prev = B, t, i, j, k, b, a, n_active, st, c, m, M, pos, rank, nkept, kstart, q, w
    cdef int length, r
    cdef int64_t tk, forbid
    cdef double lp, s, norm, best, score
    cdef double lp_pen = search.length_penalty if is_beam else 0.0
    cdef bint early_stop = search.early_stop if is_beam else True
    cdef int n_best = search.n_best if is_beam else 1
    cdef bint ended, last, isdone, isforced
    cdef float[:, ::1] logp
    cdef int64_t[::1] drawn
    if host_lp:
        logp = runner.logprobs
    step_ns = timings.step_ns if timed else None
    rng = make_rng(search) if is_sample else None
    perf = time.perf_counter_ns

    for i in range(B):
        tok[i] = bos
        row[i] = i
        bor[i] = i
        h_tok[0, i] = bos

    # The step: binding p (2 at step 0, then 0 and 1 in turn) is bound again only when its row counts
    # change (checked in C), and the raw call is made with no Python frame between steps; the timings
    # time that call alone (the floor).
    run_raw = runner.raw_run
    cdef list raw_bnds = runner.raw_bindings
    cdef list bound = runner.bound
    cdef int bound_in[3]
    cdef int bound_out[3]
    cdef int p
    cdef bint first = runner.first
    cdef int parity = runner.parity
    for p in range(3):
        bound_in[p] = -1 if bound[p] is None else <int>bound[p][0]
        bound_out[p] = -1 if bound[p] is None else <int>bound[p][1]

    for t in range(ml):
        p = 2 if first else parity
        if bound_in[p] != n_prev or bound_out[p] != N:
            runner._bind(runner.bindings[p], p, n_prev, N)
            bound_in[p] = n_prev
            bound_out[p] = N
            bound[p] = (n_prev, N)
        if timed:
            t0 = perf()
            run_raw(raw_bnds[p], None)
            step_ns.append(perf() - t0)
        else:
            run_raw(raw_bnds[p], None)
        first = False
        parity = 0 if p == 1 else 1
        length = t + 1
        if has_att:
            memcpy(&att_hist[t, 0, 0], &att_out[0, 0], N * L * sizeof(float))
        if penal:
            hc = t & 1
            hn = 1 - hc
            lp_rows = runner.logprobs[:N]
            apply_penalties(lp_rows, hist_a[hc, :N, :t], search, eos, out=lp_rows)
            if not is_sample:
                host_topk(lp_rows, K, runner.topk_lp, runner.topk_ids)
        k = 0
        if not is_beam:
            forbid = eos if length < min_length else -1
            if is_sample:
                drawn = sample_rows(runner.logprobs[:N], search, rng.random(N), forbid)
            for i in range(N):
                b = <int>bor[i]
                isforced = has_prefix and t < plen[b]
                if isforced:
                    tk = pref[b, t]
                    lp = logp[i, tk]
                elif is_sample:
                    tk = drawn[i]
                    lp = logp[i, tk]
                else:
                    j = 1 if (forbid >= 0 and top_ids[i, 0] == forbid and K > 1) else 0
                    tk = top_ids[i, j]
                    lp = top_lp[i, j]
                s = sums_cur[i] + lp
                ended = tk == eos
                last = ended or length == ml
                if callback is not None:
                    ev = TokenEvent(batch_index=b, step=t, id=tk, token=tokens[tk] if tokens is not None else "",
                                    log_prob=lp, is_last=last, forced=isforced)
                    if callback(ev) is True and not last:
                        last = True
                if last:
                    fin_t[b, 0] = t
                    fin_i[b, 0] = i
                    fin_tok[b, 0] = tk
                    fin_lp[b, 0] = lp
                    fin_sum[b, 0] = s
                    fin_score[b, 0] = s
                    fin_ok[b, 0] = ended
                    fin_n[b] = 1
                else:
                    tok[k] = tk
                    row[k] = i
                    bor[k] = b
                    h_tok[t + 1, k] = tk
                    h_par[t + 1, k] = i
                    h_lp[t + 1, k] = lp
                    sums_next[k] = s
                    if penal:
                        if t > 0:
                            memcpy(&hist[hn, k, 0], &hist[hc, i, 0], t * sizeof(int64_t))
                        hist[hn, k, t] = tk
                    k += 1
        else:
            norm = pow(<double>length, lp_pen)
            n_active = 0
            for i in range(N):
                b = <int>bor[i]
                if i == 0 or bor[i - 1] != b:
                    active[n_active] = b
                    n_active += 1
                    item_start[b] = i
                    item_count[b] = 0
                item_count[b] += 1
            for a in range(n_active):
                b = <int>active[a]
                st = <int>item_start[b]
                c = <int>item_count[b]
                if has_prefix and t < plen[b]:
                    # In its prefix an item has one row and one candidate (j = -1: forced).
                    M = 1
                    cs[0] = sums_cur[st] + logp[st, pref[b, t]]
                    cr[0] = st
                    cj[0] = -1
                else:
                    M = 2 * size
                    if c * K < M:
                        M = c * K
                    m = 0
                    for r in range(st, st + c):
                        for j in range(K):
                            s = sums_cur[r] + top_lp[r, j]
                            if m < M:
                                pos = m
                                m += 1
                            elif s > cs[M - 1]:
                                pos = M - 1
                            else:
                                continue
                            while pos > 0 and cs[pos - 1] < s:
                                cs[pos] = cs[pos - 1]
                                cr[pos] = cr[pos - 1]
                                cj[pos] = cj[pos - 1]
                                pos -= 1
                            cs[pos] = s
                            cr[pos] = r
                            cj[pos] = j
                nkept = 0
                kstart = k
                for rank in range(M):
                    r = <int>cr[rank]
                    j = <int>cj[rank]
                    if j < 0:
                        tk = pref[b, t]
                        lp = logp[r, tk]
                    else:
                        tk = top_ids[r, j]
                        lp = top_lp[r, j]
                    s = cs[rank]
                    if tk == eos:
                        if j >= 0 and (rank >= size or length < min_length):
                            continue
                        score = s / norm
                        if fin_n[b] < size:
                            q = <int>fin_n[b]
                            fin_n[b] += 1
                        elif not early_stop:
                            q = _worst(fin_score, b, size)
                            if not score > fin_score[b, q]:
                                continue
                        else:
                            continue
                        fin_t[b, q] = t
                        fin_i[b, q] = r
                        fin_tok[b, q] = tk
                        fin_lp[b, q] = lp
                        fin_sum[b, q] = s
                        fin_score[b, q] = score
                        fin_ok[b, q] = 1
                    elif nkept < size:
                        tok[k] = tk
                        row[k] = r
                        bor[k] = b
                        h_tok[t + 1, k] = tk
                        h_par[t + 1, k] = r
                        h_lp[t + 1, k] = lp
                        sums_next[k] = s
                        if penal:
                            if t > 0:
                                memcpy(&hist[hn, k, 0], &hist[hc, r, 0], t * sizeof(int64_t))
                            hist[hn, k, t] = tk
                        k += 1
                        nkept += 1
                isdone = nkept == 0 or length == ml
                if fin_n[b] >= size:
                    if early_stop:
                        isdone = True
                    elif nkept > 0:
                        best = sums_next[kstart]
                        for q in range(kstart + 1, k):
                            if sums_next[q] > best:
                                best = sums_next[q]
                        if best / norm <= fin_score[b, _worst(fin_score, b, <int>fin_n[b])]:
                            isdone = True
                if isdone:
                    if length == ml:
                        for q in range(kstart, k):
                            if fin_n[b] >= n_best:
                                break
                            w = <int>fin_n[b]
                            fin_n[b] += 1
                            fin_t[b, w] = t
                            fin_i[b, w] = row[q]
                            fin_tok[b, w] = tok[q]
                            fin_lp[b, w] = h_lp[t + 1, q]
                            fin_sum[b, w] = sums_next[q]
                            fin_score[b, w] = sums_next[q] / norm
                            fin_ok[b, w] = 0
                    k = kstart
        sums_tmp = sums_cur
        sums_cur = sums_next
        sums_next = sums_tmp
        n_prev = N
        N = k
        if N == 0:
            break

    runner.first = first
    runner.parity = parity
    results = []
    for b in range(B):
        n = <int>fin_n[b]
        order = _best_first(fin_score, b, n)
        hyps = []
        for q in order[:n_best]:
            hyps.append(_rebuild(<int>fin_t[b, q], <int>fin_i[b, q], fin_tok[b, q], fin_lp[b, q], fin_sum[b, q],
                                 fin_score[b, q], fin_ok[b, q] != 0, eos, h_tok, h_par, h_lp, att_hist, has_att, L))
        results.append(hyps)
    if timed:
        timings.total_ns += time.perf_counter_ns() - t_start
    return results


def _make_scratch(ml, max_rows, B, size, L, has_att, penal):
    """The search's arrays for one decode shape (see `_Runner._scratch`)."""
    z = {"att_hist": np.empty((ml, max_rows, L) if has_att else (1, 1, 1), np.float32),
         "h_tok": np.zeros((ml + 1, max_rows), np.int64), "h_par": np.zeros((ml + 1, max_rows), np.int64),
         "h_lp": np.zeros((ml + 1, max_rows), np.float64),
         "sums_cur": np.zeros(max_rows), "sums_next": np.zeros(max_rows),
         "fin_t": np.zeros((B, size), np.int64), "fin_i": np.zeros((B, size), np.int64),
         "fin_tok": np.zeros((B, size), np.int64), "fin_lp": np.zeros((B, size), np.float64),
         "fin_sum": np.zeros((B, size), np.float64), "fin_score": np.zeros((B, size), np.float64),
         "fin_ok": np.zeros((B, size), np.int8), "fin_n": np.zeros(B, np.int64),
         "item_start": np.zeros(B, np.int64), "item_count": np.zeros(B, np.int64),
         "active": np.zeros(B, np.int64), "cs": np.zeros(2 * size + 1),
         "cr": np.zeros(2 * size + 1, np.int64), "cj": np.zeros(2 * size + 1, np.int64),
         "hist": np.zeros((2, max_rows, ml) if penal else (2, 1, 1), np.int64)}
    # what np.zeros promised before reuse (the loop writes the rest before reading it)
    z["zeroed"] = [z[k] for k in ("h_tok", "h_par", "h_lp", "sums_cur", "sums_next", "fin_t", "fin_i",
                                  "fin_tok", "fin_lp", "fin_sum", "fin_score", "fin_ok", "fin_n", "hist")]
    return z


def _prefix_table(forced_ids, int B):
    """(pref [B, P] int64, plen [B] int64) of the checked prefix; a dummy with plen 0 when None."""
    if forced_ids is None:
        return np.zeros((1, 1), np.int64), np.zeros(B, np.int64)
    pref = np.zeros((B, max(len(x) for x in forced_ids)), np.int64)
    for b, ids in enumerate(forced_ids):
        pref[b, :len(ids)] = ids
    return pref, np.array([len(x) for x in forced_ids], np.int64)


cdef list _best_first(double[:, ::1] scores, int b, int n):
    """Indices of item b's n ended hypotheses by score, best first; ties keep their order (like the
    reference's stable sort)."""
    cdef list order = []
    cdef int q, pos
    for q in range(n):  # insertion: n is at most the beam size
        pos = len(order)
        while pos > 0 and scores[b, <int>order[pos - 1]] < scores[b, q]:
            pos -= 1
        order.insert(pos, q)
    return order


cdef object _rebuild(int t, int i, int64_t tk, double lp, double total, double score, bint finished, int64_t eos,
                     int64_t[:, ::1] h_tok, int64_t[:, ::1] h_par, double[:, ::1] h_lp,
                     float[:, :, ::1] att_hist, bint has_att, int L):
    """Follow back-pointers from (step t, row i) to step 0: ids, log-probs, attention rows, written
    straight into the lists and array returned (typed loops and memcpy: numpy indexing here cost
    ~60 us a hypothesis, fancy indexing and temporaries ~20 us more on a cache the step has just cooled)."""
    cdef int s = t, r = i, n = t + (1 if tk != eos else 0), q
    cdef size_t row_bytes = L * sizeof(float)
    cdef float[:, ::1] att
    ids = [0] * n
    lps = [0.0] * (t + 1)
    att_a = np.empty((n, L), np.float32) if has_att else None
    if has_att:
        att = att_a
    q = n - 1
    lps[t] = lp
    if tk != eos:
        ids[q] = tk
        if has_att and L:
            memcpy(&att[q, 0], &att_hist[t, i, 0], row_bytes)
        q -= 1
    while s > 0:
        ids[q] = h_tok[s, r]
        lps[s - 1] = h_lp[s, r]
        r = <int>h_par[s, r]
        if has_att and L:
            memcpy(&att[q, 0], &att_hist[s - 1, r, 0], row_bytes)
        q -= 1
        s -= 1
    return RawHypothesis(ids=ids, log_prob=total, score=score, token_log_probs=lps, attention=att_a,
                         finished=finished)
