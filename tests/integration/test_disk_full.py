#!/usr/bin/env python3
"""A full disk delays records; it never loses or breaks one.

The JSON file lives on a 256 KiB tmpfs. 3,000 flows end (about 1.6 MB of
records): writes fail with ENOSPC part-way, ctd keeps the bytes buffered
and then holds further records back on its dying list. The test checks
ctd said so and is alive, then grows the tmpfs to 8 MiB: every flow must
then be in the file exactly once and every line must be whole JSON (a
write cut short by ENOSPC is completed by the next one).

Then the same with the full disk replaced instead of grown: a fresh
tmpfs is mounted over the directory, no signal. ctd notices the path no
longer names its file, opens it again on the new disk and writes what it
held there: the old disk's file and the new one together have every flow
exactly once.

Last, a disk that breaks: the file lives on ext4 on a loop device; half
the flows are written, then an ext4 error (trigger_fs_error, the path a
failing disk takes) remounts it read-only. ctd holds the rest, says the
file system went read-only after a disk error, and when a fresh disk is
mounted at the same path it moves there by itself: both disks together
have every flow exactly once.

Ground truth: UDP flows 127.0.0.1:(base+i) -> 127.0.0.1:5555.

Usage: test_disk_full.py --ctd PATH
"""
import json
import os
import subprocess
import time

import ctdns
from ctdns import Ctd, Fail, check, flows

FLOWS, BASE = 3000, 30000


def mount(args):
    r = subprocess.run(["mount"] + args, capture_output=True, text=True)
    check(r.returncode == 0, "mount %s failed: %s" % (args, r.stderr.strip()))


def wait_for(cond, secs):
    end = time.time() + secs
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.1)
    return False


def count_lines(datas, want):
    counts = {}
    for data in datas:
        check(data.endswith(b"\n") or not data, "a file ends in a partial line")
        for i, line in enumerate(data.splitlines(), 1):
            try:
                r = json.loads(line)
            except ValueError as e:
                raise Fail("line %d is not whole JSON: %s" % (i, e))
            o = r["orig"]
            if o["dport"] == 5555 and o["sport"] in want:
                counts[o["sport"]] = counts.get(o["sport"], 0) + 1
    missing = sorted(want - set(counts))
    doubled = sorted(k for k, v in counts.items() if v > 1)
    check(not missing and not doubled, "%d flows: %d missing %s, %d doubled %s"
          % (len(want), len(missing), missing[:5], len(doubled), doubled[:5]))
    return counts


def new_disk(ctd, disk, path):
    """A fresh disk mounted at disk; waits until ctd wrote what the old
    one lacks to path there. Returns (old file, new file) bytes.

    ctd runs in a mount namespace of its own (ip netns exec), which this
    one's mounts do not reach (/ is private here): the new disk goes
    into ctd's, and its file is read through /proc/PID/root."""
    r = subprocess.run(["nsenter", "-t", str(ctd.proc.pid), "-m", "mount",
                        "-t", "tmpfs", "-o", "size=8m", "tmpfs", disk],
                       capture_output=True, text=True)
    check(r.returncode == 0, "cannot mount the new disk: " + r.stderr)
    seen = "/proc/%d/root%s" % (ctd.proc.pid, path)
    with open(path, "rb") as f:
        old = f.read()      # the old disk, as this namespace still sees it
    check(wait_for(lambda: os.path.exists(seen) and
                   sum(1 for _ in open(seen, "rb")) + old.count(b"\n")
                   >= FLOWS, 60),
          "ctd did not move to the new disk:\n" + ctd.log_text())
    time.sleep(1)
    with open(seen, "rb") as f:
        return old, f.read()


def replaced(ctd_bin, ns, tmp, disk):
    """The full disk swapped for a fresh one at the same path."""
    path = os.path.join(disk, "flows.json")
    ctd = Ctd(ns, ctd_bin, tmp, ["--grace", "2"], json=path, tag="rp")
    want = {f.sport for f in ns.traffic(flows("udp", FLOWS, sport=BASE))}
    ns.run(["conntrack", "-F"])
    check(wait_for(lambda: "write failed" in ctd.log_text(), 30),
          "the disk never filled up: the test proves nothing")
    old, new = new_disk(ctd, disk, path)
    counters = ctd.stop()
    # A line the full disk cut short ends on the new disk (its rest could
    # not be written to the old one): read the two as one stream.
    count_lines([old + new], want)
    check(counters.get("out_json_gone", 0) >= 1, "the swap was not noticed")
    c = ctdns.identity(counters, "json", FLOWS)
    print("disk replaced: %d flows; the full disk swapped for a new one at "
          "the same path, no signal: %d records on the old disk, %d on the "
          "new, every flow once; records %d = delivered %d, held 0"
          % (FLOWS, old.count(b"\n"), new.count(b"\n"), c["records"],
             c["delivered"]))


def ext4_error(disk):
    """An ext4 error on the file system at disk: it goes read-only."""
    src = subprocess.run(["findmnt", "-n", "-o", "SOURCE", disk],
                         capture_output=True, text=True).stdout.strip()
    with open("/sys/fs/ext4/%s/trigger_fs_error" % os.path.basename(src),
              "w") as f:
        f.write("1")


def broken(ctd_bin, ns, tmp, disk):
    """A disk error mid-run, then a new disk at the same path."""
    path, half = os.path.join(disk, "flows.json"), FLOWS // 2
    ctd = Ctd(ns, ctd_bin, tmp, ["--grace", "2"], json=path, tag="br")
    want = {f.sport for f in ns.traffic(flows("udp", half, sport=BASE))}
    ns.run(["conntrack", "-F"])
    check(ctd.wait_records(half, 30) is not None, "the first half not written")
    ext4_error(disk)
    want |= {f.sport for f in ns.traffic(flows("udp", half,
                                               sport=BASE + half))}
    ns.run(["conntrack", "-F"])
    check(wait_for(lambda: "after a disk error" in ctd.log_text(), 30),
          "ctd did not name the disk error:\n" + ctd.log_text())
    old, new = new_disk(ctd, disk, path)
    counters = ctd.stop()
    count_lines([old + new], want)
    c = ctdns.identity(counters, "json", FLOWS)
    print("disk broken: %d flows; ext4 error after %d records, read-only, "
          "named as a disk error; a new disk at the same path, no signal: "
          "%d records there, every flow once; %d write errors; records %d "
          "= delivered %d, held 0"
          % (FLOWS, old.count(b"\n"), new.count(b"\n"),
             counters.get("out_json_write_errors", 0), c["records"],
             c["delivered"]))


def run(ctd_bin, ns, tmp, disk):
    path = os.path.join(disk, "flows.json")
    ctd = Ctd(ns, ctd_bin, tmp, ["--grace", "2"], json=path)
    want = {f.sport for f in ns.traffic(flows("udp", FLOWS, sport=BASE))}
    ns.run(["conntrack", "-F"])
    check(wait_for(lambda: "write failed" in ctd.log_text(), 30),
          "the disk never filled up: the test proves nothing\n" + ctd.log_text())
    time.sleep(2)
    check(ctd.proc.poll() is None, "ctd died on a full disk:\n" + ctd.log_text())
    full_size = os.path.getsize(path)
    mount(["-o", "remount,size=8m", disk])
    waited = ctd.wait_records(FLOWS, 60)
    counters = ctd.stop()
    with open(path, "rb") as f:
        counts = count_lines([f.read()], want)
    check(counters.get("out_json_write_errors", 0) > 0 and
          counters.get("out_json_deferred", 0) > 0,
          "expected write errors and held records: %s"
          % {k: v for k, v in counters.items() if k.startswith("out_json")})
    check(counters.get("out_json_failed") == 0, "records lost")
    ctdns.identity(counters, "json", FLOWS)
    print("disk full: %d flows; file stuck at %d bytes, %d write errors, "
          "%d records held back; after freeing space all %d in the file "
          "exactly once within %.1f s; records %d = delivered %d, held 0"
          % (FLOWS, full_size, counters["out_json_write_errors"],
             counters["out_json_deferred"], len(counts), waited or -1,
             counters["out_json_records"], counters["out_json_delivered"]))


def broken_only(args):
    with ctdns.sandbox("db") as (ns, tmp):
        disk, img = os.path.join(tmp, "disk"), os.path.join(tmp, "ext4.img")
        os.mkdir(disk)
        with open(img, "wb") as f:
            f.truncate(32 << 20)
        r = subprocess.run(["mkfs.ext4", "-q", "-F", img],
                           capture_output=True, text=True)
        check(r.returncode == 0, "mkfs.ext4: " + r.stderr)
        mount(["-o", "loop,errors=remount-ro", img, disk])
        try:
            broken(args.ctd, ns, tmp, disk)
        finally:
            subprocess.run(["umount", "-l", disk])


def main(args):
    if os.environ.get("ONLY_BROKEN"):
        return broken_only(args)
    with ctdns.sandbox("df") as (ns, tmp):
        disk = os.path.join(tmp, "disk")
        os.mkdir(disk)
        mount(["-t", "tmpfs", "-o", "size=256k", "tmpfs", disk])
        try:
            run(args.ctd, ns, tmp, disk)
        finally:
            subprocess.run(["umount", "-l", disk])
    with ctdns.sandbox("dr") as (ns, tmp):
        disk = os.path.join(tmp, "disk")
        os.mkdir(disk)
        mount(["-t", "tmpfs", "-o", "size=256k", "tmpfs", disk])
        try:
            replaced(args.ctd, ns, tmp, disk)
        finally:
            subprocess.run(["umount", "-l", disk])
    broken_only(args)


if __name__ == "__main__":
    ctdns.main(main)
