"""Reading what ctd exported over IPFIX with independent decoders:
libfixbuf's ipfixDump, Wireshark's tshark and python3-ipfix (inside a
Python ssl collector). Nothing here decodes IPFIX itself beyond
splitting a byte stream at message boundaries."""
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


# Debian's python3-ipfix installs into the system interpreter's
# dist-packages, which another python3 first on PATH would not see.
DEBIAN_PYTHON = "/usr/bin/python3"

# An IPFIX-over-TLS collector in Python's ssl, decoding with python3-ipfix
# (Brian Trammell's IPFIX implementation, independent of libfixbuf): the
# templates come from the stream it reads, every data record is written
# as a JSON line {element name: value as text, "tid": template id}; the
# plaintext of each connection also goes to TAG-py<n>.bin. One thread per
# connection; anything the decoder or the TLS layer refuses goes to stderr.
_TLS_COLLECTOR = r"""
import json, os, signal, socket, ssl, sys, threading
import ipfix.ie, ipfix.message, ipfix.template
d, port, cert, ca, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ipfix.ie.use_iana_default()
ipfix.ie.use_5103_default()      # the reverse (biflow) elements
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(d + "/" + cert + ".pem", d + "/" + cert + ".key")
ctx.load_verify_locations(d + "/" + ca + ".pem")
ctx.verify_mode = ssl.CERT_REQUIRED
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(8)
out = open("%s/%s-py.json" % (d, tag), "w")
lock = threading.Lock()

def decode(tmpl, buf, off, recinf=None):
    rec, off = ipfix.template.Template.decode_namedict_from(tmpl, buf, off, recinf=recinf)
    rec = {k: str(v) for k, v in rec.items()}
    rec["tid"] = tmpl.tid
    return rec, off

def serve(c, n):
    raw = open("%s/%s-py%d.bin" % (d, tag, n), "wb")
    msg, buf = ipfix.message.MessageBuffer(), b""
    try:
        s = ctx.wrap_socket(c, server_side=True)
        while True:
            data = s.recv(65536)
            if not data:
                break
            raw.write(data)
            raw.flush()
            buf += data
            while len(buf) >= 4 and len(buf) >= int.from_bytes(buf[2:4], "big"):
                size = int.from_bytes(buf[2:4], "big")
                msg.from_bytes(buf[:size])
                buf = buf[size:]
                lines = [json.dumps(r) + "\n" for r in msg.record_iterator(decode_fn=decode)]
                with lock:
                    out.writelines(lines)
                    out.flush()
    except (ssl.SSLError, OSError) as e:
        print("connection %d: %s" % (n, e), file=sys.stderr, flush=True)
    except Exception as e:
        print("DECODE connection %d: %r" % (n, e), file=sys.stderr, flush=True)

def stop(*_):
    with lock:
        out.flush()
        os._exit(0)

signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
n = 0
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c, n), daemon=True).start()
    n += 1
"""


class TlsCollector:
    """The Python collector above on 127.0.0.1:port inside ns, files in
    directory d: certificate cert (d/cert.pem, d/cert.key), client
    certificates of d/ca.pem required. Listening before the constructor
    returns."""

    def __init__(self, ns, d, port, tag, cert, ca):
        self.d, self.tag = d, tag
        self.err = os.path.join(d, "%s-py.err" % tag)
        self.proc = ns.start([DEBIAN_PYTHON, "-c", _TLS_COLLECTOR, d, str(port),
                              cert, ca, tag], subprocess.PIPE,
                             open(self.err, "w"), text=True)
        check(self.proc.stdout.readline().strip() == "ready",
              "the Python TLS collector on port %d did not start: %s"
              % (port, open(self.err).read()[-500:]))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)

    def records(self):
        """The data records python3-ipfix decoded, as ipfixdump's dicts."""
        import json
        with open(os.path.join(self.d, "%s-py.json" % self.tag)) as f:
            return [json.loads(l) for l in f]

    def errors(self):
        with open(self.err) as f:
            return f.read()


def need_python_ipfix():
    r = subprocess.run([DEBIAN_PYTHON, "-c", "import ipfix.message"],
                       capture_output=True, text=True)
    check(r.returncode == 0, "python3-ipfix is missing for %s (apt-get "
          "install python3-ipfix): %s" % (DEBIAN_PYTHON, r.stderr.strip()[-200:]))
