"""The monitoring files, for real: Debian's Prometheus scrapes a running h5serve with the
project's scrape config and answers queries; promtool checks and unit-tests the alert
rules; every panel of the Grafana dashboard is a query Prometheus accepts."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
import requests
import yaml
from servers import ROOT, free_port, gunicorn, stop

from app.config import DEFAULT_MODEL_PATH

pytestmark = [pytest.mark.slow]

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "h5serve.json"
EXAMPLE = ROOT / "static" / "examples" / "bag.png"


@pytest.mark.parametrize("args", [["check", "config", "prometheus.yml"],
                                  ["check", "rules", "alerts.yml"],
                                  ["test", "rules", "alerts_test.yml"]])
def test_promtool_accepts_the_config_and_the_alerts_fire_as_tested(args: list[str]) -> None:
    result = subprocess.run(["promtool", *args], cwd=PROMETHEUS_DIR, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """h5serve (2 workers) with some traffic, and Prometheus scraping it every second."""
    folder = tmp_path_factory.mktemp("prometheus")
    config_dir = folder / "config"
    shutil.copytree(PROMETHEUS_DIR, config_dir)
    with gunicorn(DEFAULT_MODEL_PATH, folder / "app.log", workers=2) as (app, _):
        (config_dir / "targets" / "h5serve.json").write_text(json.dumps(
            [{"targets": [app.removeprefix("http://")], "labels": {"service": "h5serve"}}]))
        config = yaml.safe_load((config_dir / "prometheus.yml").read_text())
        config["global"]["scrape_interval"] = "1s"  # the project's file, faster
        (config_dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        url = f"http://127.0.0.1:{free_port()}"
        process = subprocess.Popen(
            ["prometheus", f"--config.file={config_dir / 'prometheus.yml'}",
             f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address={url.removeprefix('http://')}"],
            stdout=subprocess.DEVNULL, stderr=(folder / "prometheus.log").open("wb"))
        try:
            _until(lambda: requests.get(url + "/-/ready", timeout=2).ok, "ready")
            _until(lambda: _value(url, 'up{job="h5serve"}') == 1, "first scrape")
            for _ in range(40):
                requests.post(app + "/predictlabel", files={"image": EXAMPLE.read_bytes()},
                              timeout=30)
            requests.post(app + "/predictlabel", files={"image": b"no"}, timeout=30)
            requests.post(app + "/models/nope/predictlabel", files={"image": b"no"}, timeout=30)
            _until(lambda: _value(url, 'sum(h5serve_requests_total{endpoint="/predictlabel"})')
                   >= 41, "the traffic scraped")
            time.sleep(3)  # a few more scrapes, so that rates have two points
            yield url, app
        finally:
            stop(process)


def _until(check, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (requests.RequestException, IndexError, KeyError):
            pass
        assert time.monotonic() < deadline, f"Prometheus: {what} not within {timeout} s"
        time.sleep(0.5)


def _query(url: str, expr: str) -> list[dict[str, object]]:
    answer = requests.get(url + "/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", (expr, answer)
    return answer["data"]["result"]


def _value(url: str, expr: str) -> float:
    return float(_query(url, expr)[0]["value"][1])


def test_prometheus_scrapes_h5serve_and_answers_the_queries_that_matter(prometheus) -> None:
    url, _ = prometheus
    assert _value(url, 'up{job="h5serve"}') == 1
    assert _value(url, "sum(rate(h5serve_requests_total[10s]))") >= 0
    p99 = _value(url, "histogram_quantile(0.99, sum by (le) "
                      "(rate(h5serve_request_duration_seconds_bucket[1m])))")
    assert 0 < p99 < 5
    assert _value(url, 'sum(h5serve_requests_total{status="400"})') == 1
    by_model = {(r["metric"].get("model", ""), r["metric"].get("version", "")): float(
        r["value"][1]) for r in _query(url, 'sum by (model, version) (h5serve_requests_total'
                                            '{endpoint=~"/predictlabel|/models/.*"})')}
    assert by_model == {("fashion_mnist", "1"): 41, ("", ""): 1}, "the 404 used no model"
    assert 0 < _value(url, 'histogram_quantile(0.99, sum by (model, le) ('
                           'h5serve_request_duration_seconds_bucket{model="fashion_mnist"}))') < 5
    assert _value(url, "histogram_quantile(0.99, sum by (le) "
                       "(rate(h5serve_queue_wait_seconds_bucket[1m])))") >= 0
    assert _value(url, 'sum(h5serve_predicted_label_total{label="Bag"})') == 40
    assert _value(url, "histogram_quantile(0.5, sum by (le) "
                       "(rate(h5serve_prediction_confidence_bucket[1m])))") > 0.5
    assert _value(url, "sum(h5serve_worker_starts_total)") == 2
    rules = requests.get(url + "/api/v1/rules", timeout=10).json()["data"]["groups"]
    assert {r["name"] for g in rules for r in g["rules"]} == {
        "H5serveDown", "H5serveErrorRatio", "H5serveSlow", "H5serveQueueSaturated",
        "H5serveLowConfidence", "H5serveWorkerRestarts", "H5serveRolloutStuck",
        "H5serveDrift"}


def test_every_dashboard_panel_is_a_query_prometheus_answers(prometheus) -> None:
    url, _ = prometheus
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "h5serve" and dashboard["schemaVersion"] >= 30
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 12
    with_data = 0
    for expr in exprs:  # Grafana's own variables, as Grafana would fill them in
        query = expr.replace("$__rate_interval", "30s").replace('"$model"', '".*"')
        assert "$" not in query, query
        with_data += bool(_query(url, query))
    assert with_data >= len(exprs) // 2, "most panels show the scraped data"
