"""Runs inside the test's namespace: captures loopback, makes a known set
of flows, and writes the ground truth as JSON to argv[1].

Flows, each with its own fixed 5-tuple (explicit source ports, so none is
reused): UDP over 127.0.0.1 and ::1 with known payloads (every tenth one
unanswered), and complete TCP connections over both families. The packet
capture (AF_PACKET on lo, outgoing copies only, since loopback shows every
packet twice) gives per-direction packet and L3 byte counts for every
flow: conntrack counts each loopback packet once with its full L3 length.
"""
import json
import socket
import struct
import sys
import threading
import time

UDP4, UDP6, TCP4, TCP6 = 1000, 100, 200, 50
SOL_PACKET, PACKET_STATISTICS, PACKET_OUTGOING = 263, 6, 4


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


def udp_flows(family, host, base, n, truth):
    hdr = 28 if family == socket.AF_INET else 48
    srv = socket.socket(family, socket.SOCK_DGRAM)
    srv.bind((host, base - 1))
    for i in range(n):
        c = socket.socket(family, socket.SOCK_DGRAM)
        c.bind((host, base + i))
        size = 1 + i % 500
        c.sendto(b"u" * size, (host, base - 1))
        data, peer = srv.recvfrom(4096)
        answered = i % 10 != 9
        if answered:
            srv.sendto(b"r" * (size // 2), peer)
            c.recv(4096)
        c.close()
        truth.append({"proto": "udp", "src": host, "sport": base + i,
                      "dst": host, "dport": base - 1,
                      "expect": [1, hdr + size, int(answered),
                                 hdr + size // 2 if answered else 0]})


def tcp_flows(family, host, base, n, truth):
    lst = socket.socket(family, socket.SOCK_STREAM)
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind((host, base - 1))
    lst.listen(64)
    for i in range(n):
        c = socket.socket(family, socket.SOCK_STREAM)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        c.bind((host, base + i))
        c.connect((host, base - 1))
        a, _ = lst.accept()
        c.sendall(b"t" * (100 + i))
        got = 0
        while got < 100 + i:
            got += len(a.recv(65536))
        a.sendall(b"s" * (10 + i))
        a.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            d = c.recv(65536)
            if not d:
                break
            got += d
        c.close()
        a.close()
        truth.append({"proto": "tcp", "src": host, "sport": base + i,
                      "dst": host, "dport": base - 1})


def main():
    cap = Capture()
    cap.start()
    truth = []
    t = time.time()
    udp_flows(socket.AF_INET, "127.0.0.1", 20001, UDP4, truth)
    udp_flows(socket.AF_INET6, "::1", 22001, UDP6, truth)
    tcp_flows(socket.AF_INET, "127.0.0.1", 30001, TCP4, truth)
    tcp_flows(socket.AF_INET6, "::1", 32001, TCP6, truth)
    made = time.time() - t
    drops = cap.finish()
    for f in truth:
        proto = 17 if f["proto"] == "udp" else 6
        c = cap.flows.get((proto, f["src"], f["sport"], f["dst"], f["dport"]))
        f["captured"] = c["orig"] + c["reply"] if c else None
    json.dump({"flows": truth, "capture_drops": drops, "seconds": made},
              open(sys.argv[1], "w"))


if __name__ == "__main__":
    main()
