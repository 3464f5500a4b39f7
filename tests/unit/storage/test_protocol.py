"""S3Store provides every operation of the Store protocol, with compatible parameters."""

from __future__ import annotations

import inspect

from restorable.storage import S3Store
from restorable.storage.protocol import Store


def _protocol_methods() -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(Store).items()
        if callable(member) and not name.startswith("_")
    }


def test_s3_store_is_a_store() -> None:
    store = S3Store(client=object(), bucket="b")
    assert isinstance(store, Store)
    assert not isinstance(object(), Store)


def test_every_protocol_method_has_a_compatible_signature_on_s3_store() -> None:
    methods = _protocol_methods()
    assert {"put_bytes", "multipart_upload", "delete_all_versions", "copy_storage_class"} <= set(methods)
    for name, wanted in methods.items():
        found = inspect.signature(getattr(S3Store, name))
        for param in wanted.parameters.values():
            if param.kind is param.VAR_KEYWORD:
                continue
            assert param.name in found.parameters, f"S3Store.{name} lacks parameter {param.name}"
            have = found.parameters[param.name]
            assert have.kind == param.kind, f"S3Store.{name}({param.name}) is {have.kind}, protocol says {param.kind}"
            assert (have.default is inspect.Parameter.empty) == (param.default is inspect.Parameter.empty), (
                f"S3Store.{name}({param.name}): default differs from the protocol"
            )
