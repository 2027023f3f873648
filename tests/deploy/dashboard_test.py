#!/usr/bin/env python3
"""Checks the Grafana dashboard deploy/grafana/crucible-dashboard.json: it
parses, every panel has a Prometheus query on the ${DS_PROMETHEUS} data
source variable, and every metric an expression names exists: a crucible_*
name (less _bucket, _sum, _count) must be registered somewhere in the C++
sources of server/, worker/, executor/ or common/ (as the string literal
"name"), a haproxy_* name is HAProxy's exporter's (the docker-proxy's
frontend metrics). So renaming or dropping a metric breaks this test
until the dashboard follows.

    dashboard_test.py REPO_ROOT
"""
import json
import os
import re
import sys
import unittest

ROOT = sys.argv.pop(1) if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(__file__), "..", "..")
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "crucible-dashboard.json")
SOURCE_DIRS = ("server", "worker", "executor", "common")
# The names HAProxy 2.6's exporter serves that the dashboard may use.
HAPROXY_METRICS = {
    "haproxy_frontend_http_responses_total",
    "haproxy_frontend_http_requests_total",
    "haproxy_frontend_requests_denied_total",
    "haproxy_backend_http_requests_total",
    "haproxy_backend_http_responses_total",
    "haproxy_backend_response_time_average_seconds",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def source_names():
    """Every "crucible_..." string literal in the C++ sources."""
    names = set()
    for d in SOURCE_DIRS:
        for dirpath, _, files in os.walk(os.path.join(ROOT, d)):
            for f in files:
                if f.endswith((".cc", ".h")):
                    with open(os.path.join(dirpath, f), encoding="utf-8") as src:
                        names.update(re.findall(r'"(crucible_[a-z0-9_]+)"', src.read()))
    return names


def metric_names(expr):
    """The metric names a PromQL expression selects: identifiers left once
    strings, label matchers, ranges and by/without groupings are removed,
    and not followed by "(" (functions and aggregations)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = []
    for m in IDENT.finditer(e):
        rest = e[m.end():].lstrip()
        if rest.startswith("("):
            continue
        if m.group(0) in ("and", "or", "unless", "offset", "bool", "inf", "nan"):
            continue
        names.append(m.group(0))
    return names


def problems(dashboard, known):
    """Every violation in a parsed dashboard, given the crucible_* names
    the source registers."""
    bad = []
    variables = {v.get("name") for v in dashboard.get("templating", {}).get("list", [])
                 if v.get("type") == "datasource"}
    if "DS_PROMETHEUS" not in variables:
        bad.append("no datasource variable DS_PROMETHEUS")
    panels = dashboard.get("panels") or []
    if not panels:
        bad.append("no panels")
    for p in panels:
        title = p.get("title") or f"panel {p.get('id')}"
        targets = [t for t in p.get("targets") or [] if (t.get("expr") or "").strip()]
        if not targets:
            bad.append(f"{title}: no query")
        for ds in [p.get("datasource")] + [t.get("datasource") for t in p.get("targets") or []]:
            if (ds or {}).get("uid") != "${DS_PROMETHEUS}":
                bad.append(f"{title}: data source {ds!r}, not ${{DS_PROMETHEUS}}")
        for t in targets:
            names = metric_names(t["expr"])
            if not names:
                bad.append(f"{title}: {t['expr']!r} selects no metric")
            for n in names:
                if n.startswith("haproxy_"):
                    if n not in HAPROXY_METRICS:
                        bad.append(f"{title}: {n} is not one of HAProxy's exporter's")
                    continue
                base = n
                for s in HISTOGRAM_SUFFIXES:
                    if base.endswith(s) and base[: -len(s)] in known:
                        base = base[: -len(s)]
                if base not in known:
                    bad.append(f"{title}: {n} is registered nowhere in "
                               f"{', '.join(SOURCE_DIRS)}")
    return bad


class DashboardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(DASHBOARD, encoding="utf-8") as f:
            cls.dashboard = json.load(f)
        cls.known = source_names()

    def test_the_source_registers_metrics(self):
        self.assertIn("crucible_server_tasks", self.known)
        self.assertIn("crucible_executor_engine_call_seconds", self.known)

    def test_every_panel_has_a_query_of_known_metrics(self):
        self.assertEqual(problems(self.dashboard, self.known), [])

    def test_schema_and_the_panels_the_operator_guide_names(self):
        self.assertGreaterEqual(self.dashboard["schemaVersion"], 36)
        exprs = " ".join(t["expr"] for p in self.dashboard["panels"] for t in p["targets"])
        for name in ("crucible_server_tasks", "crucible_server_queue_wait_seconds_bucket",
                     "crucible_server_tasks_ended_total", "crucible_executor_runs_total",
                     "crucible_executor_slots_busy", "crucible_executor_engine_call_seconds_bucket",
                     "crucible_executor_engine_call_errors_total",
                     "haproxy_frontend_http_responses_total",
                     "crucible_server_workers_connected",
                     "crucible_server_store_commit_seconds_bucket"):
            self.assertIn(name, exprs)

    def test_metric_names_of_an_expression(self):
        self.assertEqual(
            metric_names('histogram_quantile(0.9, sum by (le, call) '
                         '(rate(crucible_x_seconds_bucket{call="wait"}[$__rate_interval])))'),
            ["crucible_x_seconds_bucket"])
        self.assertEqual(metric_names("sum(a) / sum(b) or vector(0)"), ["a", "b"])

    def test_each_mutation_is_caught(self):
        import copy
        cases = {
            "a renamed metric": lambda d: d["panels"][0]["targets"][0].update(
                expr="sum by (state) (crucible_server_task_count)"),
            "a bucket of no histogram": lambda d: d["panels"][0]["targets"][0].update(
                expr="crucible_server_tasks_ended_bucket"),
            "an unknown HAProxy metric": lambda d: d["panels"][0]["targets"][0].update(
                expr="haproxy_frontend_refusals_total"),
            "an empty query": lambda d: d["panels"][0]["targets"][0].update(expr=" "),
            "a panel without targets": lambda d: d["panels"][0].pop("targets"),
            "a fixed data source": lambda d: d["panels"][0].update(
                datasource={"type": "prometheus", "uid": "abc"}),
            "no data source variable": lambda d: d["templating"].update(list=[]),
        }
        for what, mutate in cases.items():
            with self.subTest(what):
                d = copy.deepcopy(self.dashboard)
                mutate(d)
                self.assertNotEqual(problems(d, self.known), [], what)


if __name__ == "__main__":
    unittest.main(verbosity=2)
