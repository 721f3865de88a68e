"""Reading document photos off the event loop: one :class:`DocumentReader` on one thread.

The reader (OCR model, YuNet, SFace) is not thread-safe, so it lives on a single
executor thread and is loaded there. Loading happens on the first document (or on
:meth:`DocumentScanner.warm_up`): face-only deployments never pay for the OCR model.
A model that fails to load answers every document with 503 [-20] (fail closed),
never "no document found".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from functools import partial

from bioverify.documents.reader import DocumentReader, DocumentReading
from bioverify.engine.decode import decode_frame
from bioverify.engine.interfaces import EngineUnavailable


class DocumentScanner:
    """Async front of a document reader; ``loader`` builds the reader (tests pass one)."""

    def __init__(self, loader: Callable[[], DocumentReader] = DocumentReader.load) -> None:
        self._loader = loader
        self._reader: DocumentReader | None = None
        self._failure: str | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="documents")

    def _load(self) -> DocumentReader:
        if self._reader is None:
            if self._failure is not None:
                raise EngineUnavailable(self._failure)
            try:
                self._reader = self._loader()
            except EngineUnavailable as exc:
                self._failure = exc.message
                raise
        return self._reader

    def _read(self, data: bytes, today: date) -> DocumentReading:
        reader = self._load()
        # decode_frame refuses non-JPEG/PNG data and oversized images (400).
        return reader.read(decode_frame(data), today=today)

    async def warm_up(self) -> None:
        """Load the models now instead of on the first document."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._load)

    async def read(self, data: bytes, *, today: date) -> DocumentReading:
        """Read one photographed document side; pixels are dropped when this returns."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(self._read, data, today))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


__all__ = ["DocumentScanner"]
