#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The scaling projection of bench/results/RESULTS.md ("Scaling projection").

Three commands:

  holds CALLGRIND_OUT... [--ns-per-pair NS --purge-ns-per-pair NS]
      From callgrind profiles of one-thread bench-scale runs, the
      instructions (Ir) each shared resource is held per alloc+free pair:
      every source line inside a lock's critical section, with the calls
      made from it, summed over the whole run.  Profile a build with -g
      (CMAKE_C_FLAGS=-g, which leaves the code as it is), with absolute
      positions:
        valgrind --tool=callgrind --compress-pos=no --compress-strings=no \
            --callgrind-out-file=cg.out bench-scale -t 1 -r 1 -n 400000
      The native ns per pair of the first profile's run (bench-scale -t 1)
      and of its purge (from fit) turn Ir into ns.  With several profiles
      (-l L), the purge's Ir as a fixed part plus a part per area.

  fit < bench-scale -e lines
      One-thread runs with several -l: the pools' hit rate against the
      areas per purge, and the purge's native time, fixed + per area.

  model [--c NS,...] [--all] [--hit H] [--flush-us US] [...]
      Throughput X(N) for N threads on N CPUs, by the bottleneck and
      asymptotic bounds and by exact mean-value analysis (MVA) of a closed
      network: N threads, each cycling through think time Z (the work that
      touches nothing shared) and the shared resources, each a FCFS queue
      with service demand D_r per pair.  Defaults are the numbers measured
      on the 2-vCPU machine (MEASURED below; RESULTS.md has the commands).
      --all adds the remedies (SCENARIOS), one after the other.

Only Python's standard library; no third-party package.
"""
import argparse
import math
import os
import re
import sys

# ---------------------------------------------------------------- holds ---

# sched_getcpu's instructions natively: glibc 2.36 reads the CPU from its
# rseq area (the fast path of its disassembly, push to ret).
GETCPU_NATIVE_IR = 13

# Each resource's critical sections: (file, function, first line pattern,
# last line pattern).  A section is the lines after the one that takes the
# lock up to and including the one that drops it (the last such line in
# the function: early-return unlocks are inside), with the calls made from
# them.  No patterns: a static helper that runs only with the lock held,
# counted where the compiler inlined it (its cost is on its own lines, not
# its caller's); an out-of-line copy is counted at its call site.  ('calls',
# name): every call of name, inclusive.
SECTIONS = {
    'free lock': [
        ('area.c', 'place', 'pthread_mutex_lock(&s->free_lock)',
         'pthread_mutex_unlock(&s->free_lock)'),
        ('purge.c', 'give_back', 'pthread_mutex_lock(&s->free_lock)',
         'pthread_mutex_unlock(&s->free_lock)'),
        ('purge.c', '__tree_give', None, None),
        ('node.c', 'to_tree', 'pthread_mutex_lock(&s->free_lock)',
         'pthread_mutex_unlock(&s->free_lock)'),
    ],
    'node lock': [
        ('node.c', 'node_take', 'pthread_mutex_lock(&v->lock)',
         'pthread_mutex_unlock(&v->lock)'),
        ('node.c', 'pick', None, None),
        ('node.c', 'meets', None, None),
        ('node.c', 'set_count', None, None),
        ('node.c', 'put', None, None),
        ('node.c', '__nodes_give', 'pthread_mutex_lock(&v->lock)',
         'pthread_mutex_unlock(&v->lock)'),
        ('node.c', 'decay_node', 'pthread_mutex_lock(&v->lock)',
         'pthread_mutex_unlock(&v->lock)'),
    ],
    'shard lock': [
        ('node.c', 'node_take', 'pthread_mutex_lock(&shard->lock)',
         'pthread_mutex_unlock(&shard->lock)'),
        ('area.c', 'place', 'pthread_mutex_lock(&shard->lock)',
         'pthread_mutex_unlock(&shard->lock)'),
        ('area.c', 'vm_free', 'pthread_mutex_lock(&shard->lock)',
         'pthread_mutex_unlock(&shard->lock)'),
    ],
    'records lock': [
        ('record.c', 'va_get', 'pthread_mutex_lock(&r->lock)',
         'pthread_mutex_unlock(&r->lock)'),
        ('record.c', 'grow', None, None),
        ('record.c', 'va_put_list', 'pthread_mutex_lock(&r->lock)',
         'pthread_mutex_unlock(&r->lock)'),
    ],
    # Held for the whole purge, by its callers.
    'purge mutex': [('calls', '__vm_purge')],
}

# Parts of the above worth showing on their own: (label, resource, index).
PARTS = [
    ('free lock: a pool miss (place)', 'free lock', [0]),
    ('free lock: purge, per chunk', 'free lock', [1, 2, 3]),
    ('node lock: node_take', 'node lock', [0, 1, 2, 3]),
    ('node lock: purge (give, decay)', 'node lock', [4, 5, 6]),
    ('shard lock: alloc, nested (pool or tree)', 'shard lock', [0, 1]),
    ('shard lock: free (remove + lazy push)', 'shard lock', [2]),
]


def base_name(fn):
    """A function's name without gcc's clone suffixes (.isra.0, .part.0),
    callgrind's recursion marks ('2) or symbol versions (@@GLIBC_2.2.5)."""
    return fn.split('@')[0].split("'")[0].split('.')[0]


def parse_callgrind(path):
    """Inclusive Ir by (file, line, function the cost is in) -- a call's
    cost on its call site's line -- and call counts and costs by (file,
    line, callee).  Needs --compress-pos=no --compress-strings=no."""
    cost, calls, ccost, arcs = {}, {}, {}, {}
    fl = fi = fn = None
    callee = None
    pending = None  # the callee of a calls= line: its cost line follows
    cmd = '?'
    with open(path) as f:
        for raw in f:
            line = raw.rstrip('\n')
            if not line or line[0] == '#':
                continue
            if line[0].isdigit():
                pos, ir = line.split()[:2]
                key = (fi or fl, int(pos))
                ck = key + (fn,)
                cost[ck] = cost.get(ck, 0) + int(ir)
                if pending:
                    ck = key + (pending[0],)
                    calls[ck] = calls.get(ck, 0) + pending[1]
                    ccost[ck] = ccost.get(ck, 0) + int(ir)
                    ak = (fn, pending[0])
                    arcs[ak] = arcs.get(ak, 0) + pending[1]
                    pending = None
                continue
            if line.startswith('cmd:'):
                cmd = line[4:].strip()
                continue
            k, _, v = line.partition('=')
            if k == 'fl':
                fl, fi = v, None
            elif k in ('fi', 'fe'):
                fi = v if v != fl else None
            elif k == 'fn':
                fn, fi = base_name(v), None
            elif k == 'cfn':
                callee = base_name(v)
            elif k == 'calls':
                pending = (callee, int(v.split()[0]))
    return cost, calls, ccost, arcs, cmd


def getcpu_per_call(arcs):
    """sched_getcpu calls made per call of each function, through its
    callees.  Under valgrind sched_getcpu cannot read the CPU from rseq (as
    it does natively, in 13 instructions) and falls back to the vDSO: its
    Ir there overstate the native cost, and holds that contain it are
    corrected by this count."""
    callers = {}
    for (caller, callee), n in arcs.items():
        callers.setdefault(caller, []).append((callee, n))
    ncalls = {}
    for (caller, callee), n in arcs.items():
        ncalls[callee] = ncalls.get(callee, 0) + n
    memo = {'sched_getcpu': 1.0}

    def per(fn, depth=0):
        if fn in memo:
            return memo[fn]
        memo[fn] = 0.0      # recursion (tree walks): no getcpu there
        if depth > 50 or not ncalls.get(fn):
            return 0.0
        total = sum(n * per(callee, depth + 1)
                    for callee, n in callers.get(fn, []))
        memo[fn] = total / ncalls[fn]
        return memo[fn]

    for fn in list(ncalls):
        per(fn)
    return memo


def function_lines(path, name, has=None):
    """First and last line (1-based) of the definition of name in a
    kernel-style C file: its head starts in column 0, its body ends at the
    first '}' in column 0 after it.  With has, the first definition holding
    that text (a file may define a function twice, under #ifdef)."""
    with open(path) as f:
        src = f.read().split('\n')
    head = re.compile(r'^[A-Za-z_].*\b' + re.escape(name) + r'\(')
    for i, text in enumerate(src):
        if head.match(text) and not text.rstrip().endswith(';'):
            for j in range(i, len(src)):
                if src[j] == '}':
                    break
            if not has or any(has in t for t in src[i:j]):
                return src, i + 1, j + 1
    return None


def section_cost(prof, files, sec):
    """Ir spent in a section, how many times its lock was taken, and how
    many sched_getcpu calls the Ir include."""
    cost, calls, ccost, gpc = prof
    if sec[0] == 'calls':
        n = sum(c for (f, l, callee), c in calls.items() if callee == sec[1])
        return (sum(c for (f, l, callee), c in ccost.items()
                    if callee == sec[1]), n, n * gpc.get(sec[1], 0))
    fname, func, first, last = sec
    path = files.get(fname)
    if not path:
        return 0, 0, 0
    found = function_lines(path, func, first)
    if not found:
        if first:
            raise SystemExit('scale_model: no %s in %s' % (func, path))
        return 0, 0, 0  # a helper this version does not have
    src, lo, hi = found
    takes = 0
    if first:
        starts = [n for n in range(lo, hi + 1) if first in src[n - 1]]
        ends = [n for n in range(lo, hi + 1) if last in src[n - 1]]
        if not starts or not ends:
            raise SystemExit('scale_model: %s: no %s ... %s' %
                             (func, first, last))
        takes = sum(c for (f, n, callee), c in calls.items()
                    if f == path and n == starts[0] and
                    callee == 'pthread_mutex_lock')
        lo, hi = starts[0] + 1, ends[-1]
    ir = sum(c for (f, n, fn), c in cost.items()
             if f == path and lo <= n <= hi and (first or fn != func))
    # The calls made from it (out-of-line copies of the helpers are among
    # them, at their call sites).
    getcpu = sum(c * gpc.get(callee, 0)
                 for (f, n, callee), c in calls.items()
                 if f == path and lo <= n <= hi)
    return ir, takes, getcpu


def holds(args):
    """Each profile's table; with two or more, the purge's cost as a fixed
    part per purge plus a part per area (least squares)."""
    # The native times are the first profile's run's.
    pts = [holds_one(path, args.ns_per_pair if i == 0 else 0,
                     args.purge_ns_per_pair if i == 0 else 0)
           for i, path in enumerate(args.profile)]
    if len(pts) >= 2:
        n = len(pts)
        mx = sum(a for a, _ in pts) / n
        my = sum(b for _, b in pts) / n
        slope = (sum((a - mx) * (b - my) for a, b in pts) /
                 sum((a - mx) ** 2 for a, _ in pts))
        print('\npurge mutex held per purge: %.0f Ir + %.1f Ir per area '
              '(fit to %s)' % (my - slope * mx, slope,
                               ', '.join('%.0f areas: %.0f' % p
                                         for p in pts)))


def holds_one(path, ns_per_pair, purge_ns):
    """Print one profile's holds; returns (areas per purge, Ir per purge)."""
    cost, calls, ccost, arcs, cmd = parse_callgrind(path)
    gpc = getcpu_per_call(arcs)
    files = {}
    for (f, _, _) in cost:
        files.setdefault(os.path.basename(f), f)
    # Pairs: the frees the workers made (the first WINDOW steps free none).
    pairs = sum(c for (f, n, callee), c in calls.items()
                if callee == 'vmap_free' and f.endswith('scale.c'))
    allocs = sum(c for (f, n, callee), c in calls.items()
                 if callee == 'vmap_alloc' and f.endswith('scale.c'))
    if not pairs:
        raise SystemExit('scale_model: no vmap_free calls from scale.c')
    _, lo, hi = function_lines(files['scale.c'], 'work')
    total = sum(c for (f, n, fn), c in cost.items()
                if f == files['scale.c'] and lo <= n <= hi)
    getcpu = sum(c * gpc.get(callee, 0) for (f, n, callee), c in calls.items()
                 if f == files['scale.c'] and lo <= n <= hi)
    # Ir of one sched_getcpu under valgrind, less its native 13.
    per = sum(c for (f, n, callee), c in ccost.items()
              if callee == 'sched_getcpu')
    cnt = sum(c for (f, n, callee), c in calls.items()
              if callee == 'sched_getcpu')
    excess = (per / cnt - GETCPU_NATIVE_IR) if cnt else 0
    total -= getcpu * excess
    # ns per Ir from the native ns per pair, the purge's (timed natively)
    # set apart: its loops run at more instructions per ns.
    pir = sum(c for (f, n, callee), c in ccost.items()
              if callee == '__vm_purge') / allocs
    nspi = ((ns_per_pair - purge_ns) / (total / allocs - pir)
            if ns_per_pair else 0)
    print('\nprofile: %s' % cmd)
    print('pairs %d; %.0f Ir per pair in the workers, less %.1f sched_getcpu '
          'calls x %.0f Ir that valgrind adds to each%s' %
          (pairs, total / allocs, getcpu / allocs, excess,
           ';\n%.4f ns per Ir but the purge\'s (%.1f ns per pair natively, '
           '%.1f of them the purge\'s)' %
           (nspi, ns_per_pair, purge_ns) if nspi else ''))
    print('%-42s %10s %9s %9s %9s' %
          ('held', 'takes/pair', 'Ir/take', 'Ir/pair', 'ns/pair'))
    prof = (cost, calls, ccost, gpc)
    per_res = {}
    for res, secs in SECTIONS.items():
        per_res[res] = [(ir - g * excess, t) for ir, t, g in
                        (section_cost(prof, files, sec) for sec in secs)]
    for label, res, idx in PARTS:
        show(label, sum(per_res[res][i][0] for i in idx),
             sum(per_res[res][i][1] for i in idx), pairs, nspi)
    for res, got in per_res.items():
        if res == 'purge mutex' and purge_ns:
            ir, takes = got[0]
            print('%-42s %10.4f %9.0f %9.1f %9.1f' %
                  (res + ' (all)', takes / pairs, ir / takes, ir / pairs,
                   purge_ns))
            continue
        show(res + ' (all)', sum(g[0] for g in got),
             sum(g[1] for g in got), pairs, nspi)
    ir, purges = per_res['purge mutex'][0]
    return (pairs / purges, ir / purges) if purges else (0, 0)


def show(label, ir, takes, pairs, nspi):
    print('%-42s %10.4f %9.0f %9.1f %9s' %
          (label, takes / pairs, ir / takes if takes else 0, ir / pairs,
           '%.1f' % (ir / pairs * nspi) if nspi else '-'))


# ---------------------------------------------------------------- model ---

# What one-thread runs measured here, on fb07d3d (bench/results/RESULTS.md,
# "Scaling projection", has the commands).  Ir: instructions under
# callgrind, sched_getcpu at its native 13.
MEASURED = dict(
    t1_ns=123.6,        # ns per pair, one thread (bench-scale -t 1)
    hit_t1=0.974,       # ... and its pool hit rate
    ir_pair=1116.0,     # Ir per pair, the purge included
    purge_ir_pair=193.8,  # Ir per pair of the purge (ns: purge_* below)
    place_ir=711.0,     # free lock held by a pool miss (place)
    place_shard_ir=110.0,  # of which the shard lock, nested
    insert_ir=310.0,    # free lock held per area a purge gives the tree
    rec_ir=95.0,        # records lock held per pool miss (get + puts)
    node_ir=256.0,      # node lock held per pair (node_take + purge share)
    node_shard_ir=85.0,  # of which the shard lock, nested in node_take
    shard_ir=249.0,     # shard locks held per pair (2 takes)
    # The purge, timed natively (purge_last_ns against areas per purge,
    # bench-scale -t 1 -l L -e | scale_model.py fit): its loops run at
    # more instructions per ns than the locked path, so Ir would overstate
    # it.
    purge_fixed_ns=3985.0,   # per purge
    purge_area_ns=11.78,     # per area, records in this CPU's cache
    purge_remote_ns=16.0,    # more per area freed on another CPU
    avg_pages=8.5,      # 1..16 pages, uniform
)


def ns_per_ir():
    """ns per Ir of everything but the purge: one thread's pair less its
    purge (at the t1 run's lazy_max_pages, 16384 on 2 CPUs), over the Ir
    of the same."""
    m = MEASURED
    purge = m['purge_fixed_ns'] / (16384 / m['avg_pages']) + \
        m['purge_area_ns']
    return (m['t1_ns'] - purge) / (m['ir_pair'] - m['purge_ir_pair'])


# Pool hit rate against the areas a node's pool gets per purge, k: one
# thread with -l L has k = L / 8.5 (bench-scale -t 1 -l L, RESULTS.md).
HIT_BY_K = [(61, 0.836), (106, 0.881), (136, 0.897), (302, 0.933),
            (483, 0.947), (724, 0.958), (965, 0.963), (1929, 0.973),
            (7714, 0.980)]

# An allocation made while another CPU's purge runs misses its pool with
# this probability: the pools wait for the areas being flushed.  From
# bench-scale -t 2 -f 0, 100, 400 (RESULTS.md): the two-thread hit rate is
# 0.906 - 0.524 U_purge, against 0.963 for one thread with as many areas
# per node per purge -- BETA = 0.524 / 0.963, and DELTA the rest: a CPU
# that falls behind for a purge or two loses its pool to decay, which
# counts purges, not the node's own allocations.
BETA = 0.54
DELTA = 0.057

# Blocking cache-line transfers per take when the last taker was on
# another CPU (probability 1 - 1/N): a locked read-modify-write of a line
# another CPU owns, or a load the next step depends on; stores and loads
# the CPU can overlap are not counted.  Assumptions, checked against the
# two-thread runs here (RESULTS.md).
LINES = dict(
    free=6,     # lock word; the tree walk's nodes that others' carves
                # rewrote (the path is ~8 deep; the top always changed)
    insert=4,   # per area a purge inserts: the same, for its walk
    rec=2,      # lock word, the free list's head record
    shard=1,    # per take: the lock word (two takes a pair)
    node=1,     # the pooled record, last written by the purging CPU
    lazy=2.0,   # per pair: a free's two adds (one transfer for both) and
                # the next alloc's read of s->nodes on the same line
)


def fls(n):
    return n.bit_length()


def nodes_of(n, nodes_max=64):
    return min(n, nodes_max)


def hit_rate(n, nodes_max=64):
    """The node pools' hit rate on an n-CPU machine: interpolated (in log
    k) from the one-thread runs with the same areas per node per purge."""
    k = fls(n) * 8192 / MEASURED['avg_pages'] / nodes_of(n, nodes_max)
    pts = HIT_BY_K
    if k <= pts[0][0]:
        return pts[0][1]
    if k >= pts[-1][0]:
        return pts[-1][1]
    for (k0, h0), (k1, h1) in zip(pts, pts[1:]):
        if k0 <= k <= k1:
            t = (math.log(k) - math.log(k0)) / (math.log(k1) - math.log(k0))
            return h0 + t * (h1 - h0)


def demands(n, c, sc):
    """Service demands per pair (ns) with n threads on n CPUs: the shared
    centers [(name, count, D per center)] -- count identical centers
    sharing the traffic evenly (shards) -- and the per-thread delay that
    queues for nothing (the thread's own node lock).  Nested holds (a
    shard lock taken under the node or free lock) count with the outer
    lock, whose queue they lengthen.  sc: the scenario (see SCENARIOS)."""
    m = MEASURED
    nspi = ns_per_ir()
    p = 1 - 1 / n                       # last toucher was another CPU
    h = sc.get('hit') or hit_rate(n)
    k = nodes_of(n)
    per_node = n / k                    # CPUs sharing a node
    areas = fls(n) * 8192 / m['avg_pages']  # per purge
    miss = 1 - h
    centers = []

    # The free lock: a pool miss carves under it; each area a purge gives
    # the tree (about one per miss, in the steady state) is an insert.
    # Per-node free trees split it, and keep its lines on the node.
    trees = sc.get('trees', 1)
    pf = p if trees == 1 else 0
    free = miss * ((m['place_ir'] + m['insert_ir']) * nspi +
                   (LINES['free'] + LINES['insert']) * c * pf)
    centers.append(('free lock', trees, free / trees))
    rec = miss * (m['rec_ir'] * nspi + LINES['rec'] * c * pf)
    centers.append(('records lock', trees, rec / trees))

    # Busy shards: two takes per pair, spread by address hash; the alloc's
    # take is nested in the node lock (a hit) or the free lock (a miss).
    shards = sc.get('shards', 32)
    ps = 0 if sc.get('local_shards') else p
    shard = ((m['shard_ir'] - m['node_shard_ir'] - miss * m['place_shard_ir'])
             * nspi + 2 * LINES['shard'] * c * ps)
    centers.append(('shard locks', shards, shard / shards))

    # The lazy counters' cache line: no lock, but every free needs it
    # exclusive and every alloc reads a field next to it.
    lazy = sc.get('lazy_lines', LINES['lazy']) * c * p
    centers.append(('lazy line', 1, lazy))

    # The purge: one at a time, all of it on one thread -- or, with
    # parallel purges, each node sorts and pools its own areas and only
    # the rest (and the flush) stays serial.
    flush = sc.get('flush_ns', 0)
    per_area = m['purge_area_ns'] + m['purge_remote_ns'] * p
    serial = (m['purge_fixed_ns'] + flush) / areas
    if sc.get('parallel_purge'):
        centers.append(('purge', 1, serial + miss * per_area))
        centers.append(('node purges', k, h * per_area / k))
    else:
        centers.append(('purge', 1, serial + per_area))

    # The node lock is the thread's own up to 64 CPUs (VMAP_NODES_MAX);
    # past that per_node CPUs share one, each take a line transfer when
    # the last taker was another.  Its hold, and the pooled record it
    # pulls from the purging CPU's cache, delay only this thread.
    node = (m['node_ir'] * nspi + h * LINES['node'] * c * p +
            2 * c * (1 - 1 / per_node))
    return centers, node, h


def mva(n, z, centers):
    """Exact MVA, closed network: n customers, think time z, load-
    independent FCFS centers [(count, D)].  Returns X (pairs per ns)."""
    q = [0.0] * len(centers)
    x = 0.0
    for pop in range(1, n + 1):
        r = [d * (1 + qi) for (cnt, d), qi in zip(centers, q)]
        x = pop / (z + sum(cnt * ri for (cnt, _), ri in zip(centers, r)))
        q = [x * ri for ri in r]
    return x


def project(n, c, sc):
    """X(n) by MVA, with the pools' hit rate coupled to the purge: while a
    purge runs, the pools of the other CPUs wait for the areas it is
    flushing, and an allocation then misses with probability BETA
    (measured: bench-scale -t 2 -f F, RESULTS.md) -- so the hit rate is
    h0 * (1 - BETA * U_purge) - DELTA, solved with X by iteration."""
    m = MEASURED
    h0 = sc.get('hit') or hit_rate(n)
    beta = sc.get('beta', BETA) if n > 1 else 0
    delta = sc.get('delta', DELTA) if n > 1 else 0
    h = h0
    for _ in range(200):
        centers, node, _ = demands(n, c, dict(sc, hit=h))
        # Think time: one thread's pair less its time at the shared
        # centers (so that N = 1 gives the measured pair, which had no
        # flush); the node lock, the thread's own, is part of it, with
        # what contention adds at n.
        one, node1, _ = demands(1, 0, dict(sc, hit=m['hit_t1'],
                                           flush_ns=0))
        z = (m['t1_ns'] - sum(cnt * d for _, cnt, d in one) +
             (node - node1))
        x = mva(n, z, [(cnt, d) for _, cnt, d in centers])
        upurge = min(1.0, x * dict((nm, d) for nm, _, d in centers)['purge'])
        hn = h0 * (1 - beta * upurge) - delta
        if abs(hn - h) < 1e-6:
            break
        h = (h + hn) / 2
    dsum = sum(cnt * d for _, cnt, d in centers)
    top = max(centers, key=lambda r: r[2])
    xmax = min(n / (z + dsum), 1 / top[2])
    return dict(n=n, h=h, z=z, x=x * 1e3, xmax=xmax * 1e3, top=top[0],
                util=x * top[2], nstar=(z + dsum) / top[2],
                d={name: d for name, _, d in centers}, node=node)


# The remedies, in the order the resources saturate: the first two each
# alone (each leaves the other in the way), then each on top of the ones
# before it.
SCENARIOS = [
    ('as built', {}),
    # Pools that keep a purge's worth per size, decayed by the node's own
    # allocations instead of every purge: the one-thread hit rate at every
    # N, and no misses while a purge runs.
    ('pools that outlast a purge, alone', dict(hit=0.97, beta=0, delta=0)),
    # Per-node page and area counts, folded into the global ones every 32
    # frees, and the read-mostly nodes/nnodes off that line.
    ('lazy counts per node, batched, alone', dict(lazy_lines=2 / 32)),
    ('both of those',
     dict(lazy_lines=2 / 32, hit=0.97, beta=0, delta=0)),
    # Each node sorts and pools its own lazy areas (the kernel's
    # purge_vmap_node helpers); one flush still covers them all.
    ('both + parallel per-node purge',
     dict(lazy_lines=2 / 32, hit=0.97, beta=0, delta=0,
          parallel_purge=True)),
    # A free tree and busy shard per node, over an address range of its
    # own: a thread's areas never leave its node.
    ('all that + per-node free trees and shards',
     dict(lazy_lines=2 / 32, hit=0.97, beta=0, delta=0,
          parallel_purge=True, trees=64, local_shards=True, shards=64)),
]


def model(args):
    ns = [int(v) for v in args.threads.split(',')]
    cs = [float(v) for v in args.c.split(',')]
    scen = SCENARIOS if args.all else SCENARIOS[:1]
    if args.hit:
        scen = [(name + ', hit %.3f' % args.hit, dict(sc, hit=args.hit))
                for name, sc in scen]
    if args.beta is not None:
        scen = [(name, dict(sc, beta=args.beta, delta=0))
                for name, sc in scen]
    if args.t1:
        MEASURED['t1_ns'] = args.t1
    if args.flush_us:
        scen = [(name + ', flush %g us' % args.flush_us,
                 dict(sc, flush_ns=args.flush_us * 1e3)) for name, sc in scen]
    m = MEASURED
    print('one thread: %.1f ns per pair (%.0f Ir, %.3f ns per Ir but the '
          'purge\'s); N threads on N CPUs;\nX in Mpairs/s' %
          (m['t1_ns'], m['ir_pair'], ns_per_ir()))
    for c in cs:
        for name, sc in scen:
            print('\nc = %g ns per line transfer; %s' % (c, name))
            print('%5s %6s %6s %6s %6s %6s %6s %8s %8s %8s  %-11s %5s %6s' %
                  ('N', 'hit', 'Z', 'free', 'shard', 'lazy', 'purge',
                   'X bound', 'X MVA', 'X/thread', 'bottleneck', 'U', 'N*'))
            for n in ns:
                r = project(n, c, sc)
                d = r['d']
                print('%5d %6.3f %6.1f %6.1f %6.1f %6.1f %6.1f %8.2f %8.2f '
                      '%8.2f  %-11s %5.2f %6.1f' %
                      (n, r['h'], r['z'], d['free lock'], d['shard locks'],
                       d['lazy line'], d['purge'], r['xmax'], r['x'],
                       r['x'] / n, r['top'], r['util'], r['nstar']))
    print('\nZ: ns per pair of each thread\'s own work (its node lock '
          'included); free, shard, lazy,\npurge: ns per pair at one center '
          '(one free lock or node tree, one shard, the lazy line, the\n'
          'serial purge); X bound: min(N/(Z+D), 1/D_max) in Mpairs/s; X MVA: '
          'mean-value analysis;\nbottleneck: the center with the largest '
          'D, U its utilisation under MVA; N*: threads where\nthe two '
          'bounds cross, (Z+D)/D_max -- past it, more CPUs add nothing.')


def fit(args):
    """From bench-scale -e lines (one-thread runs with several -l) on
    stdin: the pool hit rate against the areas a node gets per purge, and
    the purge's time as a fixed part plus a part per area."""
    pts = []
    for line in sys.stdin:
        kv = dict(w.split('=', 1) for w in line.split() if '=' in w)
        if 'areas_per_purge' in kv:
            pts.append((float(kv['hit']), float(kv['purge_last_ns']),
                        float(kv['areas_per_purge'])))
    if len(pts) < 2:
        raise SystemExit('scale_model fit: needs two or more -e lines')
    print('%10s %8s %14s' % ('areas/purge', 'hit', 'purge_last_ns'))
    for h, ns, a in sorted(pts, key=lambda p: p[2]):
        print('%10.0f %8.4f %14.0f' % (a, h, ns))
    n = len(pts)
    mx = sum(p[2] for p in pts) / n
    my = sum(p[1] for p in pts) / n
    b = (sum((p[2] - mx) * (p[1] - my) for p in pts) /
         sum((p[2] - mx) ** 2 for p in pts))
    print('purge: %.0f ns + %.2f ns per area (least squares)' %
          (my - b * mx, b))


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='cmd')
    h = sub.add_parser('holds')
    h.add_argument('profile', nargs='+')
    h.add_argument('--ns-per-pair', type=float, default=0,
                   help='native ns per pair (bench-scale -t 1)')
    h.add_argument('--purge-ns-per-pair', type=float, default=0,
                   help='native ns per pair of the purge (scale_model.py '
                   'fit: fixed / areas per purge + per area)')
    sub.add_parser('fit')
    m = sub.add_parser('model')
    m.add_argument('--threads', default='1,2,4,16,64,256')
    m.add_argument('--c', default='50,150',
                   help='ns per cache-line transfer, comma-separated')
    m.add_argument('--hit', type=float, default=0,
                   help='pool hit rate for every N (default: measured)')
    m.add_argument('--flush-us', type=float, default=0,
                   help='the flush callback, per purge')
    m.add_argument('--beta', type=float, default=None,
                   help='miss probability while a purge runs (default '
                   'BETA, and DELTA; given, no DELTA: --hit H --beta 0 '
                   'takes a measured hit rate as it is)')
    m.add_argument('--t1', type=float, default=0,
                   help='one thread\'s ns per pair (default: measured)')
    m.add_argument('--all', action='store_true',
                   help='also the remedies, one after the other')
    args = p.parse_args()
    if args.cmd == 'holds':
        holds(args)
    elif args.cmd == 'model':
        model(args)
    elif args.cmd == 'fit':
        fit(args)
    else:
        p.print_help()


if __name__ == '__main__':
    main()
