"""The backup stream: one pass of sha256 → zstd → age → sha256, and its reverse."""

from restorable.stream.decode import decode_stream
from restorable.stream.digests import HashingReader, HashingWriter, StreamDigests
from restorable.stream.encode import encode_stream
from restorable.stream.keys import generate_identity, parse_recipients, recipient_of

__all__ = [
    "HashingReader",
    "HashingWriter",
    "StreamDigests",
    "decode_stream",
    "encode_stream",
    "generate_identity",
    "parse_recipients",
    "recipient_of",
]
