"""Every API operation as a request (`Op`), built once for both clients from the caller's arguments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import types as t
from ._base import Op, body_of, drop_none, if_match_value, quote

IfMatch = int | str | None


def _write(
    method: str,
    path: str,
    json: Any = None,
    *,
    idempotency_key: str | None,
    timeout: float | None,
    if_match: IfMatch = None,
) -> Op:
    headers = {}
    value = if_match_value(if_match)
    if value is not None:
        headers["if-match"] = value
    return Op(
        method,
        path,
        json=json,
        headers=headers,
        write=True,
        idempotency_key=idempotency_key,
        timeout=timeout,
    )


def _read(method: str, path: str, params: Mapping[str, Any] | None = None, *, timeout: float | None) -> Op:
    return Op(method, path, params=drop_none(params or {}), timeout=timeout)


# --- sessions ---


def session_create(values: Mapping[str, Any], idempotency_key: str | None, timeout: float | None) -> Op:
    return _write(
        "POST",
        "/sessions",
        body_of(t.CreateSessionRequest, values),
        idempotency_key=idempotency_key,
        timeout=timeout,
    )


def session_get(session_id: str, timeout: float | None) -> Op:
    return _read("GET", f"/sessions/{quote(session_id)}", timeout=timeout)


def session_exists(session_id: str, timeout: float | None) -> Op:
    op = _read("HEAD", f"/sessions/{quote(session_id)}", timeout=timeout)
    op.ok_statuses = frozenset({404})
    return op


def session_update(
    session_id: str,
    values: Mapping[str, Any],
    if_match: IfMatch,
    idempotency_key: str | None,
    timeout: float | None,
) -> Op:
    return _write(
        "PATCH",
        f"/sessions/{quote(session_id)}",
        body_of(t.UpdateSessionRequest, values),
        if_match=if_match,
        idempotency_key=idempotency_key,
        timeout=timeout,
    )


def session_end(session_id: str, idempotency_key: str | None, timeout: float | None) -> Op:
    return _write("POST", f"/sessions/{quote(session_id)}/end", idempotency_key=idempotency_key, timeout=timeout)


def session_delete(session_id: str, idempotency_key: str | None, timeout: float | None) -> Op:
    return _write("DELETE", f"/sessions/{quote(session_id)}", idempotency_key=idempotency_key, timeout=timeout)


def session_list(
    user_id: str | None,
    status: str | None,
    limit: int | None,
    sort: str | None,
    order: str | None,
    metadata: Mapping[str, str] | None,
    cursor: str | None,
    timeout: float | None,
) -> Op:
    if user_id is None:
        if sort is not None or order is not None or metadata:
            raise ValueError("sort, order and metadata filters need user_id (GET /users/{user_id}/sessions)")
        return _read("GET", "/sessions", {"status": status, "limit": limit, "cursor": cursor}, timeout=timeout)
    params: dict[str, Any] = {"status": status, "limit": limit, "cursor": cursor, "sort": sort, "order": order}
    for key, value in (metadata or {}).items():
        params[f"metadata.{key}"] = value
    return _read("GET", f"/users/{quote(user_id)}/sessions", params, timeout=timeout)


def session_current(user_id: str, timeout: float | None) -> Op:
    return _read("GET", f"/users/{quote(user_id)}/sessions/current", timeout=timeout)


def session_get_or_create(
    user_id: str, values: Mapping[str, Any], idempotency_key: str | None, timeout: float | None
) -> Op:
    return _write(
        "POST",
        f"/users/{quote(user_id)}/sessions/current",
        body_of(t.CurrentSessionRequest, values),
        idempotency_key=idempotency_key,
        timeout=timeout,
    )


def session_cleanup(idempotency_key: str | None, timeout: float | None) -> Op:
    # The route stores no key (a repeat runs one more pass, which is harmless); it is sent all the same.
    return _write("POST", "/sessions/cleanup", idempotency_key=idempotency_key, timeout=timeout)


# --- turns ---


def turn_log(session_id: str, values: Mapping[str, Any], idempotency_key: str | None, timeout: float | None) -> Op:
    return _write(
        "POST",
        f"/sessions/{quote(session_id)}/turns",
        body_of(t.LogTurnRequest, values),
        idempotency_key=idempotency_key,
        timeout=timeout,
    )


def turn_add_response(
    turn_id: str, values: Mapping[str, Any], idempotency_key: str | None, timeout: float | None
) -> Op:
    body = body_of(t.TurnResponseRequest, values)
    if len(body) != 1:
        raise ValueError("give exactly one of agent_response or tool_call")
    return _write("POST", f"/turns/{quote(turn_id)}/responses", body, idempotency_key=idempotency_key, timeout=timeout)


def turn_complete(turn_id: str, values: Mapping[str, Any], idempotency_key: str | None, timeout: float | None) -> Op:
    return _write(
        "POST",
        f"/turns/{quote(turn_id)}/complete",
        body_of(t.CompleteTurnRequest, values),
        idempotency_key=idempotency_key,
        timeout=timeout,
    )


def turn_fail(turn_id: str, values: Mapping[str, Any], idempotency_key: str | None, timeout: float | None) -> Op:
    return _write(
        "POST",
        f"/turns/{quote(turn_id)}/fail",
        body_of(t.FailTurnRequest, values),
        idempotency_key=idempotency_key,
        timeout=timeout,
    )


def turn_list(
    session_id: str,
    order: str | None,
    limit: int | None,
    last: int | None,
    cursor: str | None,
    timeout: float | None,
) -> Op:
    params = {"order": order, "limit": limit, "last": last, "cursor": cursor}
    return _read("GET", f"/sessions/{quote(session_id)}/turns", params, timeout=timeout)


def turn_get(turn_id: str, timeout: float | None) -> Op:
    return _read("GET", f"/turns/{quote(turn_id)}", timeout=timeout)


def turn_delete(turn_id: str, idempotency_key: str | None, timeout: float | None) -> Op:
    return _write("DELETE", f"/turns/{quote(turn_id)}", idempotency_key=idempotency_key, timeout=timeout)


def turn_list_for_user(
    user_id: str, q: str | None, user_input: str | None, limit: int | None, timeout: float | None
) -> Op:
    params = {"q": q, "user_input": user_input, "limit": limit}
    return _read("GET", f"/users/{quote(user_id)}/turns", params, timeout=timeout)


# --- state and history ---


def state_get(session_id: str, version: int | None, at: str | None, timeout: float | None) -> Op:
    return _read("GET", f"/sessions/{quote(session_id)}/state", {"version": version, "at": at}, timeout=timeout)


def state_patch(
    session_id: str,
    patch: Mapping[str, Any] | t.StatePatchRequest,
    if_match: IfMatch,
    idempotency_key: str | None,
    timeout: float | None,
) -> Op:
    # A merge patch: a field set to None is sent as null (removes it); fields not given are not sent.
    model = patch if isinstance(patch, t.StatePatchRequest) else t.StatePatchRequest.model_validate(patch)
    body = model.model_dump(mode="json", exclude_unset=True)
    return _write(
        "PATCH",
        f"/sessions/{quote(session_id)}/state",
        body,
        if_match=if_match,
        idempotency_key=idempotency_key,
        timeout=timeout,
    )


def state_set_tool_call(
    session_id: str,
    name: str,
    values: Mapping[str, Any],
    if_match: IfMatch,
    idempotency_key: str | None,
    timeout: float | None,
) -> Op:
    return _write(
        "PUT",
        f"/sessions/{quote(session_id)}/tool-calls/{quote(name)}",
        body_of(t.PutToolCallRequest, values),
        if_match=if_match,
        idempotency_key=idempotency_key,
        timeout=timeout,
    )


def state_history(session_id: str, limit: int | None, cursor: str | None, timeout: float | None) -> Op:
    params = {"limit": limit, "cursor": cursor}
    return _read("GET", f"/sessions/{quote(session_id)}/history", params, timeout=timeout)


# --- query, stats, users, auth, health ---


def query(values: Mapping[str, Any], idempotency_key: str | None, timeout: float | None) -> Op:
    return _write("POST", "/query", body_of(t.QueryRequest, values), idempotency_key=idempotency_key, timeout=timeout)


def stats_tenant(min_position: int | None, timeout: float | None) -> Op:
    return _read("GET", "/sessions/stats", {"min_position": min_position}, timeout=timeout)


def stats_session(session_id: str, min_position: int | None, timeout: float | None) -> Op:
    return _read("GET", f"/sessions/{quote(session_id)}/stats", {"min_position": min_position}, timeout=timeout)


def stats_user(user_id: str, min_position: int | None, timeout: float | None) -> Op:
    return _read("GET", f"/users/{quote(user_id)}/stats", {"min_position": min_position}, timeout=timeout)


def stats_usage(
    from_: str | None,
    to: str | None,
    group_by: str | None,
    min_position: int | None,
    timeout: float | None,
) -> Op:
    params = {"from": from_, "to": to, "group_by": group_by, "min_position": min_position}
    return _read("GET", "/stats/usage", params, timeout=timeout)


def user_erase(user_id: str, idempotency_key: str | None, timeout: float | None) -> Op:
    return _write("DELETE", f"/users/{quote(user_id)}", idempotency_key=idempotency_key, timeout=timeout)


def user_token(values: Mapping[str, Any], idempotency_key: str | None, timeout: float | None) -> Op:
    # The route stores no key (a retry mints another token, which is harmless); it is sent all the same.
    body = body_of(t.UserTokenRequest, values)
    return _write("POST", "/auth/user-tokens", body, idempotency_key=idempotency_key, timeout=timeout)


def health(timeout: float | None) -> Op:
    op = _read("GET", "/health", timeout=timeout)
    op.ok_statuses = frozenset({503})  # the report says which check is down
    return op


def health_live(timeout: float | None) -> Op:
    return _read("GET", "/health/live", timeout=timeout)


def health_ready(timeout: float | None) -> Op:
    op = _read("GET", "/health/ready", timeout=timeout)
    op.ok_statuses = frozenset({503})  # the report names the checks that are down
    return op
