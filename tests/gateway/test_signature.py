import json

from gateway.line.signature import sign, verify

SECRET = "test-channel-secret"
BODY = json.dumps({"destination": "Uxx", "events": [{"type": "message"}]}, ensure_ascii=False).encode()


def test_valid_signature_accepted():
    assert verify(BODY, sign(BODY, SECRET), SECRET)


def test_known_vector():
    # Independent computation: base64(HMAC-SHA256(secret, body)).
    import base64
    import hashlib
    import hmac

    expected = base64.b64encode(hmac.new(b"k", b"body", hashlib.sha256).digest()).decode()
    assert sign(b"body", "k") == expected
    assert sign("body", b"k") == expected


def test_wrong_signature_rejected():
    assert not verify(BODY, sign(BODY, "another-secret"), SECRET)
    assert not verify(BODY, "not base64 at all", SECRET)


def test_missing_signature_rejected():
    assert not verify(BODY, None, SECRET)
    assert not verify(BODY, "", SECRET)


def test_missing_secret_rejected():
    assert not verify(BODY, sign(BODY, ""), "")


def test_body_changed_by_one_byte_rejected():
    signature = sign(BODY, SECRET)
    tampered = bytearray(BODY)
    tampered[-2] ^= 0x01
    assert not verify(bytes(tampered), signature, SECRET)


def test_japanese_body_signed_over_utf8_bytes():
    body = json.dumps({"text": "卵が入っていません"}, ensure_ascii=False).encode("utf-8")
    assert verify(body, sign(body, SECRET), SECRET)
    assert verify(body, sign(body.decode("utf-8"), SECRET), SECRET)


def test_non_ascii_signature_rejected():
    assert not verify(BODY, "署名", SECRET)
