//! Packet encryption with Consul's `encrypt` key: AES-256-GCM over the whole
//! payload, with a version byte and a random 12-byte nonce in front.
//!
//! Packet layout: `[version]` then, for version 0, the plaintext payload;
//! for version 1, `[nonce: 12][ciphertext + 16-byte tag]`, with the version
//! byte as associated data. A keyring holds several keys: the primary one
//! encrypts, all of them are tried when decrypting, so a key can be rotated
//! (install everywhere, use, remove the old one) without a partition.

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;

use crate::error::{KeyError, PacketError};

/// Version byte of an unencrypted packet.
pub const VERSION_PLAIN: u8 = 0;
/// Version byte of an AES-256-GCM packet.
pub const VERSION_AES_GCM: u8 = 1;
/// Bytes added by encryption (version, nonce, tag).
pub const OVERHEAD: usize = 1 + 12 + 16;

/// Generates a new random key, base64-encoded (what `consul keygen` prints).
pub fn keygen() -> String {
    use aes_gcm::aead::rand_core::RngCore;
    let mut key = [0u8; 32];
    OsRng.fill_bytes(&mut key);
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// Decodes a base64 key and checks its length.
pub fn decode_key(key: &str) -> Result<[u8; 32], KeyError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key.trim())
        .map_err(|_| KeyError::Base64)?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| KeyError::Length(bytes.len()))
}

/// Most keys a keyring holds (a rotation needs two; the bound keeps keyring
/// answers within one datagram).
pub const MAX_KEYS: usize = 16;

/// Encodes a raw key in base64.
pub(crate) fn encode_key(key: &[u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(key)
}

struct Entry {
    key: [u8; 32],
    cipher: Aes256Gcm,
}

/// The set of keys a node accepts; the first one is the primary.
/// Empty means encryption is off.
#[derive(Default)]
pub struct Keyring {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring({} keys)", self.entries.len())
    }
}

impl Keyring {
    /// A keyring without keys (encryption off).
    pub fn none() -> Self {
        Self::default()
    }

    /// A keyring with one primary key given in base64.
    pub fn with_key(key: &str) -> Result<Self, KeyError> {
        let mut ring = Self::none();
        ring.install(key)?;
        Ok(ring)
    }

    /// Whether packets are encrypted.
    pub fn enabled(&self) -> bool {
        !self.entries.is_empty()
    }

    /// Adds a key for decryption (it becomes primary if it is the first).
    pub fn install(&mut self, key: &str) -> Result<(), KeyError> {
        self.install_raw(decode_key(key)?)
    }

    /// [`Keyring::install`] of a decoded key.
    pub(crate) fn install_raw(&mut self, key: [u8; 32]) -> Result<(), KeyError> {
        if !self.entries.iter().any(|e| e.key == key) {
            if self.entries.len() >= MAX_KEYS {
                return Err(KeyError::TooMany(MAX_KEYS));
            }
            let cipher = Aes256Gcm::new(&key.into());
            self.entries.push(Entry { key, cipher });
        }
        Ok(())
    }

    /// Makes an installed key the primary (encrypting) one.
    pub fn use_key(&mut self, key: &str) -> Result<(), KeyError> {
        self.use_raw(decode_key(key)?)
    }

    /// [`Keyring::use_key`] of a decoded key.
    pub(crate) fn use_raw(&mut self, key: [u8; 32]) -> Result<(), KeyError> {
        let pos = self
            .entries
            .iter()
            .position(|e| e.key == key)
            .ok_or(KeyError::NotInstalled)?;
        let entry = self.entries.remove(pos);
        self.entries.insert(0, entry);
        Ok(())
    }

    /// Removes a key that is not the primary one.
    pub fn remove(&mut self, key: &str) -> Result<(), KeyError> {
        self.remove_raw(decode_key(key)?)
    }

    /// [`Keyring::remove`] of a decoded key.
    pub(crate) fn remove_raw(&mut self, key: [u8; 32]) -> Result<(), KeyError> {
        let pos = self
            .entries
            .iter()
            .position(|e| e.key == key)
            .ok_or(KeyError::NotInstalled)?;
        if pos == 0 {
            return Err(KeyError::RemovePrimary);
        }
        self.entries.remove(pos);
        Ok(())
    }

    /// The installed keys in base64, primary first.
    pub fn list(&self) -> Vec<String> {
        self.entries.iter().map(|e| encode_key(&e.key)).collect()
    }

    /// The installed keys, primary first.
    pub(crate) fn raw(&self) -> Vec<[u8; 32]> {
        self.entries.iter().map(|e| e.key).collect()
    }

    /// Frames (and, with a key, encrypts) a payload.
    pub fn seal(&self, payload: &[u8], nonce: [u8; 12]) -> Vec<u8> {
        match self.entries.first() {
            None => {
                let mut out = Vec::with_capacity(payload.len() + 1);
                out.push(VERSION_PLAIN);
                out.extend_from_slice(payload);
                out
            }
            Some(entry) => {
                let aad = [VERSION_AES_GCM];
                let sealed = entry
                    .cipher
                    .encrypt(
                        Nonce::from_slice(&nonce),
                        Payload {
                            msg: payload,
                            aad: &aad,
                        },
                    )
                    // AES-GCM encryption only fails for plaintexts over
                    // 64 GiB; our payloads are bounded by the packet size.
                    .unwrap_or_default();
                let mut out = Vec::with_capacity(OVERHEAD + payload.len());
                out.push(VERSION_AES_GCM);
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&sealed);
                out
            }
        }
    }

    /// Checks the framing and decrypts; returns the payload.
    pub fn open(&self, packet: &[u8]) -> Result<Vec<u8>, PacketError> {
        let (&version, rest) = packet.split_first().ok_or(PacketError::Empty)?;
        match version {
            VERSION_PLAIN if self.entries.is_empty() => Ok(rest.to_vec()),
            VERSION_PLAIN => Err(PacketError::MissingEncryption),
            VERSION_AES_GCM if self.entries.is_empty() => Err(PacketError::UnexpectedEncryption),
            VERSION_AES_GCM => {
                if rest.len() < 12 + 16 {
                    return Err(PacketError::Decrypt);
                }
                let (nonce, sealed) = rest.split_at(12);
                let aad = [VERSION_AES_GCM];
                self.entries
                    .iter()
                    .find_map(|e| {
                        e.cipher
                            .decrypt(
                                Nonce::from_slice(nonce),
                                Payload {
                                    msg: sealed,
                                    aad: &aad,
                                },
                            )
                            .ok()
                    })
                    .ok_or(PacketError::Decrypt)
            }
            other => Err(PacketError::UnknownVersion(other)),
        }
    }
}

/// Fills a nonce from the operating system's CSPRNG.
pub fn os_nonce() -> [u8; 12] {
    use aes_gcm::aead::rand_core::RngCore;
    let mut n = [0u8; 12];
    OsRng.fill_bytes(&mut n);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_wrong_key() {
        let k1 = keygen();
        let k2 = keygen();
        assert_ne!(k1, k2);
        let ring = Keyring::with_key(&k1).unwrap();
        let packet = ring.seal(b"hello", os_nonce());
        assert_eq!(packet.len(), 5 + OVERHEAD);
        assert_eq!(ring.open(&packet).unwrap(), b"hello");
        let other = Keyring::with_key(&k2).unwrap();
        assert_eq!(other.open(&packet), Err(PacketError::Decrypt));
        assert_eq!(
            Keyring::none().open(&packet),
            Err(PacketError::UnexpectedEncryption)
        );
        let plain = Keyring::none().seal(b"x", [0; 12]);
        assert_eq!(ring.open(&plain), Err(PacketError::MissingEncryption));
        assert_eq!(Keyring::none().open(&plain).unwrap(), b"x");
        let mut tampered = packet.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(ring.open(&tampered), Err(PacketError::Decrypt));
        assert_eq!(ring.open(&[9]), Err(PacketError::UnknownVersion(9)));
        assert_eq!(ring.open(&[]), Err(PacketError::Empty));
    }

    #[test]
    fn keyring_rotation() {
        let (old, new) = (keygen(), keygen());
        let mut a = Keyring::with_key(&old).unwrap();
        let b = Keyring::with_key(&old).unwrap();
        a.install(&new).unwrap();
        assert_eq!(a.list(), vec![old.clone(), new.clone()]);
        assert_eq!(a.remove(&old), Err(KeyError::RemovePrimary));
        a.use_key(&new).unwrap();
        // b (old key only) cannot read a's packets until it installs `new`.
        let p = a.seal(b"m", os_nonce());
        assert!(b.open(&p).is_err());
        // a still reads b's packets (old key still installed).
        assert!(a.open(&b.seal(b"m", os_nonce())).is_ok());
        a.remove(&old).unwrap();
        assert_eq!(a.list(), vec![new]);
        assert_eq!(decode_key("abc"), Err(KeyError::Base64));
        assert_eq!(decode_key("AAAA"), Err(KeyError::Length(3)));
        assert_eq!(a.use_key(&old), Err(KeyError::NotInstalled));
    }
}
