"""Typed exceptions. The library raises these; only the CLI prints them and exits."""

from __future__ import annotations


class OcrError(Exception):
    """Base class of every error the library raises on purpose."""


class ConfigError(OcrError, ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


class VocabError(OcrError, ValueError):
    """A vocabulary is malformed (duplicate characters, empty, blank misuse)."""


class UnknownCharacterError(VocabError):
    """A label holds characters that the vocabulary cannot encode."""

    def __init__(self, text: str, unknown: list[str]):
        self.text = text
        self.unknown = unknown
        shown = ", ".join(repr(c) for c in unknown)
        super().__init__(f"label {text!r} has characters outside the vocabulary: {shown}")


class ImageError(OcrError, ValueError):
    """An image cannot be read: missing, corrupt, empty, unsupported or too large."""


class ImageTooLargeError(ImageError):
    """An image has more pixels than the configured limit (decompression-bomb guard)."""


class TooComplexError(ImageError):
    """An image holds too many ink specks to be a page of text within the limits (noise, a halftone)."""


class DatasetError(OcrError):
    """A dataset cannot be opened or is not in a supported layout."""


class CheckpointError(OcrError):
    """A checkpoint or exported model is missing, foreign, corrupt or unsafe."""


class ExportError(OcrError):
    """A model cannot be exported, or the exported file does not match torch."""


class ArchitectureError(OcrError, KeyError):
    """An architecture name is unknown or registered twice."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
