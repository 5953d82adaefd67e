"""The golden SDK test in Python, through the generated bindings: the same photo
and expectations as bindings/tests/golden.rs and the Kotlin test.

Needs FRUITS_SDK_FIXTURE (a `fruits emulate` working directory) and the generated
module `fruits_ffi` with its library on PYTHONPATH (bindings/tests/run.sh sets both).
"""

import configparser
import os
import shutil
import threading
from pathlib import Path

import pytest

import fruits_ffi as sdk

REPO = Path(__file__).resolve().parents[3]
FIXTURE = Path(os.environ["FRUITS_SDK_FIXTURE"])
UNREACHABLE = "http://127.0.0.1:9"  # nothing listens on the discard port


def golden():
    text = (REPO / "bindings/tests/golden.properties").read_text()
    parser = configparser.ConfigParser()
    parser.read_string("[golden]\n" + "\n".join(l for l in text.splitlines() if not l.startswith("#")))
    return parser["golden"]


GOLDEN = golden()
PHOTO = (REPO / GOLDEN["photo"]).read_bytes()
# A vegetable: a class the fixture's head never saw.
VEGETABLE = (REPO / GOLDEN["taught_photo"]).read_bytes()


def open_client(storage, upload_attempts):
    """A client over a copy of the emulator's phone-00 storage (projection v1 installed)."""
    shutil.copytree(FIXTURE / "phones/phone-00", storage)
    return reopen(storage, upload_attempts)


def reopen(storage, upload_attempts=1):
    """A client over `storage` as it is (the app started again)."""
    key = bytes.fromhex((FIXTURE / "publisher.key.pub").read_text().strip())
    return sdk.FruitsClient(
        sdk.FruitsConfig(
            storage_dir=str(storage),
            model=sdk.ModelSource.MANIFEST_PATH(path=str(REPO / GOLDEN["manifest"])),
            ingest_url=UNREACHABLE,
            device_id="phone-00",
            device_secret=b"not-registered",
            projection_public_key=key,
            upload_attempts=upload_attempts,
        )
    )


@pytest.fixture
def client(tmp_path):
    return open_client(tmp_path / "phone", upload_attempts=1)


def test_embeds_the_golden_photo(client):
    embedding = client.embed(PHOTO)
    assert len(embedding) == int(GOLDEN["embedding_len"])
    first = [float(v) for v in GOLDEN["embedding_first"].split(",")]
    assert embedding[: len(first)] == pytest.approx(first, abs=float(GOLDEN["tolerance"]))


def test_recognises_the_golden_photo_offline(client):
    result = client.recognize(PHOTO)
    assert result.label == GOLDEN["expected_label"], result
    assert 0.0 <= result.confidence <= 1.0
    assert result.top[0].label == GOLDEN["expected_label"]
    assert client.status().projection_version == 1


def test_a_corrupt_photo_raises_invalid_photo(client):
    with pytest.raises(sdk.FruitsError.InvalidPhoto) as caught:
        client.embed(PHOTO[: int(GOLDEN["corrupt_prefix_bytes"])])
    assert caught.value.detail


def test_a_wrong_length_embedding_raises_invalid_input(client):
    with pytest.raises(sdk.FruitsError.InvalidInput):
        client.enqueue([1.0, 2.0], "banana")


def test_an_unreachable_server_raises_network_and_keeps_the_queue(client):
    client.enqueue(client.embed(PHOTO), GOLDEN["expected_label"])
    with pytest.raises(sdk.FruitsError.Network):
        client.flush()
    assert client.status().queued == 1
    with pytest.raises(sdk.FruitsError.Network):
        client.sync_model()
    assert client.status().projection_version == 1


def test_embedding_and_queueing_do_not_wait_for_a_flush(tmp_path):
    # Four attempts back off for at least 0.25 + 0.5 + 1 s: embed and enqueue run meanwhile.
    client = open_client(tmp_path / "phone", upload_attempts=4)
    embedding = client.embed(PHOTO)
    client.enqueue(embedding, None)
    outcome = []
    flushing = threading.Thread(target=lambda: outcome.append(pytest.raises(sdk.FruitsError.Network, client.flush)))
    flushing.start()
    assert len(client.embed(PHOTO)) == int(GOLDEN["embedding_len"])
    client.enqueue(embedding, "banana")
    assert client.status().queued == 2
    assert flushing.is_alive(), "the flush was still backing off"
    flushing.join()
    assert outcome, "the flush raised Network"


def test_cosine_similarity_and_its_error():
    assert sdk.cosine_similarity([1.0, 0.0], [2.0, 0.0]) == pytest.approx(1.0)
    with pytest.raises(sdk.FruitsError.InvalidInput):
        sdk.cosine_similarity([1.0], [1.0, 2.0])


def never_synced(storage):
    """A client on a new device: no projection installed, nothing taught."""
    return sdk.FruitsClient(
        sdk.FruitsConfig(
            storage_dir=str(storage),
            model=sdk.ModelSource.MANIFEST_PATH(path=str(REPO / GOLDEN["manifest"])),
            ingest_url=UNREACHABLE,
            device_id="phone-00",
            device_secret=b"not-registered",
            projection_public_key=bytes(32),
            upload_attempts=1,
        )
    )


def test_recognition_before_any_sync_raises_not_ready(tmp_path):
    fresh = never_synced(tmp_path / "fresh")
    with pytest.raises(sdk.FruitsError.NotReady):
        fresh.recognize(PHOTO)
    assert fresh.status().projection_version is None


def test_a_taught_class_is_recognised_kept_across_restarts_and_forgotten(client, tmp_path):
    label = GOLDEN["taught_label"]
    with pytest.raises(sdk.FruitsError.InvalidInput):
        client.teach("", VEGETABLE)
    assert [client.teach(label, VEGETABLE) for _ in range(3)] == [1, 2, 3]
    assert client.taught_classes() == [sdk.TaughtClass(label=label, examples=3)]
    result = client.recognize(VEGETABLE)
    assert (result.label, result.taught) == (label, True), result
    assert client.recognize(PHOTO).label == GOLDEN["expected_label"], "the published classes still answer"
    assert reopen(tmp_path / "phone").taught_classes() == [sdk.TaughtClass(label=label, examples=3)]
    assert client.forget(label) and not client.forget(label)
    assert client.recognize(VEGETABLE).label != label
    assert client.taught_classes() == []


def test_before_any_sync_only_taught_classes_answer(tmp_path):
    fresh = never_synced(tmp_path / "fresh")
    fresh.teach(GOLDEN["taught_label"], VEGETABLE)
    result = fresh.recognize(VEGETABLE)
    assert (result.label, result.taught) == (GOLDEN["taught_label"], True), result
    assert fresh.recognize(PHOTO).label is None, "a pineapple is nothing it was taught"
