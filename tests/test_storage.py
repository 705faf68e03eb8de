"""Storage roots: paths made absolute, object-store URIs kept, files read and written through pyarrow."""


import pytest

from anomclr_ray.infra.storage import Storage


def test_a_relative_path_becomes_absolute_and_local(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = Storage.at("runs")
    assert root.uri == str(tmp_path / "runs") and root.is_local
    assert Storage.at(f"file://{tmp_path}/runs") == root
    assert root.child("study", "train").uri == str(tmp_path / "runs" / "study" / "train")
    assert root.uri_of("mlartifacts") == (tmp_path / "runs" / "mlartifacts").as_uri()


def test_files_round_trip_and_a_missing_one_reads_as_none(tmp_path):
    root = Storage.at(tmp_path / "runs")
    assert root.read_text("study.mlflow_parent") is None
    root.write_text("abc123", "study.mlflow_parent")
    assert root.read_text("study.mlflow_parent") == "abc123"
    assert (tmp_path / "runs" / "study.mlflow_parent").read_text() == "abc123"
    root.check_writable()


def test_object_store_uris_keep_their_scheme_and_paths_drop_it():
    root = Storage.at("s3://bucket/prefix/")
    assert root.uri == "s3://bucket/prefix" and not root.is_local
    assert root.child("study").uri == "s3://bucket/prefix/study"
    assert root.uri_of("mlartifacts") == "s3://bucket/prefix/mlartifacts"
    assert root.path("study") == "bucket/prefix/study"  # what Ray wants next to storage_filesystem


@pytest.mark.parametrize("bad", ["ftp://host/x", "s3://", "hdfs://nn/x"])
def test_an_unknown_scheme_or_empty_bucket_is_refused(bad):
    with pytest.raises(ValueError, match="expected a path or s3://bucket/prefix, gs://bucket/prefix"):
        Storage.at(bad)


def test_an_unwritable_root_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValueError, match=f"storage {blocker}/runs is not writable"):
        Storage.at(blocker / "runs").check_writable()
