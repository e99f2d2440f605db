"""Azure Blob container datastores, through ``azure-storage-blob`` (the ``blob`` extra).

The account key or SAS token arrives as a :class:`~runyard.secrets.Secret` and is handed only
to the Azure client; messages built here use status codes and field names, never the text of
an Azure error (which can carry a SAS URL). Each uploaded blob records the sha256 of its bytes
in its metadata (``runyard_sha256``), so a re-upload compares sizes and hashes from one listing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from runyard.datastores.base import DatastoreBackend, RemoteEntry, sha256_file
from runyard.errors import InvalidParameter, NotSupported, RunyardError

if TYPE_CHECKING:
    from runyard.secrets import Secret

__all__ = ["BlobBackend", "account_url", "validate"]

SHA_KEY = "runyard_sha256"


def _sdk() -> Any:
    try:
        from azure.storage import blob  # noqa: PLC0415
    except ImportError:
        raise NotSupported("Azure Blob datastores need azure-storage-blob: "
                           "pip install 'runyard[blob]'") from None
    return blob


def account_url(account_name: str, protocol: str | None, endpoint: str | None) -> str:
    """The blob service URL: ``endpoint`` may be a full URL (an emulator such as Azurite:
    ``http://127.0.0.1:10000/devstoreaccount1``) or a DNS suffix (default ``core.windows.net``)."""
    if endpoint and "://" in endpoint:
        return endpoint.rstrip("/")
    return f"{protocol or 'https'}://{account_name}.blob.{endpoint or 'core.windows.net'}"


def _credential(account_name: str, account_key: Secret | None, sas_token: Secret | None) -> Any:
    if account_key is not None:
        return {"account_name": account_name, "account_key": account_key.reveal()}
    if sas_token is not None:
        return sas_token.reveal().lstrip("?")
    return None


def _service(url: str, account_name: str, account_key: Secret | None,
             sas_token: Secret | None, **kw: Any) -> Any:
    return _sdk().BlobServiceClient(account_url=url, credential=_credential(
        account_name, account_key, sas_token), **kw)


def validate(*, account_name: str, container_name: str, url: str, account_key: Secret | None,
             sas_token: Secret | None, create_if_not_exists: bool) -> None:
    """Check the credentials and the container for real (creating it if asked).

    Raises :class:`InvalidParameter` naming ``account_key``/``sas_token`` (refused),
    ``container_name`` (missing) or ``endpoint`` (unreachable).
    """
    from azure.core.exceptions import (  # noqa: PLC0415
        ClientAuthenticationError,
        HttpResponseError,
        ResourceExistsError,
        ServiceRequestError,
    )

    cred_field = "account_key" if account_key is not None else "sas_token"
    try:
        svc = _service(url, account_name, account_key, sas_token, retry_total=0)
        container = svc.get_container_client(container_name)
        if container.exists():
            return
        if not create_if_not_exists:
            raise InvalidParameter("container_name", f"container {container_name!r} does not "
                                   f"exist in storage account {account_name!r}; create it or "
                                   "pass create_if_not_exists=True")
        try:
            container.create_container()
        except ResourceExistsError:
            return
    except ClientAuthenticationError:
        raise InvalidParameter(cred_field, f"the storage account {account_name!r} refused the "
                               f"credentials (Forbidden); check {cred_field}") from None
    except HttpResponseError as exc:
        if exc.status_code == 403:
            raise InvalidParameter(cred_field, f"the storage account {account_name!r} refused "
                                   f"the credentials (Forbidden); check {cred_field}") from None
        raise RunyardError(f"the storage account {account_name!r} answered HTTP "
                           f"{exc.status_code} while checking container "
                           f"{container_name!r}") from None
    except ServiceRequestError:
        raise InvalidParameter("endpoint", f"cannot reach the blob service of "
                               f"{account_name!r} at {url}; check account_name and "
                               "endpoint") from None
    except (ValueError, TypeError):
        raise InvalidParameter(cred_field, f"{cred_field} is not well formed (an account key "
                               "is base64 text)") from None


class BlobBackend(DatastoreBackend):
    """Blobs of one container (names are blob names; folders are ``/``-separated prefixes)."""

    workers = 16

    def __init__(self, name: str, *, account_name: str, container_name: str, url: str,
                 account_key: Secret | None, sas_token: Secret | None) -> None:
        super().__init__(name)
        self.account_name = account_name
        self.container_name = container_name
        self.url = url
        svc = _service(url, account_name, account_key, sas_token,
                       max_single_put_size=64 << 20)
        self._container = svc.get_container_client(container_name)

    def __repr__(self) -> str:
        return f"BlobBackend({self.name!r}, container={self.container_name!r})"

    def describe(self) -> str:
        return f"datastore {self.name!r} (container {self.container_name!r})"

    def listing(self, prefix: str) -> dict[str, RemoteEntry]:
        start = f"{prefix}/" if prefix else None
        out: dict[str, RemoteEntry] = {}
        for b in self._container.list_blobs(name_starts_with=start, include=["metadata"]):
            out[b.name] = RemoteEntry(int(b.size), (b.metadata or {}).get(SHA_KEY))
        if prefix and not out:  # the prefix may name one blob
            blob = self._container.get_blob_client(prefix)
            if blob.exists():
                props = blob.get_blob_properties()
                out[prefix] = RemoteEntry(int(props.size), (props.metadata or {}).get(SHA_KEY))
        return out

    def remote_sha256(self, name: str) -> str:
        import hashlib  # noqa: PLC0415

        h = hashlib.sha256()
        for chunk in self._container.download_blob(name).chunks():
            h.update(chunk)
        return h.hexdigest()

    def put(self, local: Path, name: str, sha256: str) -> None:
        with open(local, "rb") as fh:
            self._container.upload_blob(name, fh, overwrite=True,
                                        metadata={SHA_KEY: sha256 or sha256_file(local)})

    def get(self, name: str, local: Path) -> None:
        with open(local, "wb") as fh:
            self._container.download_blob(name).readinto(fh)
