"""limit/offset and keyset (`cursor`) pagination, with the metadata in headers and the
body a plain JSON array.

An offset page sorts every record before it, so `offset` is bounded (API_MAX_OFFSET); a
cursor page reads the records whose id follows the cursor's, which BigQuery prunes to the
blocks after it (the table is clustered on id). `Link rel="next"` leads on by offset while
the next offset is within the bound, by cursor beyond it, so following links never meets
the bound; `rel="prev"` only on offset pages (a cursor page does not know its previous).
"""

import base64
import re
from typing import Any, Protocol

from django.conf import settings
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from records.entities import Record, record_id_is_valid

# ASCII digits only (int() would take "+1", " 1" or Arabic-Indic digits), at most 18 so
# that every accepted value fits BigQuery's INT64.
_DIGITS = re.compile(r"[0-9]{1,18}")

# A cursor is URL-safe base64, unpadded, of "1:" (its format's version) and the last id of
# the page before it. Opaque to clients: they get it from a Link header. An id is at most
# 128 characters, 512 bytes of UTF-8: 686 characters once encoded.
_CURSOR_VERSION = "1:"
_CURSOR_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,700}")
CURSOR_REFUSED = "'cursor' must be a token taken from a Link rel=\"next\" of this API"


def cursor_encode(record_id: str) -> str:
    """The cursor of the page that follows `record_id`."""
    payload = (_CURSOR_VERSION + record_id).encode()
    return base64.urlsafe_b64encode(payload).decode("ascii").rstrip("=")


def cursor_decode(token: str) -> str:
    """The id a cursor names; ValueError unless `token` is exactly what `cursor_encode`
    makes of a valid record id (no padding, no other alphabet, no stray bits)."""
    if not _CURSOR_SHAPE.fullmatch(token):
        raise ValueError("not a cursor")
    # binascii.Error (a length base64 cannot have) and UnicodeDecodeError are ValueErrors.
    payload = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8")
    if not payload.startswith(_CURSOR_VERSION):
        raise ValueError("not a cursor of this version")
    record_id = payload.removeprefix(_CURSOR_VERSION)
    if not record_id_is_valid(record_id) or cursor_encode(record_id) != token:
        raise ValueError("not a cursor")
    return record_id


class Collection(Protocol):
    """All records ordered by id (records.selectors.RecordSequence)."""

    def count(self) -> int: ...

    def __getitem__(self, window: slice) -> list[Record]: ...

    def after(self, record_id: str, *, limit: int) -> tuple[list[Record], bool]:
        """The first `limit` records whose id follows `record_id`, and whether more follow."""
        ...


def _parameter(
    request: Request, *, name: str, default: int, minimum: int, maximum: int, hint: str = ""
) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    allowed = f"'{name}' must be an integer from {minimum} to {maximum}{hint}"
    if not _DIGITS.fullmatch(raw):
        raise ValidationError(allowed)
    value = int(raw)
    if value < minimum or value > maximum:
        raise ValidationError(allowed)
    return value


class HeaderLimitOffsetPagination(LimitOffsetPagination):
    """`X-Total-Count` and an RFC 8288 `Link` header; bad parameters are 400s, not clamped."""

    default_limit = 100
    max_limit = 1000
    cursor_query_param = "cursor"
    # The page served, typed (the stubs type DRF's limit/offset/count as optional).
    _request: Request
    _limit: int
    _offset: int
    _after: str | None
    _count: int
    _page: list[Record]
    _more: bool

    def paginate_records(self, records: Collection, request: Request) -> list[Record]:
        """The page the request asks for. Every parameter is checked before the warehouse is
        asked anything (DRF's paginate_queryset counts before it reads `offset`)."""
        given = request.query_params
        if self.cursor_query_param in given and self.offset_query_param in given:
            raise ValidationError(
                "'cursor' and 'offset' cannot be combined: a page starts after a cursor or at"
                " an offset"
            )
        self._request = self.request = request
        self._limit = self.get_limit(request)
        self._after = self.get_cursor(request)
        self._offset = self.get_offset(request)
        self._more = False
        self._count = records.count()
        if self._after is not None:
            self._page, self._more = records.after(self._after, limit=self._limit)
        elif self._count == 0 or self._offset > self._count:
            self._page = []  # as DRF: past the (cached) count, no page query
        else:
            self._page = records[self._offset : self._offset + self._limit]
        return self._page

    def get_limit(self, request: Request) -> int:
        return _parameter(
            request,
            name=self.limit_query_param,
            default=self.default_limit,
            minimum=1,
            maximum=self.max_limit,
        )

    def get_offset(self, request: Request) -> int:
        return _parameter(
            request,
            name=self.offset_query_param,
            default=0,
            minimum=0,
            maximum=settings.API_MAX_OFFSET,
            hint="; deeper pages are read by 'cursor': follow the Link rel=\"next\" of a page",
        )

    def get_cursor(self, request: Request) -> str | None:
        raw = request.query_params.get(self.cursor_query_param)
        if raw is None:
            return None
        try:
            return cursor_decode(raw)
        except ValueError:
            raise ValidationError(CURSOR_REFUSED) from None

    def _link(self, **parameters: object) -> str:
        """This request's URL with `limit` and `parameters` (None: left out)."""
        url = replace_query_param(
            self._request.build_absolute_uri(), self.limit_query_param, self._limit
        )
        for name, value in parameters.items():
            url = (
                remove_query_param(url, name)
                if value is None
                else replace_query_param(url, name, value)
            )
        return url

    def _cursor_link(self) -> str | None:
        """The page after this one, by cursor: from the last id it holds."""
        if not self._page:
            return None
        return self._link(
            **{self.offset_query_param: None},
            **{self.cursor_query_param: cursor_encode(self._page[-1].id)},
        )

    def get_next_link(self) -> str | None:
        if self._after is not None:
            return self._cursor_link() if self._more else None
        following = self._offset + self._limit
        if following >= self._count:
            return None
        # Within the bound the next offset page costs what a cursor page would (both read
        # about the whole table that near its start); past it, only a cursor leads on.
        if following <= settings.API_MAX_OFFSET:
            return self._link(**{self.offset_query_param: following})
        return self._cursor_link()

    def get_previous_link(self) -> str | None:
        # A cursor page knows what follows it, not what precedes it.
        if self._after is not None or self._offset <= 0:
            return None
        previous = self._offset - self._limit
        return self._link(**{self.offset_query_param: previous if previous > 0 else None})

    def get_paginated_response(self, data: object) -> Response:
        links = [
            f'<{url}>; rel="{rel}"'
            for rel, url in (("next", self.get_next_link()), ("prev", self.get_previous_link()))
            if url
        ]
        headers = {"X-Total-Count": str(self._count)}
        if links:
            headers["Link"] = ", ".join(links)
        return Response(data, headers=headers)

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return schema
