"""Turn benchmark results into the Markdown table, ratios and target checks."""

from __future__ import annotations

import json
from pathlib import Path

from bench.load import LoadResult


def _find(runs: list[LoadResult], scenario: str, concurrency: int) -> LoadResult | None:
    return next((r for r in runs if r.scenario == scenario and r.concurrency == concurrency), None)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def ratios(report: dict[str, object], runs: list[LoadResult]) -> dict[str, float | None]:
    """The figures the performance issue's targets are stated in."""
    service = _find(runs, "service", 32)
    naive = _find(runs, "naive", 32)
    ceiling = _find(runs, "ceiling", 32)
    mobilenet = _find(runs, "mobilenet", 32)
    alone, explained = _find(runs, "service", 1), _find(runs, "explain", 1)
    return {
        "explain/predictlabel p50 at c=1 (budget 5)": _ratio(explained and explained.p50_ms,
                                                             alone and alone.p50_ms),
        "explain/predictlabel worker CPU per request at c=1": _ratio(
            explained and explained.cpu_per_request_ms, alone and alone.cpu_per_request_ms),
        "service/naive req/s at c=32": _ratio(service and service.rps, naive and naive.rps),
        "service/ceiling req/s at c=32": _ratio(service and service.rps, ceiling and ceiling.rps),
        "service/in-process limit at c=32": _ratio(service and service.rps,
                                                   report["limit_bundled"]),  # type: ignore[arg-type]
        "mobilenet/in-process limit at c=32": _ratio(mobilenet and mobilenet.rps,
                                                     report["limit_mobilenet"]),  # type: ignore[arg-type]
    }


def table(runs: list[LoadResult]) -> str:
    lines = ["| scenario | c | req/s | p50 ms | p90 ms | p99 ms | max ms | failures | statuses "
             "| worker CPU % | CPU ms/req |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|"]
    for r in runs:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(r.statuses.items()))
        lines.append(f"| {r.scenario} | {r.concurrency} | {r.rps:.0f} | {r.p50_ms:.1f} | "
                     f"{r.p90_ms:.1f} | {r.p99_ms:.1f} | {r.max_ms:.0f} | {r.failures} | "
                     f"{statuses} | {' / '.join(f'{c:.0f}' for c in r.worker_cpu)} | "
                     f"{r.cpu_per_request_ms if r.cpu_per_request_ms is not None else '-'} |")
    return "\n".join(lines)


def _per_worker(values: object) -> str:
    return " / ".join(map(str, values))  # type: ignore[call-overload]


def write_report(report: dict[str, object], runs: list[LoadResult], out_dir: Path) -> str:
    """Write latest.md and latest.json under out_dir; return the Markdown."""
    report["ratios"] = ratios(report, runs)
    decode = report["decode_12mp"]
    markdown = "\n".join([
        f"Machine: {report['cpus']} CPUs; {report['workers']} gunicorn workers; "
        f"{report['seconds']:g} s per level; nginx TLS -> gunicorn gevent on loopback "
        "(naive: gunicorn sync, plain HTTP).",
        "",
        table(runs),
        "",
        "| figure | value |",
        "|---|---:|",
        *(f"| {name} | {value} |" for name, value in report["ratios"].items()),  # type: ignore[union-attr]
        f"| in-process limit, bundled model (img/s) | {report['limit_bundled']} |",
        f"| in-process limit, MobileNetV2 (img/s) | {report['limit_mobilenet']} |",
        f"| 12 MP JPEG decode to 28x28: draft / full size (ms) | {decode['draft_ms']} / "  # type: ignore[index]
        f"{decode['full_size_ms']} |",  # type: ignore[index]
        f"| worker RSS after the run (MB) | {_per_worker(report['worker_rss_mb'])} |",
        f"| MobileNetV2 worker RSS after its run (MB) | {_per_worker(report['mobilenet_rss_mb'])}"
        " |",
        f"| stack start to ready (s) | {report['ready_s']} |",
    ])
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latest.md").write_text(markdown + "\n")
    (out_dir / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    return markdown
