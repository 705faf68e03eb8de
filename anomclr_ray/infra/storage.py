"""Where a study keeps what other nodes and later restores read: Tune and Train state, checkpoints,
per-trial progress, MLflow artifacts (with a local tracking store) and the parent-run record.

A location is a path (node-local, or on a filesystem every node mounts, e.g. NFS) or an object-store
URI (`s3://bucket/prefix`, `gs://bucket/prefix`). Files are reached through pyarrow filesystems, as
Ray Train and Tune reach them; an S3-compatible store (MinIO, moto, Ceph) is chosen by the standard
`AWS_ENDPOINT_URL` environment variable, credentials come from the usual AWS chain, never from here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, PlaceError

OBJECT_STORES = ("s3", "gs", "gcs")
STORAGE_ENV = "ANOMCLR_STORAGE"  # the cluster YAMLs set it on the head; --storage's default
DEFAULT_STORAGE = "runs"  # a study's storage root without --storage or $ANOMCLR_STORAGE


@dataclass(frozen=True)
class Storage:
    """A storage root: `uri` is an absolute path or `scheme://bucket/prefix`."""

    uri: str

    @classmethod
    def at(cls, location: str | Path) -> Storage:
        """The root at `location`; a relative path is made absolute (Ray runs trials elsewhere)."""
        text = str(location)
        scheme, sep, rest = text.partition("://")
        if not sep:
            return cls(str(Path(text).expanduser().resolve()))
        if scheme == "file":
            return cls(str(Path(rest).resolve()))
        if scheme not in OBJECT_STORES or not rest.strip("/"):
            raise ConfigError(f"storage {text!r}: expected a path or {', '.join(s + '://bucket/prefix' for s in OBJECT_STORES[:2])}")
        return cls(f"{scheme}://{rest.rstrip('/')}")

    @property
    def is_local(self) -> bool:
        """A path on this node's filesystem (shared with other nodes only if they mount it too)."""
        return "://" not in self.uri

    @functools.cached_property
    def filesystem(self):
        """The pyarrow filesystem (Ray's `storage_filesystem`); S3 asks the store for the bucket's region."""
        import pyarrow
        import pyarrow.fs

        try:
            return pyarrow.fs.FileSystem.from_uri(self.uri)[0]
        except (OSError, pyarrow.ArrowException) as err:  # pyarrow's own message says what is missing
            raise PlaceError(f"storage {self.uri}: cannot be opened: {err}") from None

    def path(self, *parts: str) -> str:
        """A path inside the filesystem (what Ray wants next to `storage_filesystem`): no scheme."""
        return "/".join([self.uri.partition("://")[2] or self.uri, *parts])

    def child(self, *parts: str) -> Storage:
        return Storage(str(Path(self.uri, *parts)) if self.is_local else "/".join([self.uri, *parts]))

    def uri_of(self, *parts: str) -> str:
        """`parts` under the root, as a URI other tools take (MLflow's artifact location, a file URI
        for a path)."""
        if self.is_local:
            return Path(self.uri, *parts).as_uri()
        return "/".join([self.uri, *parts])

    def read_text(self, *parts: str) -> str | None:
        """The file's text, or None when there is none."""
        import pyarrow.fs

        path = self.path(*parts)
        if self.filesystem.get_file_info(path).type != pyarrow.fs.FileType.File:
            return None
        with self.filesystem.open_input_stream(path) as f:
            return f.read().decode()

    def write_text(self, text: str, *parts: str) -> None:
        path = self.path(*parts)
        self.filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
        with self.filesystem.open_output_stream(path) as f:
            f.write(text.encode())

    def check_writable(self) -> None:
        """Fail fast, with the location in the message, when the root cannot be written."""
        import pyarrow

        try:
            self.write_text("ok", ".anomclr_write_check")
            self.filesystem.delete_file(self.path(".anomclr_write_check"))
        except (OSError, pyarrow.ArrowException) as err:  # denied, missing bucket, unreachable store
            raise PlaceError(f"storage {self.uri} is not writable: {type(err).__name__}: {err}") from None
