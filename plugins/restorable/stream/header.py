"""Read an age file's header without a key: is this ciphertext, and to how many recipients?

An age v1 file starts with ``age-encryption.org/v1``, then one stanza per recipient
(``-> X25519 <ephemeral share>`` and a body line), then ``--- <mac>`` and the payload. An X25519
stanza does not name its recipient (only the holder of an identity can tell it is theirs), so what
can be checked without a key is: the magic line, the stanza types, and the count of X25519 stanzas
against the recipients the manifest recorded. rage (pyrage) adds a random "grease" stanza
(``-> <random>-grease ...``) to keep parsers honest; those are counted apart and ignored.

The header's MAC is not checked here (it needs the file key): a deep verify or a restore does that.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAGIC = b"age-encryption.org/v1\n"
#: Enough for the header of a file with many recipients (each X25519 stanza is ~100 bytes).
HEADER_READ = 16 * 1024


@dataclass(frozen=True)
class AgeHeader:
    """What the header of an age file shows; ``problem`` is set when the bytes are not an age file."""

    is_age: bool
    x25519: int = 0
    grease: int = 0
    #: Stanza types other than X25519 and grease (scrypt is a passphrase, others need plugins).
    other: tuple[str, ...] = field(default_factory=tuple)
    problem: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"age": self.is_age, "x25519_stanzas": self.x25519, "other_stanzas": list(self.other)}


def read_header(head: bytes) -> AgeHeader:
    """Parse the header at the start of ``head`` (the object's first bytes, ``HEADER_READ`` is plenty)."""
    if not head.startswith(MAGIC):
        shown = head[:16].decode("ascii", "replace").encode("unicode_escape").decode()
        return AgeHeader(False, problem=f"does not start with the age header (first bytes: {shown!r})")
    x25519 = grease = 0
    other: list[str] = []
    lines = head[len(MAGIC) :].split(b"\n")
    for line in lines[:-1]:  # the last piece may be cut mid-line by the read size
        if line.startswith(b"--- "):
            return AgeHeader(True, x25519, grease, tuple(other))
        if not line.startswith(b"-> "):
            continue  # a stanza's body line
        args = line[3:].split(b" ")
        kind = args[0].decode("ascii", "replace")
        if kind == "X25519":
            x25519 += 1
        elif kind.endswith("-grease"):
            grease += 1
        else:
            other.append(kind)
    unended = "has an age header that does not end within its first 16 KiB"
    return AgeHeader(True, x25519, grease, tuple(other), problem=unended)


def header_problems(key: str, head: bytes, expected_recipients: int | None) -> list[str]:
    """Why the object at ``key`` is not age ciphertext to ``expected_recipients`` X25519 keys (none: it is)."""
    header = read_header(head)
    if not header.is_age or header.problem:
        return [f"stored object {key} is not age ciphertext: it {header.problem}"]
    problems = []
    if header.other:
        kinds = ", ".join(header.other)
        problems.append(f"stored object {key} has age stanzas of type {kinds}; Restorable writes X25519 only")
    if expected_recipients is not None and header.x25519 != expected_recipients:
        problems.append(
            f"stored object {key} is encrypted to {header.x25519} X25519 recipient(s), "
            f"the manifest records {expected_recipients}"
        )
    return problems
