#!/usr/bin/env python3
"""The shipped Grafana dashboard and alert rules work on a real scrape.

ctd runs in a namespace with --metrics; a real Prometheus (Debian's)
runs beside it, scraping every second and evaluating
docs/prometheus-alerts.yml every second. FLOWS UDP flows end
(`conntrack -F`) while it scrapes. Then every query of every panel in
docs/grafana-dashboard.json ($__rate_interval as 15s, $instance as .*)
is run through Prometheus' HTTP API: each must succeed and return data,
so a renamed metric or a typo in the dashboard fails here. Every alert
rule must have been evaluated with health "ok" (no query error).

Usage: test_dashboard.py --ctd PATH
"""
import json
import os
import shutil
import time

import ctdns
from ctdns import Ctd, check, flows

FLOWS = 500
METRICS, PROM = "127.0.0.1:9477", "127.0.0.1:9490"
TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DASHBOARD = os.path.join(TOP, "docs", "grafana-dashboard.json")
RULES = os.path.join(TOP, "docs", "prometheus-alerts.yml")

CONFIG = """global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["%s"]
scrape_configs:
  - job_name: ctd
    static_configs:
      - targets: ["%s"]
"""

# Runs in the namespace: GET PATH?query from Prometheus, prints the JSON.
GET = r"""
import sys, urllib.parse, urllib.request
url = "http://%s%s" % (sys.argv[1], sys.argv[2])
if len(sys.argv) > 3:
    url += "?" + urllib.parse.urlencode({"query": sys.argv[3]})
print(urllib.request.urlopen(url, timeout=10).read().decode())
"""


def api(ns, path, query=None):
    args = ["python3", "-c", GET, PROM, path] + ([query] if query else [])
    return json.loads(ns.run(args))


def queries():
    """(panel title, expr) for every target of every panel."""
    with open(DASHBOARD) as f:
        dash = json.load(f)
    check(dash.get("panels"), "the dashboard has no panels")
    for p in dash["panels"]:
        check(p.get("targets"), "panel %r has no query" % p.get("title"))
        for t in p["targets"]:
            yield p["title"], t["expr"]


def concrete(expr):
    return (expr.replace("$__rate_interval", "15s")
            .replace('=~"$instance"', '=~".*"'))


def wait_scrapes(ns, n, secs):
    end = time.time() + secs
    while time.time() < end:
        try:
            r = api(ns, "/api/v1/query", 'count_over_time(up{job="ctd"}[1m])')
            if r["data"]["result"] and \
                    float(r["data"]["result"][0]["value"][1]) >= n:
                return
        except (ctdns.Fail, OSError, ValueError, KeyError):
            # Prometheus answers 503 until it is ready.
            pass
        time.sleep(0.5)
    raise ctdns.Fail("Prometheus did not scrape ctd %d times in %d s" % (n, secs))


def check_panels(ns):
    n = 0
    for title, expr in queries():
        r = api(ns, "/api/v1/query", concrete(expr))
        check(r.get("status") == "success",
              "panel %r: query %s failed: %s" % (title, expr, r))
        check(r["data"]["result"], "panel %r: no data for %s" % (title, expr))
        n += 1
    return n


def check_rules(ns):
    with open(RULES) as f:
        want = sum(1 for line in f if line.strip().startswith("- alert:"))
    groups = api(ns, "/api/v1/rules")["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    check(len(rules) == want, "Prometheus loaded %d rules of %d"
          % (len(rules), want))
    bad = [(r["name"], r.get("lastError")) for r in rules
           if r.get("health") != "ok"]
    check(not bad, "alert rules that fail to evaluate: %s" % bad)
    return len(rules)


def main(args):
    check(shutil.which("prometheus"), "prometheus not found: install the "
          "Debian package prometheus")
    with ctdns.sandbox("dash") as (ns, tmp):
        ctd = Ctd(ns, args.ctd, tmp, ["--metrics", METRICS])
        conf = os.path.join(tmp, "prometheus.yml")
        with open(conf, "w") as f:
            f.write(CONFIG % (RULES, METRICS))
        ns.start(["prometheus", "--config.file=" + conf,
                  "--storage.tsdb.path=" + os.path.join(tmp, "tsdb"),
                  "--web.listen-address=" + PROM], open(os.devnull, "w"),
                 open(os.path.join(tmp, "prometheus.log"), "w"))
        wait_scrapes(ns, 2, 60)
        ns.traffic(flows("udp", FLOWS, sport=40000))
        ns.run(["conntrack", "-F"])
        ctd.wait_records(FLOWS, 30)
        wait_scrapes(ns, 5, 60)
        panels = check_panels(ns)
        rules = check_rules(ns)
        # Scrapes and API queries are flows of their own: no exact count.
        ctdns.identity(ctd.stop(), "json")
        print("dashboard: %d panel queries return data from a real "
              "Prometheus scrape of ctd after %d flows; %d alert rules "
              "evaluated with health ok" % (panels, FLOWS, rules))


if __name__ == "__main__":
    ctdns.main(main)
