"""The S3 fault proxy itself: transparent when idle, and each fault kind as a client sees it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tests.support.faultproxy import (
    INTERNAL_ERROR,
    SLOW_DOWN,
    FaultProxy,
    FaultRule,
    classify,
)

MiB = 1 << 20


def client(url: str, attempts: int = 1, read_timeout: float = 30) -> Any:
    config = Config(
        retries={"mode": "standard", "total_max_attempts": attempts},
        read_timeout=read_timeout,
        connect_timeout=5,
    )
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )


@pytest.fixture
def proxy(moto_server: str) -> Iterator[FaultProxy]:
    with FaultProxy(moto_server) as p:
        yield p


@pytest.fixture
def bucket(moto_server: str) -> str:
    name = f"proxy-{uuid.uuid4().hex[:12]}"
    client(moto_server).create_bucket(Bucket=name)
    return name


def _multipart(s3: Any, bucket: str, key: str, parts: list[bytes]) -> str:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    done = []
    for n, data in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=data)
        done.append({"PartNumber": n, "ETag": r["ETag"]})
    s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    return str(upload_id)


@pytest.mark.parametrize(
    ("method", "target", "headers", "operation"),
    [
        ("POST", "/b/k?uploads", {}, "CreateMultipartUpload"),
        ("PUT", "/b/k?partNumber=2&uploadId=u", {}, "UploadPart"),
        ("PUT", "/b/k?partNumber=2&uploadId=u", {"x-amz-copy-source": "x"}, "UploadPartCopy"),
        ("POST", "/b/k?uploadId=u", {}, "CompleteMultipartUpload"),
        ("DELETE", "/b/k?uploadId=u", {}, "AbortMultipartUpload"),
        ("GET", "/b/k?uploadId=u", {}, "ListParts"),
        ("GET", "/b?uploads&prefix=p", {}, "ListMultipartUploads"),
        ("POST", "/b/a/k.tar.age?restore", {}, "RestoreObject"),
        ("HEAD", "/b/k", {}, "HeadObject"),
        ("GET", "/b/k", {"range": "bytes=0-9"}, "GetObject"),
        ("GET", "/b?list-type=2&prefix=x", {}, "ListObjectsV2"),
        ("PUT", "/b", {}, "CreateBucket"),
        ("PUT", "/b/k", {}, "PutObject"),
        ("DELETE", "/b/k", {}, "DeleteObject"),
        ("POST", "/moto-api/state-manager/set-transition", {}, "MotoApi"),
    ],
)
def test_requests_are_classified_as_s3_operations(
    method: str, target: str, headers: dict[str, str], operation: str
) -> None:
    assert classify(method, target, headers).operation == operation


def test_classification_keeps_key_and_range() -> None:
    r = classify("GET", "/bkt/host/c%2B1.tar.age", {"range": "bytes=0-1"})
    assert (r.bucket, r.key, r.ranged) == ("bkt", "host/c+1.tar.age", True)


def test_rule_selection_skip_every_times() -> None:
    rule = FaultRule("UploadPart", "error", skip=1, every=2, times=2)
    assert [rule._select() for _ in range(7)] == [False, False, True, False, True, False, False]
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultRule(None, "explode")


def test_without_rules_the_proxy_is_transparent(proxy: FaultProxy, bucket: str) -> None:
    s3 = client(proxy.url)
    parts = [bytes([n]) * (3 * MiB) for n in range(2)] + [b"tail"]
    _multipart(s3, bucket, "big", parts)
    assert s3.head_object(Bucket=bucket, Key="big")["ContentLength"] == 6 * MiB + 4
    got = s3.get_object(Bucket=bucket, Key="big", Range=f"bytes={3 * MiB - 2}-{3 * MiB + 1}")
    assert got["Body"].read() == b"\0\0\1\1"
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == b"".join(parts)
    assert proxy.requests("UploadPart") == 3 and proxy.requests("GetObject") == 2
    assert proxy.injected() == 0


def test_an_error_answers_the_nth_request_as_s3_does(proxy: FaultProxy, bucket: str) -> None:
    s3 = client(proxy.url)
    rule = proxy.fail("PutObject", SLOW_DOWN, skip=1)
    s3.put_object(Bucket=bucket, Key="a", Body=b"1")
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket=bucket, Key="b", Body=b"2")
    assert caught.value.response["Error"]["Code"] == "SlowDown"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    s3.put_object(Bucket=bucket, Key="c", Body=b"3")
    assert rule.fired == 1 and proxy.injected("PutObject", "error") == 1
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["a", "c"]  # the server never saw "b"


def test_botocore_retries_through_every_other_error(proxy: FaultProxy, bucket: str) -> None:
    proxy.fail("HeadBucket", INTERNAL_ERROR, every=2, times=None)
    s3 = client(proxy.url, attempts=3)
    for _ in range(3):
        s3.head_bucket(Bucket=bucket)
    assert proxy.requests("HeadBucket") == 5  # 1st ok, 2nd fails and is retried, ...
    assert proxy.injected("HeadBucket") == 2


def test_a_reset_request_never_reaches_the_server(proxy: FaultProxy, bucket: str) -> None:
    s3 = client(proxy.url)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    proxy.reset_connection("UploadPart", after_bytes=MiB)
    with pytest.raises(BotoCoreError):
        s3.upload_part(
            Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"x" * (4 * MiB)
        )
    assert s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id).get("Parts", []) == []


def test_a_dropped_answer_was_still_acted_on(proxy: FaultProxy, bucket: str) -> None:
    s3 = client(proxy.url)
    rule = proxy.drop_answer("PutObject")
    with pytest.raises(BotoCoreError):
        s3.put_object(Bucket=bucket, Key="k", Body=b"done anyway")
    assert rule.fired == 1
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"done anyway"


def test_a_stall_holds_the_answer_until_released(proxy: FaultProxy, bucket: str) -> None:
    s3 = client(proxy.url)
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    rule = proxy.stall("HeadObject")
    result: list[int] = []
    worker = threading.Thread(
        target=lambda: result.append(s3.head_object(Bucket=bucket, Key="k")["ContentLength"])
    )
    worker.start()
    rule.wait_held()
    assert worker.is_alive() and result == []
    rule.release()
    worker.join(30)
    assert result == [1]


def test_a_stall_longer_than_the_read_timeout_times_the_client_out(
    proxy: FaultProxy, bucket: str
) -> None:
    proxy.stall("ListObjectsV2", phase="request")
    with pytest.raises(BotoCoreError, match="Read timeout"):
        client(proxy.url, read_timeout=0.5).list_objects_v2(Bucket=bucket)


def test_a_cut_answer_fails_the_read(proxy: FaultProxy, bucket: str) -> None:
    s3 = client(proxy.url)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x" * MiB)
    proxy.cut("GetObject", after_bytes=1000, ranged=True)
    assert len(s3.get_object(Bucket=bucket, Key="k")["Body"].read()) == MiB  # not ranged
    body = s3.get_object(Bucket=bucket, Key="k", Range="bytes=0-99999")["Body"]
    with pytest.raises(BotoCoreError):
        body.read()


def test_held_restores_stay_ongoing_until_released(proxy: FaultProxy, bucket: str) -> None:
    s3 = client(proxy.url)
    s3.put_object(Bucket=bucket, Key="k", Body=b"cold", StorageClass="DEEP_ARCHIVE")
    proxy.hold_restores()
    request = {"Days": 1, "GlacierJobParameters": {"Tier": "Bulk"}}
    r = s3.restore_object(Bucket=bucket, Key="k", RestoreRequest=request)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert s3.head_object(Bucket=bucket, Key="k")["Restore"] == 'ongoing-request="true"'
    with pytest.raises(ClientError, match="InvalidObjectState"):
        s3.get_object(Bucket=bucket, Key="k")
    with pytest.raises(ClientError, match="RestoreAlreadyInProgress"):
        s3.restore_object(Bucket=bucket, Key="k", RestoreRequest=request)
    proxy.release_restores()
    assert 'ongoing-request="false"' in s3.head_object(Bucket=bucket, Key="k")["Restore"]
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"cold"
