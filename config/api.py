"""What every API view shares: one error shape, pagination, parameter parsing.

Every error answers ``{"error": {"code": ..., "message": ..., "fields": {...}}}``:
``code`` is a stable machine-readable word (``not_found``, ``invalid``,
``not_authenticated``, ``permission_denied``, ``throttled``, ``conflict``, ...),
``message`` a sentence for people, ``fields`` the per-field (or per-row)
problems of a validation error, empty otherwise.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 100


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


def _flatten(detail: Any) -> Any:
    """DRF's ErrorDetail lists/dicts -> plain strings, lists and dicts."""
    if isinstance(detail, dict):
        return {str(k): _flatten(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [_flatten(v) for v in detail]
    return str(detail)


def _first_message(detail: Any) -> str:
    """The first leaf message of a (nested) validation error, prefixed by where it is."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            inner = _first_message(value)
            return f"{key}: {inner}" if key != "non_field_errors" else inner
    if isinstance(detail, list):
        for value in detail:
            if value:
                return _first_message(value)
    return str(detail) if detail else "invalid input"


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, re-shaped into the one error body; Django's errors mapped first."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: Django's 500 handling (and logging) applies
    assert isinstance(exc, exceptions.APIException)
    if isinstance(exc, exceptions.ValidationError):
        detail = _flatten(exc.detail)
        fields = detail if isinstance(detail, dict) else {"non_field_errors": detail}
        first = _first_message(fields)
        response.data = error_body("invalid", f"Invalid input — {first}", fields)
    else:
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "error"
        response.data = error_body(code, str(_flatten(exc.detail)))
    return response


def query_int(request: Request, name: str, default: int, *, minimum: int, maximum: int) -> int:
    """An integer query parameter within [minimum, maximum], else a 400 naming it and the range."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise exceptions.ValidationError({name: [f"{raw!r} is not a whole number"]}) from None
    if not minimum <= value <= maximum:
        raise exceptions.ValidationError({name: [f"{value} is outside {minimum}–{maximum}"]})
    return value


def query_bool(request: Request, name: str, default: bool) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise exceptions.ValidationError({name: [f"{raw!r} is not true or false"]})


#: The error responses every operation may answer, documented once for all of them.
ERROR_STATUSES = {
    "400": "Invalid input: a malformed parameter or body (see `fields`).",
    "401": "Not signed in (send `Authorization: Token <key>` or a session cookie).",
    "403": "Signed in, but not allowed (another user's data, or staff only).",
    "404": "No such object.",
    "405": "Method not allowed on this URL.",
    "409": "Conflicts with the current state (e.g. a training run holds the lock).",
    "429": "Too many requests: wait `Retry-After` seconds.",
    "503": "A service the request needs is down.",
}

ERROR_COMPONENT = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {"type": "string", "example": "not_found"},
                "message": {"type": "string", "example": "Not found."},
                "fields": {"type": "object", "additionalProperties": True},
            },
        }
    },
}


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: every operation documents the one error shape
    for every error status (so clients and schemathesis know what to expect)."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_COMPONENT
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status_code, description in ERROR_STATUSES.items():
                responses.setdefault(
                    status_code,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                )
    return result


@csrf_exempt  # no view here: answer 404 before Django's CSRF check answers with its HTML 403
def api_not_found(request: HttpRequest) -> JsonResponse:
    """Any path under ``/api/v1/`` that no route matches."""
    return JsonResponse(error_body("not_found", f"No API endpoint at {request.path}."), status=404)
