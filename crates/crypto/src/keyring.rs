//! The root key (KEK): versioned, loaded from a 0600 key file in the data directory or from
//! the `CUSTODIA_ROOT_KEY` environment variable. It only ever wraps other keys.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use zeroize::Zeroizing;

use crate::envelope::WrappedKey;
use crate::{CryptoError, SecretKey, random_array};

/// File name of the root key inside the data directory.
pub const KEY_FILE_NAME: &str = "root.key";
/// Environment variable that, when set, supplies the root key instead of the key file.
/// Value: `BASE64` (taken as version 1) or `VERSION:BASE64[,VERSION:BASE64...]`.
pub const ROOT_KEY_ENV: &str = "CUSTODIA_ROOT_KEY";

const FILE_HEADER: &str = "custodia-root-key-v1";
/// First byte of a wrapped key: AES-256-GCM under a root key, format 1.
const WRAP_FORMAT_V1: u8 = 0x01;
const WRAP_HEADER_LEN: usize = 1 + 4 + NONCE_LEN;

/// One version of the root key.
pub struct RootKey {
    version: u32,
    aead: LessSafeKey,
}

impl RootKey {
    fn new(version: u32, key: &SecretKey) -> Result<Self, CryptoError> {
        let unbound = UnboundKey::new(&AES_256_GCM, key.expose()).map_err(|_| CryptoError::Primitive)?;
        Ok(Self {
            version,
            aead: LessSafeKey::new(unbound),
        })
    }

    /// This key's version number.
    #[must_use]
    pub fn version(&self) -> u32 {
        self.version
    }
}

/// Every loaded root key version; new wraps use the newest.
pub struct Keyring {
    keys: BTreeMap<u32, RootKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Keyring {
    /// A keyring holding the given versions. At least one is required.
    pub fn from_keys(keys: Vec<(u32, SecretKey)>) -> Result<Self, CryptoError> {
        let mut map = BTreeMap::new();
        for (version, key) in keys {
            if version == 0 {
                return Err(CryptoError::InvalidRootKey("key versions start at 1".into()));
            }
            if map.insert(version, RootKey::new(version, &key)?).is_some() {
                return Err(CryptoError::InvalidRootKey(format!("version {version} appears twice")));
            }
        }
        if map.is_empty() {
            return Err(CryptoError::InvalidRootKey("no key present".into()));
        }
        Ok(Self { keys: map })
    }

    /// The newest root key version, used for every new wrap.
    #[must_use]
    pub fn current_version(&self) -> u32 {
        self.keys.keys().next_back().copied().unwrap_or(0)
    }

    /// Generates a fresh version-1 root key and writes it to `path` with mode 0600.
    /// Refuses to overwrite an existing file.
    pub fn create_file(path: &Path) -> Result<Self, CryptoError> {
        let key = SecretKey::generate()?;
        let body = Zeroizing::new(format!(
            "# Custodia root key. Anyone holding this file and the database can read every value.\n\
             # Back it up apart from the database; losing it loses the data.\n{FILE_HEADER}\n1 {}\n",
            B64.encode(key.expose())
        ));
        let io = |source| CryptoError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(io)?;
        file.write_all(body.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Self::from_keys(vec![(1, key)])
    }

    /// Loads a key file. Refuses a file that group or others may read.
    pub fn load_file(path: &Path) -> Result<Self, CryptoError> {
        let io = |source| CryptoError::Io {
            path: path.display().to_string(),
            source,
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(CryptoError::InvalidRootKey(format!(
                    "{} is readable by group or others (mode {:o}); run chmod 600 on it",
                    path.display(),
                    mode & 0o777
                )));
            }
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
        Self::parse_file(&text)
    }

    fn parse_file(text: &str) -> Result<Self, CryptoError> {
        let mut lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        if lines.next() != Some(FILE_HEADER) {
            return Err(CryptoError::InvalidRootKey(format!(
                "the key file must start with `{FILE_HEADER}`"
            )));
        }
        let mut keys = Vec::new();
        for line in lines {
            let (version, b64) = line
                .split_once(' ')
                .ok_or_else(|| CryptoError::InvalidRootKey("each key line is `VERSION BASE64`".into()))?;
            keys.push((parse_version(version)?, decode_key(b64)?));
        }
        Self::from_keys(keys)
    }

    /// Parses the `CUSTODIA_ROOT_KEY` value: `BASE64` or `V:BASE64[,V:BASE64...]`.
    pub fn parse_env(value: &str) -> Result<Self, CryptoError> {
        let mut keys = Vec::new();
        for part in value.split(',').map(str::trim) {
            match part.split_once(':') {
                Some((v, b64)) => keys.push((parse_version(v)?, decode_key(b64)?)),
                None => keys.push((1, decode_key(part)?)),
            }
        }
        Self::from_keys(keys)
    }

    /// Wraps `secret` under the current root key. `label` names the kind of key and
    /// `context` binds it to its owner (e.g. a subject id), so a wrapped key cannot be
    /// moved to another owner.
    pub fn wrap(&self, label: &str, context: &[u8], secret: &SecretKey) -> Result<WrappedKey, CryptoError> {
        let root = self.keys.get(&self.current_version()).ok_or(CryptoError::Primitive)?;
        let nonce_bytes = random_array::<NONCE_LEN>()?;
        let mut out = Vec::with_capacity(WRAP_HEADER_LEN + secret.expose().len() + 16);
        out.push(WRAP_FORMAT_V1);
        out.extend_from_slice(&root.version.to_be_bytes());
        out.extend_from_slice(&nonce_bytes);
        let aad = wrap_aad(&out, label, context);
        let mut body = secret.expose().to_vec();
        root.aead
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce_bytes), Aad::from(&aad), &mut body)
            .map_err(|_| CryptoError::Primitive)?;
        out.extend_from_slice(&body);
        Ok(WrappedKey(out))
    }

    /// Unwraps a key wrapped by [`Keyring::wrap`] with the same `label` and `context`.
    pub fn unwrap(&self, label: &str, context: &[u8], wrapped: &[u8]) -> Result<SecretKey, CryptoError> {
        if wrapped.len() < WRAP_HEADER_LEN + 16 {
            return Err(CryptoError::Format("wrapped key is truncated".into()));
        }
        if wrapped[0] != WRAP_FORMAT_V1 {
            return Err(CryptoError::Format(format!("wrapped key format {:#04x}", wrapped[0])));
        }
        let version = u32::from_be_bytes([wrapped[1], wrapped[2], wrapped[3], wrapped[4]]);
        let root = self.keys.get(&version).ok_or(CryptoError::UnknownKeyVersion(version))?;
        let nonce =
            Nonce::try_assume_unique_for_key(&wrapped[5..WRAP_HEADER_LEN]).map_err(|_| CryptoError::Primitive)?;
        let aad = wrap_aad(&wrapped[..WRAP_HEADER_LEN], label, context);
        let mut body = Zeroizing::new(wrapped[WRAP_HEADER_LEN..].to_vec());
        let plain = root
            .aead
            .open_in_place(nonce, Aad::from(&aad), &mut body)
            .map_err(|_| CryptoError::Decrypt)?;
        SecretKey::from_slice(plain)
    }
}

/// Associated data of a key wrap: header, then the label and context, each length-prefixed.
fn wrap_aad(header: &[u8], label: &str, context: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + 8 + label.len() + context.len());
    aad.extend_from_slice(header);
    for part in [label.as_bytes(), context] {
        aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
        aad.extend_from_slice(part);
    }
    aad
}

fn parse_version(s: &str) -> Result<u32, CryptoError> {
    s.trim()
        .parse::<u32>()
        .map_err(|_| CryptoError::InvalidRootKey(format!("`{}` is not a key version number", s.trim())))
}

fn decode_key(b64: &str) -> Result<SecretKey, CryptoError> {
    let bytes = Zeroizing::new(
        B64.decode(b64.trim())
            .map_err(|_| CryptoError::InvalidRootKey("key is not valid base64".into()))?,
    );
    SecretKey::from_slice(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_round_trip_and_context_binding() {
        let ring = Keyring::from_keys(vec![(1, SecretKey::generate().unwrap())]).unwrap();
        let dek = SecretKey::generate().unwrap();
        let wrapped = ring.wrap("dek", b"subject-1", &dek).unwrap();
        let back = ring.unwrap("dek", b"subject-1", &wrapped.0).unwrap();
        assert_eq!(back.expose(), dek.expose());
        assert!(matches!(
            ring.unwrap("dek", b"subject-2", &wrapped.0),
            Err(CryptoError::Decrypt)
        ));
        assert!(matches!(
            ring.unwrap("index", b"subject-1", &wrapped.0),
            Err(CryptoError::Decrypt)
        ));
        let mut bad = wrapped.0.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(
            ring.unwrap("dek", b"subject-1", &bad),
            Err(CryptoError::Decrypt)
        ));
    }

    #[test]
    fn another_root_key_cannot_unwrap() {
        let a = Keyring::from_keys(vec![(1, SecretKey::generate().unwrap())]).unwrap();
        let b = Keyring::from_keys(vec![(1, SecretKey::generate().unwrap())]).unwrap();
        let wrapped = a.wrap("dek", b"s", &SecretKey::generate().unwrap()).unwrap();
        assert!(matches!(b.unwrap("dek", b"s", &wrapped.0), Err(CryptoError::Decrypt)));
    }

    #[test]
    fn newest_version_wraps_and_old_versions_still_unwrap() {
        let k1 = SecretKey::generate().unwrap();
        let old = Keyring::from_keys(vec![(1, k1.clone())]).unwrap();
        let wrapped_old = old.wrap("dek", b"s", &SecretKey::generate().unwrap()).unwrap();
        let both = Keyring::from_keys(vec![(1, k1), (2, SecretKey::generate().unwrap())]).unwrap();
        assert_eq!(both.current_version(), 2);
        assert!(both.unwrap("dek", b"s", &wrapped_old.0).is_ok());
        let wrapped_new = both.wrap("dek", b"s", &SecretKey::generate().unwrap()).unwrap();
        assert_eq!(&wrapped_new.0[1..5], &2u32.to_be_bytes());
        assert!(matches!(
            old.unwrap("dek", b"s", &wrapped_new.0),
            Err(CryptoError::UnknownKeyVersion(2))
        ));
    }

    #[test]
    fn key_file_is_private_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE_NAME);
        let created = Keyring::create_file(&path).unwrap();
        let wrapped = created.wrap("dek", b"s", &SecretKey::generate().unwrap()).unwrap();
        let loaded = Keyring::load_file(&path).unwrap();
        assert!(loaded.unwrap("dek", b"s", &wrapped.0).is_ok());
        assert!(Keyring::create_file(&path).is_err(), "must not overwrite a key file");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(
                Keyring::load_file(&path).is_err(),
                "a world-readable key file is refused"
            );
        }
    }

    #[test]
    fn env_value_forms() {
        let k = B64.encode([7u8; 32]);
        assert_eq!(Keyring::parse_env(&k).unwrap().current_version(), 1);
        let two = format!("1:{k},3:{}", B64.encode([9u8; 32]));
        assert_eq!(Keyring::parse_env(&two).unwrap().current_version(), 3);
        assert!(Keyring::parse_env("not base64!").is_err());
        assert!(Keyring::parse_env(&B64.encode([1u8; 16])).is_err());
        assert!(Keyring::parse_env(&format!("0:{k}")).is_err());
    }
}
