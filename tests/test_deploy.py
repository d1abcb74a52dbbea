"""The deployments route what the services serve. What each service owns is read from its own app (the paths it
alone serves); docker-compose's ingress (deploy/nginx.conf) and the Kubernetes Ingress (deploy/k8s) must send each
of them to that service — followed to the process that runs `callout serve --service <it>` — and keep every
service's health and metrics inside. Both routers are read from their files and matched as nginx and Kubernetes
match, so these tests need neither nginx nor kubectl (`make lint` renders and validates the Kubernetes objects)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import crossplane
import pytest
import yaml
from fastapi import FastAPI
from pydantic import ValidationError
from starlette.routing import BaseRoute, Match

from callout.compose import Part, build
from services.alerts.settings import AlertsSettings

ROOT = Path(__file__).resolve().parent.parent
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
K8S_BASE = ROOT / "deploy" / "k8s" / "base"
K8S_PRODUCTION = ROOT / "deploy" / "k8s" / "overlays" / "production"
# What the health routers are tagged with (shared/app.py): /healthz, /readyz, /metrics.
OPERATIONAL_TAG = "health"


@dataclass(frozen=True)
class ServedPath:
    template: str  # as the app declares it: /v1/cad/{agency}/events
    operational: bool

    @property
    def example(self) -> str:
        """A request path the template matches."""
        return re.sub(r"\{[^}]*\}", "x", self.template)


@dataclass(frozen=True)
class Ownership:
    owned: dict[Part, set[ServedPath]]  # what only that part serves
    shared: set[ServedPath]  # what every part serves


def leaf_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)  # newer FastAPI keeps an included router whole
        if included is not None:
            yield from leaf_routes(included.routes)
        else:
            yield route


def served_paths(app: FastAPI) -> set[ServedPath]:
    paths = set()
    for route in leaf_routes(app.router.routes):
        template = getattr(route, "path", None)
        if isinstance(template, str):
            paths.add(ServedPath(template, OPERATIONAL_TAG in getattr(route, "tags", ())))
    for path in paths:  # read as the app itself routes, so that no prefix was lost on the way
        scope = {"type": "http", "path": path.example, "method": "GET", "root_path": ""}
        assert any(route.matches(scope)[0] is not Match.NONE for route in app.router.routes), path
    return paths


@pytest.fixture(scope="module")
def ownership() -> Ownership:
    parts = [part for part in Part if part is not Part.all]
    served = {part: served_paths(build(part, AlertsSettings(), "postgresql://unused/unused")) for part in parts}
    shared = set.intersection(*served.values())
    return Ownership({part: paths - shared for part, paths in served.items()}, shared)


class Router(Protocol):
    @property
    def name(self) -> str: ...

    def part_for(self, path: str) -> Part | None:
        """The part a request for this path reaches, or None: answered by the ingress itself, or by nobody."""


@dataclass(frozen=True)
class NginxLocation:
    exact: bool
    path: str
    upstream: str | None  # the compose service it proxies to; None: nginx answers itself


@dataclass(frozen=True)
class ComposeIngress:
    locations: Sequence[NginxLocation]
    parts: dict[str, Part]  # compose service → the part its command serves
    name: str = "docker-compose (deploy/nginx.conf)"

    def part_for(self, path: str) -> Part | None:
        """nginx's choice among exact and prefix locations: an exact match, else the longest prefix."""
        exact = [location for location in self.locations if location.exact and location.path == path]
        prefixes = [location for location in self.locations if not location.exact and path.startswith(location.path)]
        chosen = exact[0] if exact else max(prefixes, key=lambda location: len(location.path), default=None)
        if chosen is None or chosen.upstream is None:
            return None
        return self.parts[chosen.upstream]


@dataclass(frozen=True)
class IngressPath:
    path: str
    exact: bool
    service: str


@dataclass(frozen=True)
class KubernetesIngress:
    paths: Sequence[IngressPath]
    parts: dict[str, Part]  # Service → the part its pods' command serves
    name: str = "Kubernetes (deploy/k8s)"

    def part_for(self, path: str) -> Part | None:
        """The Ingress's rule: the longest match wins, an Exact path over a Prefix of the same length; a Prefix
        matches whole path elements (/l matches /l and /l/x, never /lx)."""

        def matches(candidate: IngressPath) -> bool:
            if candidate.exact:
                return path == candidate.path
            elements = [e for e in candidate.path.split("/") if e]
            return [e for e in path.split("/") if e][: len(elements)] == elements

        candidates = [candidate for candidate in self.paths if matches(candidate)]
        if not candidates:
            return None
        best = max(candidates, key=lambda candidate: (len(candidate.path.rstrip("/")), candidate.exact))
        return self.parts[best.service]


def served_by(command: Sequence[str]) -> Part:
    """The part `callout serve --service <part>` runs."""
    assert list(command[:2]) == ["callout", "serve"], command
    return Part(command[list(command).index("--service") + 1])


def nginx_config() -> list[dict[str, Any]]:
    payload = crossplane.parse(str(NGINX_CONF), single=True, comments=False)
    assert payload["status"] == "ok", payload["errors"]
    return list(payload["config"][0]["parsed"])


def directives(block: Iterable[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [directive for directive in block if directive["directive"] == name]


def nginx_server() -> list[dict[str, Any]]:
    (http,) = directives(nginx_config(), "http")
    (server,) = directives(http["block"], "server")
    return list(server["block"])


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


def compose_ingress() -> ComposeIngress:
    locations = []
    for location in directives(nginx_server(), "location"):
        *modifier, path = location["args"]
        # Regular-expression locations would need nginx's whole order of evaluation; the config has none.
        assert modifier in ([], ["="], ["^~"]), f"location {' '.join(location['args'])} is not modelled here"
        proxied = directives(location["block"], "proxy_pass")
        upstream = urlsplit(proxied[0]["args"][0]).hostname if proxied else None
        locations.append(NginxLocation(modifier == ["="], path, upstream))
    parts = {
        name: served_by(service["command"])
        for name, service in compose()["services"].items()
        if "serve" in service.get("command", [])
    }
    return ComposeIngress(locations, parts)


def kubernetes_documents(directory: Path) -> list[dict[str, Any]]:
    """The objects of a kustomization's own resource files, before any patch (what the overlay patches in the
    Ingress is checked apart, below)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    return [
        document
        for resource in kustomization["resources"]
        if (directory / resource).is_file()
        for document in yaml.safe_load_all((directory / resource).read_text())
        if document
    ]


def of_kind(documents: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [document for document in documents if document["kind"] == kind]


def kubernetes_ingress() -> KubernetesIngress:
    documents = kubernetes_documents(K8S_BASE)
    (ingress,) = of_kind(documents, "Ingress")
    paths = []
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            assert path["pathType"] in ("Exact", "Prefix"), "ImplementationSpecific means whatever the controller likes"
            paths.append(IngressPath(path["path"], path["pathType"] == "Exact", path["backend"]["service"]["name"]))
    deployments = of_kind(documents, "Deployment")
    parts = {}
    for service in of_kind(documents, "Service"):
        selector = service["spec"]["selector"].items()
        (selected,) = [d for d in deployments if selector <= d["spec"]["template"]["metadata"]["labels"].items()]
        (container,) = selected["spec"]["template"]["spec"]["containers"]
        parts[service["metadata"]["name"]] = served_by([*container["command"], *container["args"]])
    return KubernetesIngress(paths, parts)


ROUTERS: dict[str, Callable[[], Router]] = {"compose": compose_ingress, "kubernetes": kubernetes_ingress}


def test_each_service_owns_paths_no_other_serves(ownership: Ownership) -> None:
    for part in (Part.intake, Part.directory, Part.alerts, Part.reports):
        assert ownership.owned[part], part
    assert not ownership.owned[Part.worker]  # it serves only what every part does
    for part, paths in ownership.owned.items():
        for other, theirs in ownership.owned.items():
            assert part == other or not {p.template for p in paths} & {p.template for p in theirs}


@pytest.mark.parametrize("router_name", ROUTERS)
def test_every_path_a_service_owns_reaches_that_service(router_name: str, ownership: Ownership) -> None:
    router: Router = ROUTERS[router_name]()
    misrouted = {
        path.template: (part, router.part_for(path.example))
        for part, paths in ownership.owned.items()
        for path in paths
        if router.part_for(path.example) is not part
    }
    assert not misrouted, f"{router.name} routes these (path: (owner, reached)): {misrouted}"


@pytest.mark.parametrize("router_name", ROUTERS)
def test_health_and_metrics_stay_inside(router_name: str, ownership: Ownership) -> None:
    router: Router = ROUTERS[router_name]()
    operational = [path for path in ownership.shared if path.operational]
    assert {path.template for path in operational} >= {"/healthz", "/readyz", "/metrics"}
    assert {path.template: router.part_for(path.example) for path in operational} == dict.fromkeys(
        (path.template for path in operational), None
    )


def test_the_api_documentation_is_public_the_same_way_on_both(ownership: Ownership) -> None:
    compose_router, kubernetes_router = compose_ingress(), kubernetes_ingress()
    documentation = [path for path in ownership.shared if not path.operational]
    assert "/docs" in {path.template for path in documentation}
    for path in documentation:
        reached = compose_router.part_for(path.example)
        assert reached is not None, path
        assert kubernetes_router.part_for(path.example) is reached, path


def test_the_matching_is_nginx_s_and_kubernetes_own() -> None:
    """The two routers' rules where they differ: a routed prefix is no prefix of a longer word."""
    assert kubernetes_ingress().part_for("/lx") is None
    assert kubernetes_ingress().part_for("/l") is Part.alerts
    assert compose_ingress().part_for("/dashboardx") is None
    assert compose_ingress().part_for("/dashboard") is Part.reports


def test_the_production_overlay_changes_no_route() -> None:
    """The overlay's own patches of the Ingress may name the host and its certificate, nothing else."""
    kustomization = yaml.safe_load((K8S_PRODUCTION / "kustomization.yaml").read_text())
    ingress_patches = [p for p in kustomization["patches"] if p.get("target", {}).get("kind") == "Ingress"]
    assert ingress_patches
    for patch in ingress_patches:
        for operation in yaml.safe_load(patch["patch"]):
            assert re.fullmatch(r"/spec/(tls|rules/\d+/host)", operation["path"]), operation


def test_the_services_believe_forwarded_headers_from_the_compose_ingress_alone() -> None:
    document = compose()
    ingress_address = document["services"]["ingress"]["networks"]["default"]["ipv4_address"]
    for name, part in compose_ingress().parts.items():
        assert document["services"][name]["environment"]["FORWARDED_ALLOW_IPS"] == ingress_address, part
    sent = dict(d["args"] for d in directives(nginx_server(), "proxy_set_header"))
    assert sent["X-Forwarded-For"] == "$proxy_add_x_forwarded_for"
    assert sent["X-Forwarded-Proto"] == "$forwarded_proto"


def test_the_base_secret_is_a_placeholder_production_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    documents = kubernetes_documents(K8S_BASE)
    (secret,) = of_kind(documents, "Secret")
    kustomization = yaml.safe_load((K8S_BASE / "kustomization.yaml").read_text())
    (config,) = kustomization["configMapGenerator"]
    environment = dict(literal.split("=", 1) for literal in config["literals"]) | secret["stringData"]
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match="CALLOUT_ADMIN_TOKEN"):
        AlertsSettings()
    monkeypatch.setenv("CALLOUT_ADMIN_TOKEN", "an-admin-token-of-enough-length")
    with pytest.raises(ValidationError, match="CALLOUT_DATA_KEY"):
        AlertsSettings()
    monkeypatch.setenv("CALLOUT_DATA_KEY", "a-data-key-of-enough-length-0123456789")
    with pytest.raises(ValidationError, match="CALLOUT_TWILIO_ACCOUNT_SID"):
        AlertsSettings()


def test_every_deployment_says_to_listen_beyond_the_container_s_loopback() -> None:
    """`callout serve` listens on 127.0.0.1 unless told otherwise: each container is told, or nothing reaches it."""
    commands = [
        service["command"] for service in compose()["services"].values() if "serve" in service.get("command", [])
    ]
    for deployment in of_kind(kubernetes_documents(K8S_BASE), "Deployment"):
        commands += [[*c["command"], *c["args"]] for c in deployment["spec"]["template"]["spec"]["containers"]]
    (dockerfile_cmd,) = [line for line in DOCKERFILE.read_text().splitlines() if line.startswith("CMD ")]
    commands.append(json.loads(dockerfile_cmd.removeprefix("CMD ")))

    assert len(commands) == 11  # five in compose, five on Kubernetes, the image's own
    for command in commands:
        assert command[:2] == ["callout", "serve"], command
        assert command[command.index("--host") + 1] == "0.0.0.0", command  # noqa: S104 - what containers need
