"""What every portal service call needs besides its database session."""

from dataclasses import dataclass

from companion.app.accounts.secrets import Passwords
from companion.app.core.config import Settings
from companion.app.core.keyring import Keyring
from companion.app.portal.config import PortalSettings


@dataclass
class PortalContext:
    """The companion's settings, the portal's settings, the password hasher and the handset keyring."""

    settings: Settings
    ps: PortalSettings
    passwords: Passwords
    keyring: Keyring

    @classmethod
    def build(cls, settings: Settings, ps: PortalSettings, keyring: Keyring) -> "PortalContext":
        """A context for one app."""
        return cls(settings, ps, Passwords(ps), keyring)
