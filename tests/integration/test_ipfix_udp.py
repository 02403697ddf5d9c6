#!/usr/bin/env python3
"""IPFIX over UDP to a real collector, checked by two more decoders.

In a namespace with an SNAT and a DNAT rule (IPv4) and a DNAT rule
(IPv6), nfdump's nfcapd listens on 127.0.0.1:4739 and dumpcap records
every datagram ctd sends it. Made: 1,200 IPv4 and 300 IPv6 UDP flows
with known packet counts and sizes in both directions, 60 NATed flows of
each kind and 30 TCP connections; then `conntrack -F`.

nfdump must show every flow exactly once with its addresses, ports,
protocol, packets and bytes both ways (biflow: nfdump's "out"), start and
end equal to ctd's JSON record to the millisecond, end reason "forced
end", and for the NATed ones the translated address and port and
natEvent 5. tshark's IPFIX dissector must find no malformed datagram,
and libfixbuf's ipfixDump must decode every data record with known
templates (IPv6 post-NAT addresses are checked there: nfdump 1.7 does
not read them). Then, with the uniflow and initiator shapes, 200 flows
each are read back with ipfixDump from a plain UDP socket.

Usage: test_ipfix_udp.py --ctd PATH
"""
import json
import os
import signal
import subprocess
import time

import ctdns
from ctdns import Ctd, Fail, check
import ipfixtool

PORT = 4739
NAT = (ctdns.NAT4 +
       "add table ip6 n6; "
       "add chain ip6 n6 out { type nat hook output priority -100; }; "
       "add rule ip6 n6 out ip6 daddr ::1 udp dport 7001 dnat to [::1]:5555")

def udp(kind, sport, count, src="127.0.0.1", **kw):
    """Flow i: 1-3 datagrams of 10-49 bytes out, 0-2 of 5-11 bytes back."""
    return ctdns.flows("udp", count, tag=kind, sport=sport, src=src,
                       packets=[1, 2, 3], size=list(range(10, 50)),
                       replies=[0, 1, 2], reply_size=list(range(5, 12)), **kw)


def gen(ns, base, n4, n6, nnat, ntcp):
    """Plain flows over both families, NATed ones of each kind, and TCP
    connections; the ground truth, flow by flow (tag: the kind)."""
    return ns.traffic(
        udp("v4", base, n4), udp("v6", base, n6, src="::1"),
        udp("dnat4", base + 10000, nnat, dst="127.0.0.10", dport=7000,
            listen=("127.0.0.1", 5555)),
        udp("snat4", base + 11000, nnat, dport=5556),
        udp("dnat6", base + 12000, nnat, src="::1", dport=7001,
            listen=("::1", 5555)),
        ctdns.flows("tcp", ntcp, tag="tcp", sport=base + 13000, dport=6666,
                    size=list(range(100, 100 + ntcp)),
                    reply_size=list(range(50, 50 + ntcp))), timeout=300)


def wait_file_stable(pattern_dir, secs):
    end = time.time() + secs
    while time.time() < end:
        if any(f.startswith("nfcapd.2") for f in os.listdir(pattern_dir)):
            return
        time.sleep(0.1)
    raise Fail("nfcapd wrote no file in %s" % pattern_dir)


def nfdump_flows(nfdir):
    r = subprocess.run(["nfdump", "-R", nfdir, "-o", "json"],
                       capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, TZ="UTC"))
    check(r.returncode == 0, "nfdump failed: %s" % r.stderr.strip())
    return json.loads(r.stdout)


def ms_of(text):
    """nfdump's "2026-11-24T22:50:46.252" (UTC) to ms since the epoch."""
    import calendar
    day, frac = text.split(".")
    return calendar.timegm(time.strptime(day, "%Y-%m-%dT%H:%M:%S")) * 1000 + int(frac)


def check_nfdump(flows, nf, by_json):
    seen = {}
    for r in nf:
        if r.get("type") != "FLOW" or r.get("dst_port") == PORT:
            continue
        src = r.get("src4_addr") or r.get("src6_addr")
        dst = r.get("dst4_addr") or r.get("dst6_addr")
        key = (src, r["src_port"], dst, r["dst_port"], r["proto"])
        check(key not in seen, "nfdump shows %s twice" % (key,))
        seen[key] = r
    bad = []
    for f in flows:
        key = (f.src, f.sport, f.dst, f.dport, 6 if f.proto == "tcp" else 17)
        r = seen.pop(key, None)
        if r is None:
            bad.append("missing %s" % (key,))
            continue
        j = by_json[key]
        want = (j["orig"]["packets"], j["orig"]["bytes"],
                j["reply"]["packets"], j["reply"]["bytes"])
        if f.proto != "tcp":
            check(want == f.counts, "ctd's JSON counters %s differ "
                  "from the traffic made %s for %s" % (want, f.counts, key))
        got = (r["in_packets"], r["in_bytes"], r["out_packets"], r["out_bytes"])
        if got != want:
            bad.append("%s: nfdump %s, made %s" % (key, got, want))
        if (ms_of(r["first"]), ms_of(r["last"])) != (j["start_ms"], j["end_ms"]):
            bad.append("%s: times %s..%s, JSON %d..%d" % (key, r["first"], r["last"],
                                                         j["start_ms"], j["end_ms"]))
        bad += check_nat(f, r)
    check(not seen, "nfdump has flows nobody made: %s" % list(seen)[:5])
    check(not bad, "%d flows wrong in nfdump, e.g.:\n%s" % (len(bad), "\n".join(bad[:10])))


def check_nat(f, r):
    kind = f.tag
    if kind in ("v4", "v6", "tcp"):
        return [] if "nat_event_id" not in r else ["%s: natEvent on a plain flow" % f]
    out = []
    if r.get("nat_event_id") != "5":
        out.append("%s: natEvent %s" % (f.key, r.get("nat_event_id")))
    if kind == "dnat4" and (r.get("dst4_xlt_ip"), r.get("dst_xlt_port")) != ("127.0.0.1", "5555"):
        out.append("%s: DNAT xlate %s:%s" % (f.key, r.get("dst4_xlt_ip"), r.get("dst_xlt_port")))
    if kind == "snat4" and (r.get("src4_xlt_ip"), r.get("src_xlt_port")) != ("127.0.0.7", str(f.peer[1])):
        out.append("%s: SNAT xlate %s:%s, server saw %s:%s" % (
            f.key, r.get("src4_xlt_ip"), r.get("src_xlt_port"), f.peer[0], f.peer[1]))
    if kind == "dnat6" and r.get("dst_xlt_port") != "5555":
        out.append("%s: DNAT6 xlate port %s" % (f.key, r.get("dst_xlt_port")))
    return out


def check_fixbuf(flows, path, shape):
    recs, (msgs, ndata, ntmpl), _ = ipfixtool.ipfixdump(path)
    data = [r for r in recs if r.get("tid") in (256, 257, 258, 259)]
    by_key = {}
    for r in data:
        k = ipfixtool.flow_key(r)
        if k[3] == PORT or k[1] == PORT:
            continue
        by_key.setdefault(k, []).append(r)
    bad = []
    for f in flows:
        key = (f.src, f.sport, f.dst, f.dport, 6 if f.proto == "tcp" else 17)
        rs = by_key.get(key, [])
        if len(rs) != 1:
            bad.append("%s: %d records" % (key, len(rs)))
            continue
        r = rs[0]
        if f.proto == "tcp":
            continue
        a, ab, b, bb = f.counts
        if shape == "initiator":
            got = tuple(int(r[k]) for k in ("initiatorPackets", "initiatorOctets",
                                             "responderPackets", "responderOctets"))
        elif shape == "uniflow":
            # The reply direction's own record: server to client.
            rb = by_key.get((f.dst, f.dport, f.src, f.sport, 17), [])
            got = (int(r["packetDeltaCount"]), int(r["octetDeltaCount"]),
                   int(rb[0]["packetDeltaCount"]) if len(rb) == 1 else None,
                   int(rb[0]["octetDeltaCount"]) if len(rb) == 1 else None)
        else:
            got = tuple(int(r[k]) for k in ("packetDeltaCount", "octetDeltaCount",
                                             "reversePacketDeltaCount",
                                             "reverseOctetDeltaCount"))
        if got != (a, ab, b, bb):
            bad.append("%s %s: %s, made %s" % (shape, key, got, (a, ab, b, bb)))
        if r.get("flowEndReason") != "4":
            bad.append("%s: flowEndReason %s after a flush" % (key, r.get("flowEndReason")))
        if f.tag == "dnat6" and (ipfixtool.v6(r["postNATDestinationIPv6Address"]),
                                r["postNAPTDestinationTransportPort"]) != ("::1", "5555"):
            bad.append("%s: IPv6 post-NAT %s" % (key, r))
    check(not bad, "%d flows wrong in ipfixDump's reading, e.g.:\n%s"
          % (len(bad), "\n".join(bad[:10])))
    return msgs, ndata, ntmpl


def json_index(ctd):
    idx = {}
    for j in ctd.records():
        o = j["orig"]
        idx[(o["src"], o.get("sport"), o["dst"], o.get("dport"), j["proto_num"])] = j
    return idx


def storm_to_nfcapd(ns, tmp, binary):
    nfdir = os.path.join(tmp, "nf")
    os.mkdir(nfdir)
    pcap = os.path.join(tmp, "ipfix.pcapng")
    cap = ns.start(["dumpcap", "-q", "-i", "lo", "-f", "udp dst port %d" % PORT,
                    "-w", pcap], subprocess.DEVNULL, open(os.path.join(tmp, "dumpcap.log"), "w"))
    col = ns.start(["nfcapd", "-w", nfdir, "-b", "127.0.0.1", "-p", str(PORT),
                    "-t", "3600", "-B", "8388608"], open(os.path.join(tmp, "nfcapd.log"), "w"),
                   subprocess.STDOUT)
    time.sleep(1.5)
    ctd = Ctd(ns, binary, tmp, ["--ipfix", "udp:127.0.0.1:%d" % PORT])
    flows = gen(ns, 20000, 1200, 300, 60, 30)
    ns.run(["conntrack", "-F"])
    n = len(flows)
    check(ctd.wait_records(n, 60) is not None, "ctd wrote fewer than %d records" % n)
    time.sleep(1)
    counters = ctd.stop()
    for p in (col, cap):
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    by_json = json_index(ctd)
    check_nfdump(flows, nfdump_flows(nfdir), by_json)
    ipfixtool.tshark_check(pcap, PORT)
    raw = os.path.join(tmp, "udp.ipfix")
    with open(raw, "wb") as f:
        f.write(ipfixtool.payloads(pcap, PORT))
    msgs, ndata, ntmpl = check_fixbuf(flows, raw, "biflow")
    size = os.path.getsize(raw)
    return n, counters, msgs, ndata, size


def shape_run(ns, tmp, binary, shape, port):
    sub = os.path.join(tmp, shape)
    os.mkdir(sub)
    sink = os.path.join(sub, "recv.ipfix")
    recv = ipfixtool.UdpSink(ns, port, sink)
    ctd = Ctd(ns, binary, sub, ["--ipfix", "udp:127.0.0.1:%d" % port,
                                "--ipfix-shape", shape, "--ipfix-mtu", "1500"])
    flows = gen(ns, 40000 + port % 1000 * 20, 150, 50, 0, 0)
    ns.run(["conntrack", "-F"])
    check(ctd.wait_records(len(flows), 60) is not None, "%s: records missing" % shape)
    time.sleep(1)
    ctd.stop()
    recv.stop()
    msgs, ndata, _ = check_fixbuf(flows, sink, shape)
    return len(flows), ndata, os.path.getsize(sink), msgs


def main(args):
    ipfixtool.need_tools()
    with ctdns.sandbox("ipu") as (ns, tmp):
        ns.sysctl("nf_conntrack_acct", 1)
        ns.run(["nft", NAT])
        n, counters, msgs, ndata, size = storm_to_nfcapd(ns, tmp, args.ctd)
        check(counters.get("out_ipfix_failed", 1) == 0, "ipfix failures: %s" % counters)
        line = ("ipfix udp: %d flows sent, nfdump shows all %d once with counters, "
                "times and NAT right; tshark clean; ipfixDump %d messages, %d data "
                "records, %.1f bytes/record on the wire (biflow)"
                % (n, n, msgs, ndata, size / max(ndata, 1)))
        for shape, port in (("uniflow", 4740), ("initiator", 4741)):
            k, nd, sz, m = shape_run(ns, tmp, args.ctd, shape, port)
            line += "; %s: %d flows, %d data records, %.1f bytes/flow" % (
                shape, k, nd, sz / k)
        print(line)


if __name__ == "__main__":
    ctdns.main(main)
