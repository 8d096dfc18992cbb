"""Every benchmark in bench/ runs at its --smoke size and writes its JSON with the right keys.

Not a performance test: nothing here looks at a timing. Each script runs as a subprocess
(as `make bench` runs it) with PBJ_BENCH_RESULTS pointing at a temporary directory, so
the committed results in bench/results/ are never overwritten by a smoke run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMON_KEYS = {"benchmark", "when", "machine", "smoke"}


def run_bench(
    tmp_path: Path, script: str, *args: str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / f"bench_{script}.py"), "--smoke", *args],
        cwd=ROOT,
        env={**os.environ, "PBJ_BENCH_RESULTS": str(results), **(env or {})},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, (
        f"bench_{script}.py failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    document: dict[str, Any] = json.loads((results / f"{script}.json").read_text())
    assert set(document) >= COMMON_KEYS, sorted(document)
    assert document["benchmark"] == script
    assert document["smoke"] is True
    return document


def test_replay_on_the_embedded_log(tmp_path: Path) -> None:
    doc = run_bench(tmp_path, "replay", "--engines", "embedded")
    result = doc["engines"]["embedded"]
    assert {"floor", "replay", "ratio_to_floor", "meets"} <= set(result)
    assert result["replay"]["events"] == doc["events"]
    assert {"events_per_second", "peak_rss_mib", "seconds"} <= set(result["replay"])
    assert result["floor"]["events"] == doc["events"]


def test_history_on_sqlite(tmp_path: Path) -> None:
    doc = run_bench(tmp_path, "history", "--stores", "sqlite")
    store = doc["stores"]["sqlite"]
    assert set(store["ratio_large_to_small_p50"]) == {"history", "as_of_all", "as_of_half"}
    for size in doc["sizes"]:
        endpoints = store["sizes"][str(size)]["endpoints"]
        assert endpoints["history"]["events_in_answer"] == doc["person_events"]
        assert {"p50_ms", "p99_ms"} <= set(endpoints["as_of_all"])


def test_hop_on_the_embedded_log(tmp_path: Path) -> None:
    doc = run_bench(tmp_path, "hop", "--engines", "embedded")
    (run,) = doc["runs"].values()
    result = run["embedded"]
    assert result["budgets"] == result["sent"]
    assert {"p50_ms", "p99_ms", "log_only_floor", "ratio_p50_to_floor", "meets"} <= set(result)


def test_api_against_a_bare_endpoint(tmp_path: Path) -> None:
    doc = run_bench(tmp_path, "api")
    assert set(doc["bare"]) == {f"{kind}@{n}" for kind in ("read", "write") for n in doc["clients"]}
    for key, result in doc["services"]["embedded"].items():
        assert {"requests_per_second", "p50_ms", "p99_ms", "errors"} <= set(result)
        assert result["ok"] > 0, key
    assert set(doc["ratio_to_bare"]["embedded"]) == set(doc["bare"])
    open_loop = doc["open_loop"]
    assert set(open_loop["bare"]) == set(doc["bare"])
    for key, result in open_loop["services"]["embedded"].items():
        assert {"offered_per_second", "requests_per_second", "p99_ms"} <= set(result), key
        assert result["load_cpu_ms_per_request"] >= 0


def test_peer_eventsourcing(tmp_path: Path) -> None:
    doc = run_bench(tmp_path, "peer")
    assert set(doc["results"]) == {"pbj embedded log", "eventsourcing SQLite"}
    for result in doc["results"].values():
        assert result["read"] == doc["events"]
    assert set(doc["ratio_ours_to_peer"]) == {"append", "replay"}


def test_idle_rss_and_cpu_of_the_five_services_and_the_portal(tmp_path: Path) -> None:
    doc = run_bench(tmp_path, "idle", "--engines", "embedded")
    processes = doc["engines"]["embedded"]
    assert set(processes) == {"assessment", "allocation", "planning", "payments", "audit", "portal"}
    assert all(m["rss_mib"] > 0 and m["cpu_percent"] >= 0 for m in processes.values())
    assert doc["bare_fastapi"]["rss_mib"] > 0
    assert set(doc["meets_cpu"]) == {"embedded"}


@pytest.mark.kafka
@pytest.mark.postgres
def test_conversion_and_replay_on_kafka_and_postgres(
    tmp_path: Path, kafka_bootstrap: str, postgres_admin_url: str
) -> None:
    env = {"PBJ_KAFKA_BOOTSTRAP": kafka_bootstrap, "PBJ_POSTGRES_ADMIN_URL": postgres_admin_url}
    doc = run_bench(tmp_path, "conversion", "--engines", "kafka", env=env)
    result = doc["engines"]["kafka"]
    assert result["bulk"]["converted"] == doc["people"], result["bulk"]["failures"]
    assert result["journey"]["failed"] == 0, result["journey"]["failures"]
    assert {
        "people_per_second",
        "cpu_ms_per_person",
        "36252_seconds_at_this_rate",
        "server_cpu_ms_per_person",
        "cpu_ms_per_person_with_servers",
    } <= set(result["bulk"])
    assert {"ratio_bulk_to_journey", "meets"} <= set(result)
    doc = run_bench(tmp_path, "replay", "--engines", "kafka", env=env)
    assert doc["engines"]["kafka"]["replay"]["events"] == doc["events"]


def test_decode_of_the_models_against_msgspec(tmp_path: Path) -> None:
    doc = run_bench(tmp_path, "decode")
    assert doc["same_envelopes"] is True and doc["same_bytes_written"] is True
    assert {"models (pydantic)", "msgspec", "write: to_message"} <= set(doc["paths"])
    for path in doc["paths"].values():
        assert {"median_us_per_event", "events_per_second"} <= set(path)
