"""``azureml.core.authentication``: v1's authentication classes.

runyard has no Azure login. An embedded workspace (a folder) needs no authentication, and no
team server exists yet to map these onto a token: a workspace opened with ``auth=...`` ignores
it and says so once on stderr. Secrets passed in (a service principal's password, a token
callback) are held privately and never appear in a repr, a log line or an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runyard.errors import NotSupported
from runyard.secrets import Secret

__all__ = ["AbstractAuthentication", "AzureCliAuthentication", "InteractiveLoginAuthentication",
           "MsiAuthentication", "ServicePrincipalAuthentication", "TokenAuthentication"]


class AbstractAuthentication:
    """Base of v1's authentication classes: accepted, ignored by embedded workspaces."""

    def __init__(self, cloud: str | None = None) -> None:
        self.cloud = cloud or "AzureCloud"

    def get_authentication_header(self) -> dict[str, str]:
        """v1 returned an Azure bearer header; runyard has no Azure login."""
        raise NotSupported(f"{type(self).__name__}.get_authentication_header: runyard does "
                           "not include Azure authentication (an embedded workspace needs "
                           "none)")

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        """v1 returned an Azure AD token; runyard has no Azure login."""
        raise NotSupported(f"{type(self).__name__}.get_token: runyard does not include Azure "
                           "authentication (an embedded workspace needs none)")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class InteractiveLoginAuthentication(AbstractAuthentication):
    """v1: browser / device-code login."""

    def __init__(self, force: bool = False, tenant_id: str | None = None,
                 cloud: str | None = None) -> None:
        super().__init__(cloud)
        self.force = force
        self.tenant_id = tenant_id


class AzureCliAuthentication(AbstractAuthentication):
    """v1: the Azure CLI's login."""


class MsiAuthentication(AbstractAuthentication):
    """v1: a managed identity of the Azure VM."""

    def __init__(self, cloud: str | None = None, identity_config: Any = None) -> None:
        super().__init__(cloud)
        self.identity_config = identity_config


class ServicePrincipalAuthentication(AbstractAuthentication):
    """v1: a service principal (tenant, id, password). The password is kept as a
    :class:`~runyard.secrets.Secret`: printing the object never shows it."""

    def __init__(self, tenant_id: str, service_principal_id: str,
                 service_principal_password: str, cloud: str = "AzureCloud",
                 _enable_caching: bool = True) -> None:
        super().__init__(cloud)
        self.tenant_id = tenant_id
        self.service_principal_id = service_principal_id
        self._password = Secret(str(service_principal_password))

    def __repr__(self) -> str:
        return (f"ServicePrincipalAuthentication(tenant_id={self.tenant_id!r}, "
                f"service_principal_id={self.service_principal_id!r}, "
                "service_principal_password='***')")


class TokenAuthentication(AbstractAuthentication):
    """v1: a callback ``get_token_for_audience(audience)`` returning a token."""

    def __init__(self, get_token_for_audience: Callable[..., Any],
                 cloud: str | None = None) -> None:
        super().__init__(cloud)
        self._get_token_for_audience = get_token_for_audience
