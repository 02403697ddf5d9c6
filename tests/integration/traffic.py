"""The one traffic generator of the kernel tests. Runs inside a test's
namespace (ctdns.Traffic starts it with `ip netns exec`), makes the flows
it is told to, and writes what it made, flow by flow, as ground truth.

Usage: traffic.py --truth PATH [--capture] SETS_JSON

SETS_JSON is a list of flow sets, made one after the other. A set's keys
(unknown ones are refused); a value marked "cycled" is a number or a
list, and flow i takes list[i % len(list)]:
  proto      "udp" or "tcp"
  count      flows in the set
  src        client address (default 127.0.0.1); the family follows it
  sport      flow i's client binds src:sport+i (default: the kernel picks)
  fan        UDP only: one client socket bound to src:sport sends flow i to
             127.a.b.c with a.b.c = i + 65536 (distinct tuples, one socket)
  dst        address the client sends to (default src)
  dport      port the client sends to (default 5555)
  listen     [addr, port] the server binds (default [dst, dport]); false =
             no server at all
  size       cycled: UDP payload per datagram, TCP bytes the client sends
  packets    cycled: UDP datagrams the client sends (default 1)
  replies    cycled: UDP datagrams the server answers with (default 0)
  reply_size cycled: their payload; TCP: bytes the server sends back
  gap        seconds between one flow's exchanges (default 0)
  rate       flows per second, paced; 0 = as fast as one socket goes
  every, run after every `every` flows: run the command `run` (if any) and
             print the set's running count on stdout
  tag        copied into the set's truth lines

A UDP server reads the datagrams (and so learns the peer, which NAT may
have changed) only when the set has replies: a storm without them must
not spend the time.

Truth: one JSON list per flow, written as the flow is made (a soak makes
millions): tag, proto, src, sport, dst, dport, then what the kernel should
count — packets and L3 bytes each way (null for TCP: ACKs and options are
the kernel's business), the peer the server saw (or null), and with
--capture the packet and byte counts a capture of lo saw both ways (then
written at the end). Last line: {"made": flows, "seconds": s} (+
"capture_drops"). With --capture, the capture (AF_PACKET on lo, outgoing
copies only, since loopback shows every packet twice) counts every packet
once with its full L3 length, as conntrack does.
"""
import argparse
import json
import socket
import struct
import subprocess
import sys
import threading
import time

SOL_PACKET, PACKET_STATISTICS, PACKET_OUTGOING = 263, 6, 4
KEYS = {"proto", "count", "src", "sport", "fan", "dst", "dport", "listen",
        "size", "packets", "replies", "reply_size", "gap", "rate", "every",
        "run", "tag"}


def pick(v, i):
    return v[i % len(v)] if isinstance(v, list) else v


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def fan_dst(i):
    j = i + 65536
    return "127.%d.%d.%d" % (j >> 16, (j >> 8) & 255, j & 255)


class Capture(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                                  socket.htons(0x0003))
        self.sock.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.2)
        self.flows = {}
        self.stop = False

    def run(self):
        while not self.stop:
            try:
                pkt, addr = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            if addr[2] == PACKET_OUTGOING:
                self.account(pkt[14:])

    def account(self, ip):
        if ip[0] >> 4 == 4:
            ihl, length, proto = (ip[0] & 15) * 4, struct.unpack("!H", ip[2:4])[0], ip[9]
            src, dst, l4 = socket.inet_ntop(socket.AF_INET, ip[12:16]), \
                socket.inet_ntop(socket.AF_INET, ip[16:20]), ip[ihl:]
        elif ip[0] >> 4 == 6:
            length, proto = 40 + struct.unpack("!H", ip[4:6])[0], ip[6]
            src, dst, l4 = socket.inet_ntop(socket.AF_INET6, ip[8:24]), \
                socket.inet_ntop(socket.AF_INET6, ip[24:40]), ip[40:]
        else:
            return
        if proto not in (6, 17):
            return
        sport, dport = struct.unpack("!HH", l4[:4])
        key = (proto, src, sport, dst, dport)
        rkey = (proto, dst, dport, src, sport)
        if rkey in self.flows:
            c = self.flows[rkey]["reply"]
        else:
            c = self.flows.setdefault(key, {"orig": [0, 0], "reply": [0, 0]})["orig"]
        c[0] += 1
        c[1] += length

    def finish(self):
        time.sleep(0.3)
        self.stop = True
        self.join()
        stats = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        return struct.unpack("II", stats)[1]

    def counts(self, f):
        c = self.flows.get((17 if f[1] == "udp" else 6, f[2], f[3], f[4], f[5]))
        return c["orig"] + c["reply"] if c else None


def client(s, i, fam, sock=None):
    """Flow i's client socket: bound to its own port, or the shared one."""
    if sock is not None:
        return sock
    c = socket.socket(fam, socket.SOCK_DGRAM if s["proto"] == "udp" else
                      socket.SOCK_STREAM)
    if s.get("sport") is not None:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        c.bind((s["src"], s["sport"] + i))
    return c


def udp_flow(s, i, c, srv, dst, reads):
    """Sends and answers flow i's datagrams; returns its source port and
    truth counters."""
    hdr = 48 if family(s["src"]) == socket.AF_INET6 else 28
    n, size = pick(s.get("packets", 1), i), pick(s.get("size", 20), i)
    r, rsize = pick(s.get("replies", 0), i), pick(s.get("reply_size", 0), i)
    peer = None
    for k in range(max(n, r)):
        if k < n:
            c.sendto(b"x" * size, (dst, s["dport"]))
            if reads:
                _, peer = srv.recvfrom(65536)
        if k < r:
            srv.sendto(b"y" * rsize, peer)
            c.recv(65536)
        if s.get("gap"):
            time.sleep(s["gap"])
    return [c.getsockname()[1], n, n * (hdr + size), r, r * (hdr + rsize),
            list(peer[:2]) if peer else None]


def tcp_flow(s, i, c, lst, dst, reads):
    """Connects, sends size bytes, gets reply_size back, closes; returns
    the source port (the kernel's pick without sport)."""
    c.connect((dst, s["dport"]))
    sport = c.getsockname()[1]
    a, peer = lst.accept()
    size, rsize = pick(s.get("size", 0), i), pick(s.get("reply_size", 0), i)
    if size:
        c.sendall(b"t" * size)
        got = 0
        while got < size:
            got += len(a.recv(65536))
    if rsize:
        a.sendall(b"s" * rsize)
    a.shutdown(socket.SHUT_WR)
    while c.recv(65536):
        pass
    c.close()
    a.close()
    return [sport, None, None, None, None, list(peer[:2])]


def server(s, fam):
    if s["listen"] is False:
        return None
    kind = socket.SOCK_DGRAM if s["proto"] == "udp" else socket.SOCK_STREAM
    srv = socket.socket(fam, kind)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(tuple(s["listen"]))
    if kind == socket.SOCK_STREAM:
        srv.listen(64)
    return srv


def pace(s, start, i):
    if s.get("rate"):
        due = start + i / s["rate"]
        now = time.time()
        if due > now:
            time.sleep(due - now)


def progress(s, i):
    if s.get("every") and i % s["every"] == s["every"] - 1:
        if s.get("run"):
            subprocess.run(s["run"], capture_output=True)
        print(i + 1, flush=True)


def make_set(s, emit):
    s = dict(s)
    s.setdefault("src", "127.0.0.1")
    s.setdefault("dst", s["src"])
    s.setdefault("dport", 5555)
    s.setdefault("listen", [s["dst"], s["dport"]])
    fam = family(s["src"])
    srv = server(s, fam)
    replies = s.get("replies", 0)
    reads = srv is not None and (any(replies) if isinstance(replies, list)
                                 else bool(replies))
    shared = client(s, 0, fam) if s.get("fan") else None
    flow = udp_flow if s["proto"] == "udp" else tcp_flow
    start = time.time()
    for i in range(s["count"]):
        pace(s, start, i)
        dst = fan_dst(i) if shared else s["dst"]
        c = client(s, i, fam, shared)
        sport, *counts = flow(s, i, c, srv, dst, reads)
        if not shared:
            c.close()
        emit([s.get("tag"), s["proto"], s["src"], sport, dst, s["dport"]] + counts)
        progress(s, i)
    for sock in (srv, shared):
        if sock is not None:
            sock.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--truth", required=True)
    ap.add_argument("--capture", action="store_true")
    ap.add_argument("sets")
    args = ap.parse_args()
    sets = json.loads(args.sets)
    for s in sets:
        unknown = set(s) - KEYS
        if unknown:
            sys.exit("unknown flow set keys %s" % sorted(unknown))
    out = open(args.truth, "w")
    cap, held = (Capture(), []) if args.capture else (None, None)
    if cap:
        cap.start()
    t, made = time.time(), 0
    for s in sets:
        emit = held.append if cap else \
            (lambda f: out.write(json.dumps(f) + "\n"))
        make_set(s, emit)
        made += s["count"]
    summary = {"made": made, "seconds": time.time() - t}
    if cap:
        summary["capture_drops"] = cap.finish()
        for f in held:
            out.write(json.dumps(f + [cap.counts(f)]) + "\n")
    out.write(json.dumps(summary) + "\n")
    out.close()


if __name__ == "__main__":
    main()
