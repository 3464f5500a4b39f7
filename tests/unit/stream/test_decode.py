"""The age CLI decryptor: the identity reaches age as /dev/fd/N, and age gets no secrets in its environment."""

from __future__ import annotations

import io
import shutil
import sys

from restorable.stream import decode_stream, encode_stream, generate_identity


def test_age_gets_its_identity_in_memory_and_a_clean_environment(tmp_path, monkeypatch):
    real_age = shutil.which("age")
    assert real_age, "install age (apt-get install age)"
    seen = tmp_path / "seen.txt"
    wrapper = tmp_path / "bin" / "age"
    wrapper.parent.mkdir()
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import os, sys\n"
        f"with open({str(seen)!r}, 'w') as fh:\n"
        "    fh.write(repr(sys.argv) + '\\n' + repr(dict(os.environ)))\n"
        f"os.execv({real_age!r}, [{real_age!r}, *sys.argv[1:]])\n"
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("AIRFLOW_CONN_RESTORABLE_AGE", "planted-identity-conn")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "planted-aws-secret")

    identity, recipient = generate_identity()
    stored = io.BytesIO()
    encode_stream(io.BytesIO(b"plain dump bytes" * 1000), stored, recipients=[recipient])
    out = io.BytesIO()
    decode_stream(io.BytesIO(stored.getvalue()), out, identity=identity, use_age_cli=True)

    assert out.getvalue() == b"plain dump bytes" * 1000
    argv, env = seen.read_text().split("\n", 1)
    assert "/dev/fd/" in argv and identity not in argv
    assert "planted" not in env and "AIRFLOW_CONN" not in env and identity not in env
    assert list((tmp_path / "tmp").iterdir()) == []
