"""limit/offset pagination with the metadata in headers and the body a plain JSON array."""

import re
from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response

# ASCII digits only (int() would take "+1", " 1" or Arabic-Indic digits), at most 18 so
# that every accepted value fits BigQuery's INT64.
_DIGITS = re.compile(r"[0-9]{1,18}")


def _parameter(
    request: Request, *, name: str, default: int, minimum: int, maximum: int | None
) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    allowed = (
        f"'{name}' must be an integer from {minimum} to {maximum}"
        if maximum is not None
        else f"'{name}' must be an integer greater than or equal to {minimum}"
    )
    if not _DIGITS.fullmatch(raw):
        raise ValidationError(allowed)
    value = int(raw)
    if value < minimum or (maximum is not None and value > maximum):
        raise ValidationError(allowed)
    return value


class HeaderLimitOffsetPagination(LimitOffsetPagination):
    """`X-Total-Count` and an RFC 8288 `Link` header; bad parameters are 400s, not clamped."""

    default_limit = 100
    max_limit = 1000

    def get_limit(self, request: Request) -> int:
        return _parameter(
            request,
            name=self.limit_query_param,
            default=self.default_limit,
            minimum=1,
            maximum=self.max_limit,
        )

    def get_offset(self, request: Request) -> int:
        return _parameter(request, name=self.offset_query_param, default=0, minimum=0, maximum=None)

    def get_paginated_response(self, data: object) -> Response:
        links = [
            f'<{url}>; rel="{rel}"'
            for rel, url in (("next", self.get_next_link()), ("prev", self.get_previous_link()))
            if url
        ]
        headers = {"X-Total-Count": str(self.count)}
        if links:
            headers["Link"] = ", ".join(links)
        return Response(data, headers=headers)

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return schema
