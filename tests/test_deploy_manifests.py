"""The deployment files stay deployable: docker-compose.yml, the Kubernetes manifests, the image.

No Docker engine and no cluster are needed: docker-compose.yml is rendered offline by
`docker-compose config`, and every Kubernetes manifest is checked against the API
schemas of a fixed Kubernetes version by kubernetes-validate, in strict mode (an unknown
or misspelt field fails). `deploy/ensure-tools.sh` installs docker-compose (and kcat, for
the Kafka suites) once per session when CI=true or PBJ_START_SERVERS is not "0"; without
docker-compose the compose tests are skipped on a developer's machine and fail in CI.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from contracts.registry import ALL_TOPICS, DEAD_LETTER_TOPIC
from pbj.processes import SERVICES

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
K8S_DIR = ROOT / "deploy" / "k8s"
POLICIES_DIR = ROOT / "policies"
ENSURE_TOOLS = ROOT / "deploy" / "ensure-tools.sh"
INIT_SQL = ROOT / "deploy" / "postgres" / "init-databases.sql"

KUBERNETES_VERSION = "1.30"
NAMESPACE = "pb-journey"
PARTITIONS = 12
EVENT_TOPICS = {*ALL_TOPICS, DEAD_LETTER_TOPIC}
NOT_APPLIED = {"kustomization.yaml"}  # read by kustomize, not a Kubernetes object


# ---------------------------------------------------------------- docker-compose.yml


@pytest.fixture(scope="session")
def docker_compose() -> str:
    """The docker-compose binary, installed by deploy/ensure-tools.sh if need be."""
    in_ci = os.environ.get("CI") == "true"
    note = ""
    if in_ci or os.environ.get("PBJ_START_SERVERS") != "0":
        try:
            done = subprocess.run(
                ["bash", str(ENSURE_TOOLS)], capture_output=True, text=True, timeout=900
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            note = f" ({ENSURE_TOOLS.relative_to(ROOT)} did not finish: {err})"
        else:
            if done.returncode != 0:
                note = f" ({ENSURE_TOOLS.relative_to(ROOT)} failed: {done.stderr.strip()[-500:]})"
    binary = shutil.which("docker-compose")
    if binary is None:
        reason = (
            "docker-compose is not installed, so docker-compose.yml was not validated: "
            f"run `bash deploy/ensure-tools.sh` or `apt-get install docker-compose`{note}"
        )
        if in_ci:
            pytest.fail(f"CI must validate docker-compose.yml: {reason}", pytrace=False)
        pytest.skip(reason)
    return binary


def _compose(binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    # A fixed project name and no inherited COMPOSE_* settings: the same render everywhere.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    env["COMPOSE_PROJECT_NAME"] = "pb-journey"
    return subprocess.run(
        [binary, "-f", str(COMPOSE_FILE), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="session")
def compose_config(docker_compose: str) -> dict[str, Any]:
    done = _compose(docker_compose, "config")
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


def _port_bindings(service: dict[str, Any]) -> set[tuple[str, int, int]]:
    """(host ip, published, target) for v1's short strings and v2's long form alike."""
    bindings = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):
            bindings.add((port.get("host_ip", ""), int(port["published"]), int(port["target"])))
        else:
            ip, published, target = str(port).split("/")[0].rsplit(":", 2)
            bindings.add((ip, int(published), int(target)))
    return bindings


def _mounts(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """target -> (source, read-only) for v1's short strings and v2's long form alike."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            mounts[volume["target"]] = (volume.get("source", ""), bool(volume.get("read_only")))
        else:
            source, target, *mode = str(volume).split(":")
            mounts[target] = (source, bool(mode) and "ro" in mode[0].split(","))
    return mounts


def test_docker_compose_config_is_valid(docker_compose: str):
    done = _compose(docker_compose, "config", "-q")
    assert done.returncode == 0, f"docker-compose config -q failed:\n{done.stderr}"


def test_compose_has_kafka_postgres_and_the_five_services_with_healthchecks(
    compose_config: dict[str, Any],
):
    services = compose_config["services"]
    for name in ["kafka", "postgres", *SERVICES]:
        assert name in services, f"{name} is missing from docker-compose.yml"
        test = services[name].get("healthcheck", {}).get("test")
        assert test, f"{name} has no healthcheck"
    assert "kafka-broker-api-versions" in " ".join(services["kafka"]["healthcheck"]["test"])
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]


def test_compose_kafka_is_single_node_kraft_keeping_events_forever(
    compose_config: dict[str, Any],
):
    kafka = compose_config["services"]["kafka"]
    image, _, tag = kafka["image"].partition(":")
    assert image == "apache/kafka" and int(tag.split(".")[0]) >= 4
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert (
        "CONTROLLER" in env["KAFKA_LISTENERS"]
        and "CONTROLLER" in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    )
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert str(env["KAFKA_LOG_RETENTION_MS"]) == "-1"
    assert str(env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]) == "false"


def test_compose_services_each_use_their_own_database_and_kafka(compose_config: dict[str, Any]):
    services = compose_config["services"]
    databases = set()
    for name, port in SERVICES.items():
        service = services[name]
        prefix = name.upper()
        env = service["environment"]
        assert service["image"].startswith("pb-journey"), name
        assert env[f"{prefix}_DATABASE_URL"].startswith("postgresql+asyncpg://pbj:"), name
        assert env[f"{prefix}_DATABASE_URL"].endswith(f"@postgres:5432/pbj_{name}"), name
        databases.add(env[f"{prefix}_DATABASE_URL"].rsplit("/", 1)[1])
        assert env[f"{prefix}_EVENT_LOG_URL"] == "kafka://kafka:9092", name
        assert env[f"{prefix}_ENVIRONMENT"] == "production", name
        assert env[f"{prefix}_JWT_PUBLIC_KEY_FILE"], name
        assert env["SERVICE"] == name
        assert ("127.0.0.1", port, port) in _port_bindings(service), name
        policies = _mounts(service)[env[f"{prefix}_POLICIES_DIR"]]
        assert Path(policies[0]).name == "policies" and policies[1], f"{name}: policies not ro"
        assert f"{port}/readyz" in " ".join(service["healthcheck"]["test"]), name
        for dependency in ("postgres", "kafka"):
            assert service["depends_on"][dependency]["condition"] == "service_healthy", name
    assert len(databases) == len(SERVICES), "two services share a database"
    secret = Path(compose_config["secrets"]["jwt_public_key"]["file"])
    assert secret.parts[-3:] == ("deploy", "secrets", "jwt-public.pem")


def test_compose_creates_the_event_topics():
    """Static: the one-shot kafka-topics service creates every topic the code publishes to."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    script = " ".join(raw["services"]["kafka-topics"]["command"])
    loop = re.search(r"for topic in ([^;]+);", script)
    assert loop, "no topic loop in kafka-topics"
    assert set(loop.group(1).split()) == EVENT_TOPICS
    assert f"--partitions {PARTITIONS}" in script and "retention.ms=-1" in script


def test_postgres_init_script_creates_the_five_databases_and_pbj():
    sql = INIT_SQL.read_text()
    created = set(re.findall(r"CREATE DATABASE (\w+) OWNER pbj\b", sql))
    assert created == {f"pbj_{name}" for name in SERVICES}
    assert re.search(r"CREATE ROLE pbj\b", sql)
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    mounts = raw["services"]["postgres"]["volumes"]
    assert any(
        m.startswith("./deploy/postgres/init-databases.sql:/docker-entrypoint-initdb.d/")
        for m in mounts
    )


def test_dockerfile_builds_one_non_root_image_for_every_service():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.M)
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert user and user[-1].split(":")[0] not in {"root", "0"}
    exposed = {
        int(p) for line in re.findall(r"^EXPOSE (.+)$", dockerfile, re.M) for p in line.split()
    }
    assert set(SERVICES.values()) <= exposed
    for name in SERVICES:
        assert f"{name})" in dockerfile, f"SERVICE={name} is not handled by the image's command"


def test_the_image_holds_every_package_the_services_and_the_cli_import():
    """The services ask the rulebook, allocation's policy routes run the what-if: an image
    without `rules/` or `whatif/` starts no service."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile, re.M))
    assert {"contracts", "rules", "servicekit", "services", "whatif", "pbj"} <= copied


# ---------------------------------------------------------------- Kubernetes manifests


def _manifest_files() -> list[Path]:
    return sorted(p for p in K8S_DIR.glob("*.yaml") if p.name not in NOT_APPLIED)


@cache
def _documents() -> tuple[tuple[str, dict[str, Any]], ...]:
    docs = []
    for path in _manifest_files():
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return tuple(docs)


def _of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in _documents() if doc["kind"] == kind}


def _kustomization() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    return data


def _validate(doc: dict[str, Any]) -> None:
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as err:
        where = ".".join(str(part) for part in err.path)
        pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {where}: {err.message}")
    except kubernetes_validate.SchemaNotFoundError as err:
        pytest.fail(err.message)


def _policies_config_map() -> dict[str, Any]:
    """What kustomize's configMapGenerator makes of the policy files (without the hash)."""
    (generator,) = _kustomization()["configMapGenerator"]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": generator["name"], "namespace": NAMESPACE},
        "data": {Path(f).name: (K8S_DIR / f).resolve().read_text() for f in generator["files"]},
    }


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param(doc, id=f"{file}:{doc['kind']}/{doc['metadata']['name']}")
        for file, doc in _documents()
    ],
)
def test_manifest_is_valid_kubernetes(doc: dict[str, Any]):
    _validate(doc)


def test_strict_validation_rejects_an_unknown_field():
    """The check above has teeth: a misspelt field fails."""
    deployment = copy.deepcopy(next(iter(_of_kind("Deployment").values())))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest_and_every_policy():
    kustomization = _kustomization()
    assert kustomization["namespace"] == NAMESPACE
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in _manifest_files()} - {"secrets.example.yaml"}
    assert listed == on_disk, "kustomization.yaml resources differ from the files beside it"
    config_map = _policies_config_map()
    assert set(config_map["data"]) == {p.name for p in POLICIES_DIR.glob("*.yaml")}, (
        "configMapGenerator must list every file in policies/"
    )
    assert sum(len(v.encode()) for v in config_map["data"].values()) < 1_000_000
    _validate(config_map)


def test_every_object_is_in_the_namespace():
    for file, doc in _documents():
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == NAMESPACE, f"{file}: {doc['kind']}"


def test_kustomize_build_renders_valid_manifests():
    """With kustomize (or kubectl) on PATH, the real render validates too."""
    if kustomize := shutil.which("kustomize"):
        command = [kustomize, "build"]
    elif kubectl := shutil.which("kubectl"):
        command = [kubectl, "kustomize"]
    else:
        pytest.skip("neither kustomize nor kubectl is installed; the files were checked alone")
    done = subprocess.run(
        [*command, "--load-restrictor", "LoadRestrictionsNone", str(K8S_DIR)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rendered = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    for doc in rendered:
        _validate(doc)
    policies = [d for d in rendered if d["metadata"]["name"].startswith("pb-journey-policies")]
    assert len(policies) == 1 and set(policies[0]["data"]) == set(_policies_config_map()["data"])


def test_every_service_has_a_deployment_and_a_service():
    deployments, services = _of_kind("Deployment"), _of_kind("Service")
    assert set(deployments) == set(SERVICES)
    for name, port in SERVICES.items():
        (service_port,) = services[name]["spec"]["ports"]
        assert service_port["port"] == port
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        assert container["image"].split(":")[0] == "pb-journey"
        assert f"services.{name}.api:create_app" in container["command"]
        assert str(port) in container["command"]
        assert {"name": "http", "containerPort": port, "protocol": "TCP"} in container["ports"]


@pytest.mark.parametrize("name", list(SERVICES))
def test_deployment_has_probes_resources_and_runs_as_non_root(name: str):
    deployment = _of_kind("Deployment")[name]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    for container in pod["containers"]:
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        requests = container["resources"]["requests"]
        assert requests.get("cpu") and requests.get("memory"), "resource requests"
        assert container["resources"]["limits"].get("memory"), "a memory limit"
        assert container["securityContext"]["allowPrivilegeEscalation"] is False


@pytest.mark.parametrize("name", list(SERVICES))
def test_deployment_gets_its_settings_policies_and_key(name: str):
    prefix = name.upper()
    pod = _of_kind("Deployment")[name]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env_from = container["envFrom"]
    assert {"secretRef": {"name": f"{name}-database"}} in env_from  # {prefix}_DATABASE_URL
    assert {"configMapRef": {"name": f"{name}-config"}} in env_from
    config = _of_kind("ConfigMap")[f"{name}-config"]["data"]
    assert config[f"{prefix}_ENVIRONMENT"] == "production"
    assert all(key.startswith(f"{prefix}_") for key in config)
    env = {e["name"]: e for e in container["env"]}
    assert env[f"{prefix}_EVENT_LOG_URL"]["value"].startswith("kafka://")
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["policies"] == config[f"{prefix}_POLICIES_DIR"]
    assert (
        volumes["policies"]["configMap"]["name"]
        == _kustomization()["configMapGenerator"][0]["name"]
    )
    key_file = Path(config[f"{prefix}_JWT_PUBLIC_KEY_FILE"])
    assert mounts["jwt-public-key"] == str(key_file.parent)
    assert volumes["jwt-public-key"]["secret"]["items"][0]["path"] == key_file.name


def test_topics_job_creates_every_event_topic_with_12_partitions_forever():
    (job,) = _of_kind("Job").values()
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("apache/kafka:")
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert set(env["TOPICS"].split()) == EVENT_TOPICS
    platform = _of_kind("ConfigMap")["pb-journey-platform"]["data"]
    assert platform["TOPIC_PARTITIONS"] == str(PARTITIONS)
    script = " ".join(container["args"])
    assert "kafka-topics.sh" in script and "retention.ms=-1" in script
