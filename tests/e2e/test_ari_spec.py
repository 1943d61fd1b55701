"""Our ARI client and models agree with the spec the running Asterisk serves.

Asterisk publishes its ARI description (Swagger 1.2) at ``/ari/api-docs/``. These tests prove
that every field our models declare exists there with a compatible type (and is only required
by us when Asterisk always sends it), and that every request the client can make uses a
documented method, path and parameter names.
"""

from __future__ import annotations

import base64
import inspect
import json
import re
import types
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from helpline_pbx.ari import AriClient, AriError
from helpline_pbx.ari.http import ParamValue
from helpline_pbx.ari.models import EVENT_TYPES, RESOURCE_MODELS

pytestmark = pytest.mark.e2e

OUR_MODELS: list[type[BaseModel]] = [*RESOURCE_MODELS, *EVENT_TYPES.values()]


class AriEndpoint(Protocol):
    ari_url: str
    ari_user: str
    ari_password: str


@dataclass
class Operation:
    method: str
    pattern: re.Pattern[str]
    template: str
    query_params: set[str]
    body_params: set[str]


@dataclass
class Spec:
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    operations: list[Operation] = field(default_factory=list)

    def properties(self, name: str) -> dict[str, dict[str, Any]]:
        """A model's properties including those it inherits (``extends`` or ``subTypes``)."""
        props: dict[str, dict[str, Any]] = {}
        for parent in self._ancestors(name):
            props.update(self.models[parent].get("properties", {}))
        props.update(self.models[name].get("properties", {}))
        return props

    def _ancestors(self, name: str) -> list[str]:
        parents = [
            other
            for other, model in self.models.items()
            if name in model.get("subTypes", ()) or self.models[name].get("extends") == other
        ]
        chain: list[str] = []
        for parent in parents:
            chain += [*self._ancestors(parent), parent]
        return chain


def _get_json(asterisk: AriEndpoint, path: str) -> Any:
    url = asterisk.ari_url.rstrip("/") + path
    assert url.startswith(("http://", "https://"))
    token = base64.b64encode(f"{asterisk.ari_user}:{asterisk.ari_password}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})  # noqa: S310 - http(s) checked above
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - http(s) checked above
        return json.load(response)


def _path_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    regex = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(f"^{regex}$")


@pytest.fixture(scope="module")
def spec(asterisk: AriEndpoint) -> Spec:
    listing = _get_json(asterisk, "/api-docs/resources.json")
    result = Spec()
    for api in listing["apis"]:
        match = re.fullmatch(r"/api-docs/(\w+)\.\{format\}", api["path"])
        assert match, f"unexpected resource listing path {api['path']}"
        resource = _get_json(asterisk, f"/api-docs/{match.group(1)}.json")
        result.models.update(resource.get("models", {}))
        for path in resource.get("apis", []):
            for op in path.get("operations", []):
                params = op.get("parameters", [])
                result.operations.append(
                    Operation(
                        method=op["httpMethod"].upper(),
                        pattern=_path_pattern(path["path"]),
                        template=path["path"],
                        query_params={p["name"] for p in params if p["paramType"] == "query"},
                        body_params={p["name"] for p in params if p["paramType"] == "body"},
                    )
                )
    assert "Channel" in result.models
    assert "StasisStart" in result.models
    return result


# --- models ----------------------------------------------------------------------------------

_SCALARS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "int": (int,),
    "long": (int,),
    "boolean": (bool,),
    "double": (float,),
    "float": (float,),
    "Date": (datetime,),
    "object": (dict,),
}


def _without_none(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        assert len(rest) == 1, f"ambiguous union {annotation}"
        return rest[0]
    return annotation


def _compatible(annotation: Any, spec_type: str) -> bool:
    annotation = _without_none(annotation)
    listed = re.fullmatch(r"List\[(\w+)\]", spec_type)
    if listed:
        return get_origin(annotation) is list and _compatible(get_args(annotation)[0], listed[1])
    if get_origin(annotation) is Literal:
        return spec_type == "string" and all(isinstance(v, str) for v in get_args(annotation))
    if spec_type in _SCALARS:
        base = get_origin(annotation) or annotation
        return base in _SCALARS[spec_type]
    # A reference to another model: ours must carry the same name.
    return isinstance(annotation, type) and annotation.__name__ == spec_type


@pytest.mark.parametrize("model", OUR_MODELS, ids=lambda m: m.__name__)
def test_model_fields_exist_in_the_spec_with_compatible_types(spec: Spec, model: type[BaseModel]) -> None:
    name = model.__name__
    assert name in spec.models, f"Asterisk has no model named {name}"
    properties = spec.properties(name)

    problems = []
    for field_name, info in model.model_fields.items():
        prop = properties.get(field_name)
        if prop is None:
            problems.append(f"{field_name}: not in the spec")
            continue
        if not _compatible(info.annotation, prop["type"]):
            problems.append(f"{field_name}: ours {info.annotation}, spec {prop['type']}")
        if info.is_required() and not prop.get("required", False):
            problems.append(f"{field_name}: we require it, Asterisk may omit it")
    assert problems == [], f"{name} disagrees with the spec: " + "; ".join(problems)


# --- client requests -------------------------------------------------------------------------


@dataclass
class Sent:
    method: str
    path: str
    params: Mapping[str, ParamValue]
    body: Any


class RecordingClient(AriClient):
    """Records what each method would send; Asterisk is never contacted."""

    def __init__(self) -> None:
        super().__init__("http://127.0.0.1:9/ari", "spec-check", "unused")
        self.sent: list[Sent] = []

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, ParamValue] | None = None,
        json: Any = None,
    ) -> Any:
        self.sent.append(Sent(method, path, {k: v for k, v in (params or {}).items() if v is not None}, json))
        return None


CALLS: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
    "asterisk_info": ((), {}),
    "put_config_object": (("endpoint", "listener-7", {"context": "listeners"}), {}),
    "delete_config_object": (("endpoint", "listener-7"), {}),
    "create_bridge": (("hold-1", "holding"), {"name": "waiting"}),
    "destroy_bridge": (("hold-1",), {}),
    "get_bridge": (("hold-1",), {}),
    "list_bridges": ((), {}),
    "add_channel": (("talk-1", "call-1"), {"role": "participant"}),
    "remove_channel": (("talk-1", "call-1"), {}),
    "start_moh": (("hold-1",), {}),
    "stop_moh": (("hold-1",), {}),
    "play_on_bridge": (("hold-1", "sound:beep", "pb-1"), {}),
    "originate": (
        ("out-1", "PJSIP/listener-7"),
        {
            "app": "helpline",
            "app_args": ["listener"],
            "caller_id": "Helpline <0>",
            "timeout": 20,
            "variables": {"X": "1"},
        },
    ),
    "originate_to_dialplan": (
        ("notice-1", "PJSIP/listener-7"),
        {
            "context": "listener-notice",
            "extension": "debrief-request",
            "caller_id": "Helpline <0>",
            "timeout": 30,
            "variables": {"HELPLINE_NOTICE_CODE": "123"},
        },
    ),
    "hangup": (("call-1",), {}),
    "answer": (("call-1",), {}),
    "ring": (("call-1",), {}),
    "continue_in_dialplan": (("call-1", "fallback", "s", 1), {"label": "start"}),
    "play": (("call-1", "sound:beep", "pb-1"), {}),
    "stop_playback": (("pb-1",), {}),
    "snoop": (
        ("call-1", "snoop-1"),
        {"app": "helpline", "spy": "both", "whisper": "out", "app_args": "snoop"},
    ),
    "get_channel": (("call-1",), {}),
    "list_channels": ((), {}),
    "set_variable": (("call-1", "X", "1"), {}),
    "set_global_variable": (("X", "1"), {}),
    "get_variable": (("call-1", "X"), {}),
    "get_application": (("helpline",), {}),
    "subscribe": (("helpline", "endpoint:PJSIP"), {}),
    "list_endpoints": ((), {}),
    "get_endpoint": (("PJSIP", "listener-7"), {}),
}


def test_the_call_table_covers_every_client_method() -> None:
    public = {
        name
        for name, member in inspect.getmembers(AriClient, inspect.iscoroutinefunction)
        if not name.startswith("_") and name not in {"request", "close"}
    }
    assert public == set(CALLS)


@pytest.mark.parametrize("method_name", sorted(CALLS))
async def test_client_requests_are_documented_operations(spec: Spec, method_name: str) -> None:
    client = RecordingClient()
    args, kwargs = CALLS[method_name]
    try:
        await getattr(client, method_name)(*args, **kwargs)
    except AriError:
        pass  # the recorder answers nothing, which typed methods reject; only the request matters
    finally:
        await client.close()

    assert len(client.sent) == 1
    sent = client.sent[0]
    matches = [op for op in spec.operations if op.method == sent.method and op.pattern.match(sent.path)]
    assert matches, f"{sent.method} {sent.path} is not an ARI operation"
    # The most literal template wins, e.g. /bridges/{id}/moh over a hypothetical /bridges/{id}/{x}.
    op = max(matches, key=lambda o: len(re.sub(r"\{[^}]+\}", "", o.template)))
    assert set(sent.params) <= op.query_params, f"unknown query parameters for {op.template}"
    body_keys = set(sent.body) if isinstance(sent.body, dict) else set()
    assert body_keys <= op.body_params | op.query_params, f"unknown body fields for {op.template}"
