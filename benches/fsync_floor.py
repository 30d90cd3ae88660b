#!/usr/bin/env python3
"""The one-client floor: overwrite N bytes in a preallocated file and fdatasync, as
Semel's write-ahead log does per commit. Prints p50, p99 and mean, and the rates
1/p50 and 1/mean (a one-client run's tx/s is 1/its mean latency).

    python3 benches/fsync_floor.py [--bytes 2700] [--n 3000] [--dir /tmp] [--direct]

With --direct, the record is padded to whole 4 KiB blocks and written with O_DIRECT
(around the page cache), as the log does where the file system allows it; records then
start on block boundaries, so each write is one new block where the log would rewrite
its last block's start again.
"""
import argparse
import mmap
import os
import tempfile
import time

ap = argparse.ArgumentParser()
ap.add_argument("--bytes", type=int, default=2700, help="bytes per record")
ap.add_argument("--n", type=int, default=3000, help="records")
ap.add_argument("--dir", default=tempfile.gettempdir())
ap.add_argument("--direct", action="store_true", help="O_DIRECT, whole 4 KiB blocks")
args = ap.parse_args()

path = os.path.join(args.dir, "semel-fsync-floor.bin")
span = 8 << 20
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
try:
    os.pwrite(fd, b"\0" * span, 0)
    os.fsync(fd)
    record = b"x" * args.bytes
    if args.direct:
        os.close(fd)
        fd = os.open(path, os.O_RDWR | os.O_DIRECT)
        blocks = -(-args.bytes // 4096) * 4096
        record = mmap.mmap(-1, blocks)  # page-aligned, as O_DIRECT needs
        record.write(b"x" * args.bytes)
    times, at = [], 0
    for _ in range(args.n):
        if at + len(record) > span:
            at = 0
        t = time.perf_counter()
        os.pwrite(fd, record, at)
        os.fdatasync(fd)
        times.append(time.perf_counter() - t)
        at += len(record)
    mean = sum(times) / len(times)
    times.sort()
    p50, p99 = times[len(times) // 2], times[len(times) * 99 // 100]
    how = f"O_DIRECT {len(record)} B" if args.direct else f"overwrite {args.bytes} B"
    print(f"{how} + fdatasync: p50 {p50 * 1e6:.0f} us, p99 {p99 * 1e6:.0f} us, "
          f"mean {mean * 1e6:.0f} us; 1/p50 = {1 / p50:.0f}/s (0.8 x = {0.8 / p50:.0f}/s), "
          f"1/mean = {1 / mean:.0f}/s (0.8 x = {0.8 / mean:.0f}/s)")
finally:
    os.close(fd)
    os.unlink(path)
