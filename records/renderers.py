"""The browsable API, fit for the Content-Security-Policy (see settings)."""

from collections.abc import Mapping
from typing import Any

from rest_framework import renderers


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    """DRF's browsable API without its inline Pygments stylesheet, which the policy
    refuses (`style-src 'self'`). It only styles Markdown docstrings, and Markdown is not
    installed; Pygments, when a tool brings it in, would otherwise add the block."""

    def get_context(
        self, data: Any, accepted_media_type: str | None, renderer_context: Mapping[str, Any]
    ) -> dict[str, Any]:
        context = super().get_context(data, accepted_media_type, renderer_context)
        context["code_style"] = None
        return context
