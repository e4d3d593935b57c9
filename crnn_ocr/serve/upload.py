"""The upload of `POST /v1/read`, read into memory with a byte cap: a raw body (an image or a PDF) or a
multipart/form-data body whose field `file` holds it (other fields are options). Nothing is written to disk.

Content-Length past the cap is refused before a byte is read; a body without one (chunked) is read up to the
cap and no further. Errors are `ServeError`s: 400 malformed, 413 too large, 415 not an image or a PDF.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

from crnn_ocr.serve.engine import ServeError

RAW_TYPES = ("application/pdf", "application/octet-stream")  # and image/*
MAX_PARTS = 16
MAX_FIELD_BYTES = 1000
HOW = "send an image (image/*) or a PDF (application/pdf) as the body, or in the multipart/form-data field `file`"


@dataclass
class Upload:
    data: bytes
    name: str  # the multipart file name (without folders), or "-" for a raw body, as stdin is for the CLI
    pdf: bool | None  # True when declared application/pdf; None: tell by the bytes
    fields: dict[str, str] = field(default_factory=dict)  # the other multipart fields (options)


def media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def accepted(media: str) -> bool:
    return media.startswith("image/") or media in RAW_TYPES


def check_length(headers: Mapping[str, str], max_bytes: int) -> None:
    """Refuse a declared body over the cap, before reading it."""
    length = headers.get("content-length")
    if length is None:
        return
    if not length.strip().isdigit():
        raise ServeError(400, f"bad Content-Length {length!r}")
    if int(length) > max_bytes:
        raise ServeError(413, f"upload too large: {int(length)} bytes, limit {max_bytes}")


async def read_upload(headers: Mapping[str, str], stream: AsyncIterator[bytes], max_bytes: int) -> Upload:
    """The upload of one request (`headers` lower-case names, `stream` the body's chunks), at most `max_bytes`."""
    content_type = headers.get("content-type")
    media = media_type(content_type)
    if media != "multipart/form-data" and not accepted(media):
        raise ServeError(415, f"unsupported content type {media or 'none'!r}: {HOW}")
    check_length(headers, max_bytes)
    if media == "multipart/form-data":
        return await _read_multipart(content_type, stream, max_bytes)
    body = bytearray()
    async for chunk in _capped(stream, max_bytes):
        body += chunk
    return Upload(bytes(body), "-", True if media == "application/pdf" else None)


async def _capped(stream: AsyncIterator[bytes], max_bytes: int) -> AsyncIterator[bytes]:
    seen = 0
    async for chunk in stream:
        seen += len(chunk)
        if seen > max_bytes:
            raise ServeError(413, f"upload too large: more than {max_bytes} bytes")
        yield chunk


class _Parts:
    """python-multipart's callbacks, collecting each part's headers and bytes in memory."""

    def __init__(self):
        self.parts: list[dict] = []
        self.field, self.value = bytearray(), bytearray()
        self.ended = False

    def callbacks(self) -> dict:
        return {"on_part_begin": self.begin, "on_header_field": self.header_field,
                "on_header_value": self.header_value, "on_header_end": self.header_end,
                "on_part_data": self.data, "on_end": self.end}

    def begin(self) -> None:
        if len(self.parts) >= MAX_PARTS:
            raise ServeError(400, f"malformed multipart body: more than {MAX_PARTS} parts")
        self.parts.append({"headers": {}, "data": bytearray()})

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self.field += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def header_end(self) -> None:
        self.parts[-1]["headers"][bytes(self.field).decode("latin-1").lower()] = bytes(self.value).decode("latin-1")
        self.field, self.value = bytearray(), bytearray()

    def data(self, data: bytes, start: int, end: int) -> None:
        self.parts[-1]["data"] += data[start:end]

    def end(self) -> None:
        self.ended = True


async def _read_multipart(content_type: str, stream: AsyncIterator[bytes], max_bytes: int) -> Upload:
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise ServeError(400, "malformed multipart body: no boundary in the Content-Type")
    collected = _Parts()
    parser = MultipartParser(boundary, collected.callbacks())
    try:
        async for chunk in _capped(stream, max_bytes):
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as e:
        raise ServeError(400, f"malformed multipart body ({e})") from None
    if not collected.ended:
        raise ServeError(400, "malformed multipart body: it ends before its closing boundary")
    upload, fields = None, {}
    for part in collected.parts:
        _, disposition = parse_options_header(part["headers"].get("content-disposition", ""))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        if name != "file":
            if b"filename" in disposition or len(part["data"]) > MAX_FIELD_BYTES:
                raise ServeError(400, f"unexpected multipart field {name!r}: the file goes in the field `file`")
            fields[name] = bytes(part["data"]).decode("utf-8", "replace")
            continue
        if upload is not None:
            raise ServeError(400, "more than one file: send one image or PDF per request")
        media = media_type(part["headers"].get("content-type"))
        if media and not accepted(media):
            raise ServeError(415, f"unsupported content type {media!r} of the field `file`: {HOW}")
        filename = disposition.get(b"filename", b"").decode("utf-8", "replace")
        filename = filename.replace("\\", "/").rsplit("/", 1)[-1] or "-"
        upload = Upload(bytes(part["data"]), filename, True if media == "application/pdf" else None)
    if upload is None:
        raise ServeError(400, "no file: send the image or PDF in the multipart/form-data field `file`")
    upload.fields = fields
    return upload
