#!/usr/bin/env python3
"""Kafka over TLS: the recipe of docs/outputs.md reaches a TLS listener.

librdkafka's mock cluster speaks plaintext only, so the "broker" here is
a Python TLS listener on 127.0.0.1:9093 (in a namespace the test makes)
that requires a client certificate of the test CA and reports the
certificate it got and the first bytes of the Kafka request that came
through the session (an ApiVersions request, key 18). ctd runs with

    kafka-option security.protocol=ssl
    kafka-option ssl.ca.location=.../ca.pem
    kafka-option ssl.certificate.location=.../client.pem
    kafka-option ssl.key.location=.../client.key
    kafka-option ssl.endpoint.identification.algorithm=https

and a second ctd with a CA file that is not there must refuse to start
with one line naming ssl.ca.location. Delivery over Kafka itself is
test_kafka.py's (the transport does not change it).

Usage: test_kafka_tls.py --ctd PATH
"""
import os
import subprocess

import ctdns
from ctdns import Ctd, check
import test_ipfix_tls as tls

BROKER = r"""
import socket, ssl, sys
d = sys.argv[1]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(d + "/server.pem", d + "/server.key")
ctx.load_verify_locations(d + "/ca.pem")
ctx.verify_mode = ssl.CERT_REQUIRED
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 9093))
ls.listen(4)
print("ready", flush=True)
c, _ = ls.accept()
s = ctx.wrap_socket(c, server_side=True)
cn = dict(x[0] for x in s.getpeercert()["subject"])["commonName"]
req = s.recv(64)
print("client", cn, "api_key", int.from_bytes(req[4:6], "big"), flush=True)
"""


def options(tmp, ca):
    o = ["security.protocol=ssl", "ssl.ca.location=" + ca,
         "ssl.certificate.location=%s/client.pem" % tmp,
         "ssl.key.location=%s/client.key" % tmp,
         "ssl.endpoint.identification.algorithm=https"]
    return [a for opt in o for a in ("--kafka-option", opt)]


def main(args):
    with ctdns.sandbox("ktls") as (ns, tmp):
        os.chmod(tmp, 0o755)
        tls.make_certs(tmp)
        broker = ns.start(["python3", "-c", BROKER, tmp], subprocess.PIPE,
                          subprocess.PIPE, text=True)
        check(broker.stdout.readline().strip() == "ready", "the TLS broker did not start")
        ctd = Ctd(ns, args.ctd, tmp, ["--kafka", "localhost:9093"] +
                  options(tmp, tmp + "/ca.pem"))
        try:
            said, _ = broker.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            broker.kill()
            said = ""
        check("client ctd exporter api_key 18" in said,
              "no Kafka request over TLS with ctd's certificate: %r\n%s"
              % (said, ctd.log_text()[-1500:]))
        ctd.stop()
        work = os.path.join(tmp, "bad")
        os.mkdir(work)
        r = subprocess.run(ns.argv([args.ctd, "-o", work + "/f.json", "--spool-dir",
                                    "none", "--control", "none", "--store", "none",
                                    "--kafka", "localhost:9093"] +
                                   options(tmp, tmp + "/missing.pem")),
                           capture_output=True, text=True, timeout=30)
        bad = [l for l in r.stderr.splitlines() if "ssl.ca.location" in l]
        check(r.returncode != 0 and len(bad) == 1,
              "a missing CA file: exit %d, %s" % (r.returncode, r.stderr[-800:]))
        print("kafka over TLS: %s; a missing CA file: %s"
              % (said.strip(), bad[0]))


if __name__ == "__main__":
    ctdns.main(main)
