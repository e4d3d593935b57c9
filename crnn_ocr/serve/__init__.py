"""`ocr serve`: read images and PDFs over HTTP (FastAPI on uvicorn, the `serve` extra).

`POST /v1/read` answers with the JSON `ocr recognize --json` prints for the same input; `GET /healthz` says
whether the models are loaded; `GET /` is a small offline web page that draws the boxes over the image.
Importing this package needs no web framework: FastAPI, uvicorn and python-multipart are imported by
`create_app` (and `crnn_ocr.serve.app`) only. See docs/serve.md.

>>> from crnn_ocr.serve import ServeConfig
>>> ServeConfig().host, ServeConfig().port
('127.0.0.1', 8000)
"""

from __future__ import annotations

from crnn_ocr.serve.config import ServeConfig


def create_app(config: ServeConfig | None = None, **kwargs):
    """The FastAPI application (imports FastAPI; `pip install 'crnn_ocr[serve]'`). See `crnn_ocr.serve.app`."""
    from crnn_ocr.serve.app import create_app as create

    return create(config, **kwargs)


def require_extra() -> None:
    """Raise ModuleNotFoundError (named after the missing module) unless the `serve` extra is installed."""
    import fastapi  # noqa: F401
    import python_multipart  # noqa: F401
    import uvicorn  # noqa: F401


__all__ = ["ServeConfig", "create_app", "require_extra"]
