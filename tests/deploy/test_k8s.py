"""deploy/k8s: valid against the Kubernetes schemas (strict, offline), two replicas of each
service with probes, resources and a disruption budget, non-root pods, Rasa reachable only
from the gateway, the Ingress routing only LINE's and Slack's paths, secrets only from
the Secret (whose template holds no value)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml

from tests.deploy.conftest import (
    K8S_DIR,
    ROOT,
    SERVICE_TARGETS,
    Manifest,
    endpoints_variables,
    find,
    k8s_manifest_files,
    run_tool,
)

# The oldest Kubernetes still commonly run, and the newest the schemas bundle.
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")
PORTS = {"gateway": 8080, "rasa": 5005, "actions": 5055}


def container(manifests: List[Manifest], name: str) -> Dict[str, Any]:
    pod = find(manifests, "Deployment", name)["spec"]["template"]["spec"]
    assert len(pod["containers"]) == 1
    return pod["containers"][0]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_valid_against_the_kubernetes_schemas(tools: Path, version: str) -> None:
    files = [str(p) for p in k8s_manifest_files()]
    out = run_tool([str(tools / "kubernetes-validate"), "--strict", "--quiet", "-k", version, *files])
    assert out.returncode == 0, out.stdout + out.stderr


def test_kustomization_lists_every_manifest_but_the_secret_template(manifests: List[Manifest]) -> None:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    files = {p.name for p in k8s_manifest_files()}
    assert listed == files - {"secret.example.yaml"}
    assert kustomization["namespace"] == "order-support"
    assert {m.doc["metadata"].get("namespace") for m in manifests if m.kind != "Namespace"} == {"order-support"}
    images = {i["name"] for i in kustomization["images"]}
    used = {container(manifests, n)["image"].split(":")[0] for n in SERVICE_TARGETS}
    assert images == used == {f"order-support-{n}" for n in SERVICE_TARGETS}


@pytest.mark.parametrize("name", SERVICE_TARGETS)
def test_two_replicas_with_probes_resources_and_a_budget(manifests: List[Manifest], name: str) -> None:
    deployment = find(manifests, "Deployment", name)
    assert deployment["spec"]["replicas"] == 2
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    # A rollout never takes a ready pod away before its replacement is ready.
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    box = container(manifests, name)
    assert box["ports"] == [{"name": "http", "containerPort": PORTS[name]}]
    for probe in ("readinessProbe", "livenessProbe"):
        assert probe in box, f"{name} has no {probe}"
        handler = box[probe].get("httpGet") or box[probe].get("tcpSocket")
        assert handler["port"] == "http"
    requests = box["resources"]["requests"]
    assert requests.get("cpu") and requests.get("memory")
    assert box["resources"]["limits"].get("memory")
    budget = find(manifests, "PodDisruptionBudget", name)
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"] == labels
    service = find(manifests, "Service", name)
    assert service["spec"]["selector"] == labels
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"][0]["port"] == PORTS[name]


def test_probes_use_the_health_endpoints(manifests: List[Manifest]) -> None:
    rasa = container(manifests, "rasa")
    assert rasa["readinessProbe"]["httpGet"]["path"] == "/"
    # Model loading is slow: a startup probe holds the liveness probe back meanwhile.
    startup = rasa["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 180
    assert container(manifests, "actions")["readinessProbe"]["httpGet"]["path"] == "/health"
    gateway = container(manifests, "gateway")
    # Not /healthz: it is 503 while Rasa is down, when the gateway must keep acking webhooks.
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/livez"


@pytest.mark.parametrize("name", SERVICE_TARGETS + ("redis",))
def test_pods_run_as_non_root_without_privileges(manifests: List[Manifest], name: str) -> None:
    kind = "StatefulSet" if name == "redis" else "Deployment"
    pod = find(manifests, kind, name)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    if name != "redis":
        assert pod["securityContext"]["runAsUser"] == 10001  # the images' user
    assert pod["automountServiceAccountToken"] is False
    box = pod["containers"][0]
    assert box["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def test_the_ingress_routes_only_line_and_slack_to_the_gateway(manifests: List[Manifest]) -> None:
    ingresses = [m.doc for m in manifests if m.kind == "Ingress"]
    assert len(ingresses) == 1
    routes = [
        (p["path"], p["pathType"], p["backend"]["service"]["name"])
        for rule in ingresses[0]["spec"]["rules"]
        for p in rule["http"]["paths"]
    ]
    assert sorted(routes) == [("/line/webhook", "Exact", "gateway"), ("/slack/events", "Exact", "gateway")]
    assert "defaultBackend" not in ingresses[0]["spec"]
    assert ingresses[0]["spec"]["tls"], "LINE and Slack need HTTPS"


def test_rasa_is_never_exposed(manifests: List[Manifest]) -> None:
    for m in manifests:
        if m.kind == "Service":
            assert m.doc["spec"].get("type", "ClusterIP") == "ClusterIP", m.name
            assert "externalIPs" not in m.doc["spec"]
    policy = find(manifests, "NetworkPolicy", "rasa-from-gateway")["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "rasa"
    sources = [
        s["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for rule in policy["ingress"]
        for s in rule["from"]
    ]
    assert sources == ["gateway"]
    deny = find(manifests, "NetworkPolicy", "default-deny-ingress")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}
    # The Rasa pod's host ports: none.
    assert all("hostPort" not in p for p in container(manifests, "rasa")["ports"])


def _env(box: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    return {e["name"]: e for e in box.get("env", [])}


def test_secrets_only_from_the_secret_and_the_template_holds_none(manifests: List[Manifest]) -> None:
    template = find(manifests, "Secret", "order-support")
    assert all(value == "" for value in template["stringData"].values()), "secret.example.yaml must hold key names only"
    keys = set(template["stringData"])
    config = find(manifests, "ConfigMap", "order-support-config")["data"]
    secretish = re.compile(r"TOKEN|SECRET|PASSWORD|DSN|DATABASE_URL", re.I)
    boxes = [container(manifests, n) for n in SERVICE_TARGETS]
    boxes.append(find(manifests, "StatefulSet", "redis")["spec"]["template"]["spec"]["containers"][0])
    for box in boxes:
        for name, entry in _env(box).items():
            ref = entry.get("valueFrom", {})
            if "secretKeyRef" in ref:
                assert ref["secretKeyRef"]["name"] == "order-support"
                assert ref["secretKeyRef"]["key"] in keys, f"{name}: no such key in the template"
            elif "configMapKeyRef" in ref:
                assert ref["configMapKeyRef"]["key"] in config, f"{name}: no such ConfigMap key"
            elif secretish.search(name):
                assert name == "REDIS_URL" and "$(REDIS_PASSWORD)" in entry["value"], (
                    f"{box['name']}: {name} is a literal"
                )
    assert not any(secretish.search(k) for k in config), "a secret in the ConfigMap"


def test_rasa_gets_every_variable_its_endpoints_file_reads(manifests: List[Manifest]) -> None:
    env = _env(container(manifests, "rasa"))
    assert endpoints_variables() <= set(env)
    assert env["RASA_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "RASA_TOKEN"
    # Rasa sends the action server's shared secret, from the same Secret key it checks.
    assert env["ACTION_SERVER_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "ACTION_SERVER_TOKEN"
    actions = _env(container(manifests, "actions"))
    assert actions["ACTION_SERVER_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "order-support",
        "key": "ACTION_SERVER_TOKEN",
    }
    config = find(manifests, "ConfigMap", "order-support-config")["data"]
    assert config["ACTION_SERVER_URL"] == f"http://actions:{PORTS['actions']}/webhook"
    assert config["RASA_URL"] == f"http://rasa:{PORTS['rasa']}"
    assert config["REDIS_HOST"] == "redis"


def test_gateway_settings_from_its_kubernetes_environment(manifests: List[Manifest]) -> None:
    """Resolve the gateway's env as the kubelet would (Secret, ConfigMap, $(VAR)) with
    sample secrets, and start the gateway's settings from it."""
    from gateway.config import Settings

    config = find(manifests, "ConfigMap", "order-support-config")["data"]
    secret = {
        k: f"sample{k.lower().replace('_', '')}" for k in find(manifests, "Secret", "order-support")["stringData"]
    }
    secret["SLACK_BOT_TOKEN"] = ""
    secret["POSTBACK_SIGNING_KEY"] = "k" * 32  # the gateway refuses a short one
    env: Dict[str, str] = {}
    for name, entry in _env(container(manifests, "gateway")).items():
        ref = entry.get("valueFrom", {})
        if "secretKeyRef" in ref:
            env[name] = secret[ref["secretKeyRef"]["key"]]
        elif "configMapKeyRef" in ref:
            env[name] = config[ref["configMapKeyRef"]["key"]]
        else:
            env[name] = re.sub(r"\$\(([A-Z_]+)\)", lambda m: env[m.group(1)], entry["value"])
    settings = Settings.from_env(env)
    assert settings.rasa_url == "http://rasa:5005"
    assert settings.action_server_health_url == "http://actions:5055/health"
    assert settings.redis_url == f"redis://:{secret['REDIS_PASSWORD']}@redis:6379/0"
    assert settings.rasa_token == secret["RASA_TOKEN"]
    assert settings.agent_approval_key == secret["AGENT_APPROVAL_KEY"]
    assert str(settings.attachments_dir) == "/app/var/attachments"
    mounts = {m["mountPath"] for m in container(manifests, "gateway")["volumeMounts"]}
    assert "/app/var/attachments" in mounts


def test_photos_are_shared_by_every_gateway_replica(manifests: List[Manifest]) -> None:
    claim = find(manifests, "PersistentVolumeClaim", "gateway-attachments")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    volumes = find(manifests, "Deployment", "gateway")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "attachments", "persistentVolumeClaim": {"claimName": "gateway-attachments"}} in volumes


def test_redis_keeps_its_data(manifests: List[Manifest]) -> None:
    redis = find(manifests, "StatefulSet", "redis")
    args = redis["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:3] == ["redis-server", "--appendonly", "yes"]
    assert "--requirepass" in args
    assert redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert find(manifests, "Service", "redis")["spec"]["selector"] == redis["spec"]["template"]["metadata"]["labels"]


def test_docs_cover_the_deployment() -> None:
    docs = (ROOT / "docs" / "deploy.md").read_text()
    for needed in (
        "CVE-2024-49375",
        "docker compose up",
        "kubectl apply -k deploy/k8s",
        "--target rasa",
        "--target gateway",
        "--target actions",
        "lock store",
        "scripts/check_deploy.sh",
    ):
        assert needed in docs, f"docs/deploy.md does not mention {needed}"
