"""age X25519 keys: generate, parse and validate them, with errors that name the bad key.

Only X25519 recipients (``age1...``) are accepted: they are what ``age -d -i key.txt``
decrypts by hand during an incident, without plugins, passphrases or SSH agents.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyrage import x25519

from restorable.exceptions import ConfigError

_RECIPIENT_PREFIX = "age1"
_IDENTITY_PREFIX = "AGE-SECRET-KEY-1"


def generate_identity() -> tuple[str, str]:
    """A new key pair: ``(secret identity "AGE-SECRET-KEY-1...", public recipient "age1...")``."""
    identity = x25519.Identity.generate()
    return str(identity), str(identity.to_public())


def recipient_of(identity: str) -> str:
    """The public recipient (``age1...``) that belongs to a secret identity."""
    return str(parse_identity(identity).to_public())


def parse_recipients(recipients: Sequence[str]) -> list[x25519.Recipient]:
    """Parse public keys; raise ConfigError naming the first one that is not a valid X25519 key."""
    if isinstance(recipients, str):
        recipients = [recipients]
    if not recipients:
        raise ConfigError(
            "no encryption recipient given",
            hint="List at least one age public key (age1...) under encryption.recipients",
        )
    parsed = []
    for text in recipients:
        value = text.strip() if isinstance(text, str) else text
        if isinstance(value, str) and value.upper().startswith("AGE-SECRET-KEY-"):
            raise ConfigError(
                "an encryption recipient is a secret identity (AGE-SECRET-KEY-...), not a public key",
                hint="Put only the public key (age1...) in the config, and rotate this secret: it was exposed",
            )
        if not isinstance(value, str) or not value.startswith(_RECIPIENT_PREFIX):
            raise ConfigError(
                f"encryption recipient {_shown(text)} is not an age X25519 public key",
                hint="Recipients look like age1... (62 characters); generate a pair with `age-keygen`",
            )
        try:
            parsed.append(x25519.Recipient.from_str(value))
        except Exception as exc:  # pyrage.RecipientError and friends
            raise ConfigError(
                f"encryption recipient {_shown(text)} is not a valid age X25519 public key: {exc}",
                hint="Copy the whole `Public key: age1...` line that age-keygen printed",
            ) from None
    return parsed


def parse_identity(identity: str) -> x25519.Identity:
    """Parse a secret identity; a key file's text (comments, blank lines) is accepted too.

    The secret itself never appears in an error message.
    """
    lines = [line.strip() for line in str(identity).splitlines()]
    keys = [line for line in lines if line and not line.startswith("#")]
    if len(keys) != 1 or not keys[0].upper().startswith(_IDENTITY_PREFIX):
        raise ConfigError(
            "the age identity given is not one AGE-SECRET-KEY-1... line",
            hint="Pass the secret key (or the text of an age-keygen key file holding exactly one key)",
        )
    try:
        return x25519.Identity.from_str(keys[0].upper())
    except Exception:
        raise ConfigError(
            "the age identity given is malformed (bad length or checksum)",
            hint="Copy the whole AGE-SECRET-KEY-1... line from the key file",
        ) from None


def _shown(text: object) -> str:
    """A recipient for an error message: public keys are not secret, but keep it short."""
    s = repr(text)
    return s if len(s) <= 200 else s[:197] + "...'"
