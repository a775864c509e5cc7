"""The master keys and the per-handset purpose keys derived from decrypted secrets (cached in memory)."""

from dataclasses import dataclass

from companion.app.core import keys
from companion.app.core.config import Settings


@dataclass(frozen=True)
class PurposeKeys:
    """The three keys a handset derives from its secret."""

    sync: bytes
    unlock: bytes
    tech: bytes


class Keyring:
    """Encrypts new secrets under the current master key; decrypts with whichever key id a row names."""

    def __init__(self, settings: Settings):
        self.current, self.masters = settings.master_keys()
        self._cache: dict[tuple[int, str, bytes], PurposeKeys] = {}

    def seal(self, device_id: int, secret: bytes) -> tuple[str, bytes, bytes]:
        """(key id, nonce, ciphertext) of secret under the current master key."""
        nonce, ct = keys.encrypt_secret(secret, device_id, self.current, self.masters[self.current])
        return self.current, nonce, ct

    def open(self, device_id: int, kid: str, nonce: bytes, ct: bytes) -> bytes:
        """The secret; KeyError when the key id is unknown, InvalidTag when the row was tampered with."""
        return keys.decrypt_secret(nonce, ct, device_id, kid, self.masters[kid])

    def purpose(self, device_id: int, kid: str, nonce: bytes, ct: bytes) -> PurposeKeys:
        """The handset's purpose keys (derived once per process and kept)."""
        tag = (device_id, kid, bytes(nonce))
        pk = self._cache.get(tag)
        if pk is None:
            secret = self.open(device_id, kid, nonce, ct)
            pk = PurposeKeys(keys.derive(secret, keys.LABEL_SYNC), keys.derive(secret, keys.LABEL_UNLOCK),
                             keys.derive(secret, keys.LABEL_TECH))
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[tag] = pk
        return pk


def check_stored_key_ids(keyring: Keyring, stored: set[str]) -> None:
    """Refuse (ValueError) when secrets in the database are sealed under key ids MASTER_KEYS does not hold: a
    companion running so would refuse every sync of those handsets and issue no codes or tokens for them."""
    missing = sorted(stored - set(keyring.masters))
    if missing:
        raise ValueError("MASTER_KEYS lacks the key id(s) " + ", ".join(repr(k) for k in missing)
                         + " that stored handset secrets are sealed under (keep the old key until "
                         + "rotate-keys has re-encrypted them)")
