"""The hand-written pydantic models against the OpenAPI document: every schema has a model, and each
model has exactly the schema's properties, the same required ones and the same enums, nested objects
included. Fails on drift (a field added, renamed, made optional or required on either side)."""

from __future__ import annotations

import types
import typing
from typing import Any, Union

import pytest
from pydantic import BaseModel

from threadline import types as t

#: Schema name in components.schemas -> the model that reads or writes it.
MODELS: dict[str, type[BaseModel]] = {
    "CreateSessionBodyDto": t.CreateSessionRequest,
    "SessionViewDto_Output": t.Session,
    "SessionPageDto_Output": t.SessionPage,
    "UpdateSessionBodyDto": t.UpdateSessionRequest,
    "CurrentSessionBodyDto": t.CurrentSessionRequest,
    "UserTokenBodyDto": t.UserTokenRequest,
    "UserTokenReplyDto_Output": t.UserToken,
    "HealthReportDto": t.HealthReport,
    "ReadinessReportDto": t.ReadinessReport,
    "LiveReportDto": t.LiveReport,
    "LogTurnBodyDto": t.LogTurnRequest,
    "TurnViewDto_Output": t.Turn,
    "TurnPageDto_Output": t.TurnPage,
    "TurnResponseBodyDto": t.TurnResponseRequest,
    "CompleteTurnBodyDto": t.CompleteTurnRequest,
    "FailTurnBodyDto": t.FailTurnRequest,
    "SessionStateViewDto_Output": t.SessionState,
    "SessionStatePatchBodyDto": t.StatePatchRequest,
    "PutToolCallBodyDto": t.PutToolCallRequest,
    "SessionHistoryPageDto_Output": t.SessionHistoryPage,
    "AgentFailureProblemDto_Output": t.AgentFailureProblem,
    "QueryBodyDto": t.QueryRequest,
    "QueryReplyDto_Output": t.QueryReply,
    "CleanupReportDto_Output": t.CleanupReport,
    "GlobalStatsViewDto_Output": t.GlobalStats,
    "SessionStatsViewDto_Output": t.SessionStats,
    "UserStatsViewDto_Output": t.UserStats,
    "UsageStatsViewDto_Output": t.UsageStats,
    "UserErasureReceiptDto_Output": t.UserErasureReceipt,
    "ProblemDetailsDto": t.Problem,
}


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        schema = document["components"]["schemas"][name]
    return schema


def _strip(annotation: Any) -> list[Any]:
    """The non-None members of an annotation (`Optional[list[X]]` -> `[list[X]]`)."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def _model_in(annotation: Any, array: bool) -> type[BaseModel] | None:
    for member in _strip(annotation):
        if array:
            if typing.get_origin(member) is list:
                inner = typing.get_args(member)[0]
                found = _model_in(inner, array=False)
                if found is not None:
                    return found
        elif isinstance(member, type) and issubclass(member, BaseModel):
            return member
    return None


def _literal_values(annotation: Any) -> set[Any] | None:
    for member in _strip(annotation):
        if typing.get_origin(member) is typing.Literal:
            return set(typing.get_args(member))
    return None


def _compare(model: type[BaseModel], schema: dict[str, Any], document: dict[str, Any], where: str) -> list[str]:
    schema = _resolve(schema, document)
    problems: list[str] = []
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    fields = {(info.alias or name): info for name, info in model.model_fields.items()}
    for name in sorted(set(properties) - set(fields)):
        problems.append(f"{where}.{name}: in the schema, missing from {model.__name__}")
    for name in sorted(set(fields) - set(properties)):
        problems.append(f"{where}.{name}: in {model.__name__}, not in the schema")
    for name in sorted(set(properties) & set(fields)):
        info = fields[name]
        prop = _resolve(properties[name], document)
        if (name in required) != info.is_required():
            side = "required" if name in required else "optional"
            problems.append(f"{where}.{name}: {side} in the schema, not in {model.__name__}")
        enum = prop.get("enum")
        literal = _literal_values(info.annotation)
        if enum is not None and literal is not None and set(enum) != literal:
            problems.append(f"{where}.{name}: enum {sorted(enum)} in the schema, {sorted(literal)} in the model")
        if prop.get("type") == "object" and "properties" in prop:
            nested = _model_in(info.annotation, array=False)
            if nested is None:
                problems.append(f"{where}.{name}: an object with properties, but no model in {model.__name__}")
            else:
                problems += _compare(nested, prop, document, f"{where}.{name}")
        items = _resolve(prop.get("items", {}), document) if prop.get("type") == "array" else {}
        if items.get("type") == "object" and "properties" in items:
            nested = _model_in(info.annotation, array=True)
            if nested is None:
                problems.append(f"{where}.{name}[]: objects with properties, but no model in {model.__name__}")
            else:
                problems += _compare(nested, items, document, f"{where}.{name}[]")
    return problems


def test_every_schema_has_a_model(openapi: dict[str, Any]) -> None:
    schemas = set(openapi["components"]["schemas"])
    assert sorted(schemas - set(MODELS)) == [], "schemas without a model in threadline.types"
    assert sorted(set(MODELS) - schemas) == [], "models of schemas the API no longer has"


@pytest.mark.parametrize("schema_name", sorted(MODELS))
def test_model_matches_its_schema(openapi: dict[str, Any], schema_name: str) -> None:
    schema = openapi["components"]["schemas"].get(schema_name)
    assert schema is not None, f"{schema_name} is not in the OpenAPI document"
    assert _compare(MODELS[schema_name], schema, openapi, schema_name) == []


def test_the_check_catches_drift(openapi: dict[str, Any]) -> None:
    """The comparison itself can fail: a schema with one more, one renamed and one re-required field."""
    schema = dict(openapi["components"]["schemas"]["FailTurnBodyDto"])
    schema["properties"] = {**schema["properties"], "new_field": {"type": "string"}}
    schema["required"] = ["error", "processing_time_ms"]
    problems = _compare(t.FailTurnRequest, schema, openapi, "FailTurnBodyDto")
    assert any("new_field" in p for p in problems)
    assert any("processing_time_ms" in p for p in problems)
