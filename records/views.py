"""HTTP interface of the read side: parse the request, call a selector, shape the answer."""

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import viewsets
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from records.entities import Record, record_id_is_valid
from records.pagination import HeaderLimitOffsetPagination
from records.selectors import RecordSequence, record_get
from records.serializers import ErrorSerializer, RecordSerializer

NOT_FOUND_MESSAGE = "Registro no encontrado"

_retry_after = OpenApiParameter(
    "Retry-After",
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    response=[429, 503],
    description="Seconds to wait before retrying",
)
_errors = {
    400: OpenApiResponse(ErrorSerializer, description="Malformed or out-of-range parameter"),
    429: OpenApiResponse(ErrorSerializer, description="Too many requests (see Retry-After)"),
    503: OpenApiResponse(ErrorSerializer, description="Warehouse unavailable (see Retry-After)"),
}


class RecordViewSet(viewsets.ViewSet):
    """Records ingested from Pub/Sub, read from BigQuery (one row per id, latest wins)."""

    lookup_field = "id"
    lookup_value_regex = "[^/]+"

    @extend_schema(
        summary="List records ordered by id",
        parameters=[
            OpenApiParameter("limit", OpenApiTypes.INT, description="1–1000, default 100"),
            OpenApiParameter(
                "offset",
                OpenApiTypes.INT,
                description=(
                    f"0–{settings.API_MAX_OFFSET}, default 0. An offset page reads every row"
                    " and sorts the records before it: deeper pages are read by `cursor`"
                ),
            ),
            OpenApiParameter(
                "cursor",
                OpenApiTypes.STR,
                description=(
                    'Opaque token from a `Link` rel="next": the page of the records that'
                    " follow the previous page (keyset pagination, cheap at any depth). Not"
                    " with `offset`; a malformed cursor is a 400"
                ),
            ),
            OpenApiParameter(
                "X-Total-Count",
                OpenApiTypes.INT,
                OpenApiParameter.HEADER,
                response=[200],
                description="Number of records in the collection",
            ),
            OpenApiParameter(
                "Link",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                response=[200],
                description=(
                    'RFC 8288 links: rel="next" (by offset within the maximum offset, by'
                    ' cursor beyond it and on cursor pages), rel="prev" (offset pages only)'
                ),
            ),
            _retry_after,
        ],
        responses={
            200: OpenApiResponse(
                RecordSerializer(many=True),
                description="A JSON array; `X-Total-Count` and `Link` (rel next/prev) headers",
            ),
            **_errors,
        },
    )
    def list(self, request: Request) -> Response:
        paginator = HeaderLimitOffsetPagination()
        page: list[Record] = paginator.paginate_records(RecordSequence(), request)
        # many=True takes a list of instances (a ListSerializer); the stub types one.
        serializer = RecordSerializer(page, many=True)  # type: ignore[arg-type]
        return paginator.get_paginated_response(serializer.data)

    @extend_schema(
        summary="One record by id",
        parameters=[_retry_after],
        responses={
            200: RecordSerializer,
            404: OpenApiResponse(ErrorSerializer, description=NOT_FOUND_MESSAGE),
            **_errors,
        },
    )
    def retrieve(self, request: Request, id: str) -> Response:
        # An id that breaks the Record rules cannot exist: no warehouse query for it.
        record = record_get(record_id=id) if record_id_is_valid(id) else None
        if record is None:
            raise NotFound(NOT_FOUND_MESSAGE)
        return Response(RecordSerializer(record).data)
