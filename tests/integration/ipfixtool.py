"""Reading what ctd exported over IPFIX with independent decoders:
libfixbuf's ipfixDump and Wireshark's tshark. Nothing here decodes IPFIX
itself beyond splitting a byte stream at message boundaries."""
import os
import re
import signal
import subprocess

from ctdns import Fail, check

# A bare UDP collector: the datagrams, back to back, are an IPFIX file.
_SINK = r"""
import signal, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind(("127.0.0.1", int(sys.argv[1])))
out = open(sys.argv[2], "wb")
def stop(*_):
    out.close(); sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
while True:
    out.write(s.recv(65535)); out.flush()
"""


class UdpSink:
    """A collector on 127.0.0.1:port inside ns, writing to path; bound
    before the constructor returns, so no datagram of the test is early."""

    def __init__(self, ns, port, path):
        self.path = path
        self.proc = ns.start(["python3", "-c", _SINK, str(port), path],
                             subprocess.PIPE, subprocess.DEVNULL, text=True)
        check(self.proc.stdout.readline().strip() == "ready",
              "UDP collector on port %d did not start" % port)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)


def split_messages(data):
    """Whole IPFIX messages of a byte stream, and the bytes left over."""
    msgs, off = [], 0
    while off + 16 <= len(data):
        check(data[off:off + 2] == b"\x00\x0a",
              "not an IPFIX message at byte %d" % off)
        n = int.from_bytes(data[off + 2:off + 4], "big")
        check(n >= 16, "IPFIX message of length %d at byte %d" % (n, off))
        if off + n > len(data):
            break
        msgs.append(data[off:off + n])
        off += n
    return msgs, len(data) - off


def ipfixdump(path):
    """Data records as dicts {tid, element name: text}, plus the totals
    line. Fails on anything ipfixDump reports as wrong."""
    r = subprocess.run(["ipfixDump", "-i", path], capture_output=True,
                       text=True, timeout=300)
    check(r.returncode == 0, "ipfixDump failed (%d): %s"
          % (r.returncode, r.stderr.strip()[-500:]))
    bad = [l for l in r.stderr.splitlines() if l.strip()]
    check(not bad, "ipfixDump complained: %s" % bad[:5])
    records, cur, in_data = [], None, False
    for line in r.stdout.splitlines():
        if line.startswith("--- data record"):
            cur, in_data = {}, True
            records.append(cur)
        elif line.startswith("--- template record"):
            in_data = False
        elif in_data and "tid:" in line:
            cur["tid"] = int(line.split("tid:")[1].split()[0])
        elif in_data and line.startswith("\t("):
            m = re.match(r"\t\(([0-9/]+)\)\s+(\S+) : (.*)$", line)
            if m:
                cur[m.group(2)] = m.group(3).strip()
    stats = re.search(r"File Stats: (\d+) Messages, (\d+) Data Records, "
                      r"(\d+) Template Records", r.stdout)
    check(stats, "ipfixDump printed no file statistics")
    unknown = re.findall(r"\(\d+/\d+\)\s+(\S+)", r.stdout)
    return records, tuple(int(x) for x in stats.groups()), unknown


def v6(text):
    """ipfixDump writes ::0001; make it ::1."""
    import ipaddress
    return str(ipaddress.ip_address(text))


def flow_key(rec):
    if "sourceIPv4Address" in rec:
        src, dst = rec["sourceIPv4Address"], rec["destinationIPv4Address"]
    else:
        src, dst = v6(rec["sourceIPv6Address"]), v6(rec["destinationIPv6Address"])
    return (src, int(rec["sourceTransportPort"]), dst,
            int(rec["destinationTransportPort"]), int(rec["protocolIdentifier"]))


def once_each(recs, made, skip):
    """Source port -> the one data record of each flow made: every flow
    in made reached the collector, none twice. skip(key) leaves out
    records that are not the test's flows (ctd's own connections)."""
    seen = {}
    for r in recs:
        if r.get("tid") not in (256, 257, 258, 259):
            continue
        k = flow_key(r)
        if not skip(k):
            seen.setdefault(k[1], []).append(r)
    missing = [p for p in made if p not in seen]
    doubled = [p for p, rs in seen.items() if len(rs) > 1]
    check(not missing, "%d flows never reached the collector, e.g. %s"
          % (len(missing), missing[:10]))
    check(not doubled, "%d flows reached it twice, e.g. %s"
          % (len(doubled), doubled[:10]))
    return {p: rs[0] for p, rs in seen.items()}


def tshark_check(pcap, port):
    """tshark's IPFIX dissector over every exported datagram: no
    malformed packet and no expert warning. Returns the data records it
    counted."""
    base = ["tshark", "-r", pcap, "-d", "udp.port==%d,cflow" % port]
    r = subprocess.run(base + ["-Y", "_ws.malformed || _ws.expert.severity >= "
                               "warning", "-T", "fields", "-e", "frame.number",
                               "-e", "_ws.expert.message"],
                       capture_output=True, text=True, timeout=300)
    check(r.returncode == 0, "tshark failed: %s" % r.stderr.strip()[-300:])
    check(not r.stdout.strip(), "tshark flagged exported packets:\n%s"
          % r.stdout[:1000])
    r = subprocess.run(base + ["-Y", "cflow", "-T", "fields", "-e",
                               "cflow.count", "-e", "cflow.flowset_id"],
                       capture_output=True, text=True, timeout=300)
    check(r.returncode == 0, "tshark failed: %s" % r.stderr.strip()[-300:])
    return r.stdout


def payloads(pcap, port):
    """The UDP payloads sent to port, concatenated (an IPFIX file)."""
    r = subprocess.run(["tshark", "-r", pcap, "-Y", "udp.dstport==%d" % port,
                        "-T", "fields", "-e", "udp.payload"],
                       capture_output=True, text=True, timeout=300)
    check(r.returncode == 0, "tshark failed: %s" % r.stderr.strip()[-300:])
    return b"".join(bytes.fromhex(l.replace(":", "")) for l in r.stdout.split())


def need_tools():
    for tool in ("ipfixDump", "tshark", "dumpcap", "nfcapd", "nfdump"):
        check(any(os.access(os.path.join(d, tool), os.X_OK)
                  for d in os.environ.get("PATH", "").split(":")),
              "%s is missing (apt-get install nfdump libfixbuf-tools tshark)"
              % tool)
