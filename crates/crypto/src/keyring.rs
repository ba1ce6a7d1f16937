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
    /// The key itself, for [`Keyring::written_in`] only.
    secret: SecretKey,
    /// When it was made (Unix seconds), if its source says.
    created: Option<i64>,
}

impl RootKey {
    fn new(version: u32, key: &SecretKey) -> Result<Self, CryptoError> {
        let unbound = UnboundKey::new(&AES_256_GCM, key.expose()).map_err(|_| CryptoError::Primitive)?;
        Ok(Self {
            version,
            aead: LessSafeKey::new(unbound),
            secret: key.clone(),
            created: None,
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
        Self::from_dated_keys(keys.into_iter().map(|(v, k)| (v, k, None)).collect())
    }

    /// A keyring holding the given versions, each with the time it was made if known.
    pub fn from_dated_keys(keys: Vec<(u32, SecretKey, Option<i64>)>) -> Result<Self, CryptoError> {
        let mut map = BTreeMap::new();
        for (version, key, created) in keys {
            if version == 0 {
                return Err(CryptoError::InvalidRootKey("key versions start at 1".into()));
            }
            let mut root = RootKey::new(version, &key)?;
            root.created = created;
            if map.insert(version, root).is_some() {
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

    /// Whether `bytes` hold a version of the key, as its 32 bytes or written in base64
    /// (standard or URL-safe, padded or not) or hex (either case): a copy beside the database
    /// in any form a person would paste it (`CUSTODIA_ROOT_KEY=1:...` in an env file, a
    /// service unit) is as much of a secret as the key file. For a local posture check, not
    /// an oracle: the comparison is not in constant time.
    #[must_use]
    pub fn written_in(&self, bytes: &[u8]) -> bool {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        self.keys.values().any(|k| {
            let raw = k.secret.expose();
            let standard = Zeroizing::new(B64.encode(raw));
            // 43 characters carry the 32 bytes: padded or not, the same prefix
            let unpadded = standard.trim_end_matches('=');
            let url = Zeroizing::new(URL_SAFE_NO_PAD.encode(raw));
            let lower = Zeroizing::new(hex::encode(raw));
            let upper = Zeroizing::new(lower.to_ascii_uppercase());
            [
                &raw[..],
                unpadded.as_bytes(),
                url.as_bytes(),
                lower.as_bytes(),
                upper.as_bytes(),
            ]
            .iter()
            .any(|needle| bytes.windows(needle.len()).any(|w| w == *needle))
        })
    }

    /// Every loaded version, oldest first, with the time it was made if known.
    #[must_use]
    pub fn versions(&self) -> Vec<(u32, Option<i64>)> {
        self.keys.values().map(|k| (k.version, k.created)).collect()
    }

    /// Generates a fresh version-1 root key and writes it to `path` with mode 0600.
    /// Refuses to overwrite an existing file.
    pub fn create_file(path: &Path) -> Result<Self, CryptoError> {
        let key = SecretKey::generate()?;
        let body = Zeroizing::new(format!(
            "# Custodia root key. Anyone holding this file and the database can read every value.\n\
             # Back it up apart from the database; losing it loses the data.\n\
             # One line per version: VERSION BASE64 [CREATED (Unix seconds)]; the newest wraps.\n\
             {FILE_HEADER}\n1 {}\n",
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
        Self::parse_file(&read_private(path)?)
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
            let mut parts = line.split_whitespace();
            let (Some(version), Some(b64)) = (parts.next(), parts.next()) else {
                return Err(CryptoError::InvalidRootKey(
                    "each key line is `VERSION BASE64 [CREATED]`".into(),
                ));
            };
            let created = parts
                .next()
                .map(|c| {
                    c.parse::<i64>()
                        .map_err(|_| CryptoError::InvalidRootKey(format!("`{c}` is not a time in Unix seconds")))
                })
                .transpose()?;
            if parts.next().is_some() {
                return Err(CryptoError::InvalidRootKey(
                    "each key line is `VERSION BASE64 [CREATED]`".into(),
                ));
            }
            keys.push((parse_version(version)?, decode_key(b64)?, created));
        }
        Self::from_dated_keys(keys)
    }

    /// Adds a fresh version (one above the newest) to the key file at `path`, made at
    /// `now_secs`, and returns the new keyring. The file is replaced atomically (written
    /// beside it with mode 0600, synced, renamed): a crash leaves the old file or the new.
    pub fn add_version_to_file(path: &Path, now_secs: i64) -> Result<Self, CryptoError> {
        let text = read_private(path)?;
        let current = Self::parse_file(&text)?;
        let version = current
            .current_version()
            .checked_add(1)
            .ok_or_else(|| CryptoError::InvalidRootKey("no version number is left".into()))?;
        let key = SecretKey::generate()?;
        let mut body = Zeroizing::new(text.trim_end().to_owned());
        body.push_str(&format!("\n{version} {} {now_secs}\n", B64.encode(key.expose())));
        let updated = Self::parse_file(&body)?;
        replace_private(path, &body)?;
        Ok(updated)
    }

    /// Removes `version` from the key file at `path` (never the newest, which wraps) and
    /// returns the new keyring. The caller must know that nothing is wrapped under it.
    pub fn remove_version_from_file(path: &Path, version: u32) -> Result<Self, CryptoError> {
        let text = read_private(path)?;
        let current = Self::parse_file(&text)?;
        if !current.keys.contains_key(&version) {
            return Err(CryptoError::UnknownKeyVersion(version));
        }
        if version == current.current_version() {
            return Err(CryptoError::InvalidRootKey(format!(
                "version {version} is the newest, which wraps every new key; rotate first"
            )));
        }
        let mut body = Zeroizing::new(String::with_capacity(text.len()));
        for line in text.lines() {
            let named = line.split_whitespace().next().and_then(|v| v.parse::<u32>().ok());
            if named != Some(version) || line.trim_start().starts_with('#') {
                body.push_str(line);
                body.push('\n');
            }
        }
        let updated = Self::parse_file(&body)?;
        replace_private(path, &body)?;
        Ok(updated)
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

    /// The same key wrapped again under the current version (a root key rotation): the key
    /// itself does not change, so nothing sealed under it needs touching.
    pub fn rewrap(&self, label: &str, context: &[u8], wrapped: &[u8]) -> Result<WrappedKey, CryptoError> {
        let secret = self.unwrap(label, context, wrapped)?;
        self.wrap(label, context, &secret)
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

/// The text of a key file, refused when group or others may read it.
pub fn read_private(path: &Path) -> Result<Zeroizing<String>, CryptoError> {
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
    Ok(Zeroizing::new(std::fs::read_to_string(path).map_err(io)?))
}

/// Replaces the file at `path` with `body` atomically: a new file (mode 0600) beside it,
/// synced, renamed over it, and the directory synced.
pub fn replace_private(path: &Path, body: &str) -> Result<(), CryptoError> {
    let io = |source| CryptoError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut name = path.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(".new");
    let temp = path.with_file_name(name);
    // A leftover of an interrupted replacement is ours to overwrite.
    let _ = std::fs::remove_file(&temp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&temp).map_err(io)?;
    file.write_all(body.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&temp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    Ok(())
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
    fn a_copy_of_a_version_is_found_in_any_common_writing() {
        use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
        // bytes chosen so that the standard and URL-safe alphabets write them apart
        let raw: [u8; 32] = std::array::from_fn(|i| 0xfb_u8.wrapping_add(i as u8 * 7));
        let other = SecretKey::generate().unwrap();
        let ring = Keyring::from_keys(vec![(1, other), (2, SecretKey::from_slice(&raw).unwrap())]).unwrap();
        let standard = B64.encode(raw);
        assert!(standard.contains('+') || standard.contains('/'), "{standard}");
        for written in [
            format!("CUSTODIA_ROOT_KEY=2:{standard}\n"),
            format!("Environment=CUSTODIA_ROOT_KEY={}", standard.trim_end_matches('=')),
            format!("key: {}", URL_SAFE.encode(raw)),
            URL_SAFE_NO_PAD.encode(raw),
            format!("0x{}", hex::encode(raw)),
            hex::encode_upper(raw),
        ] {
            assert!(ring.written_in(written.as_bytes()), "{written}");
        }
        let mut file = b"binary: ".to_vec();
        file.extend_from_slice(&raw);
        assert!(ring.written_in(&file));
        // a key of one byte changed, or cut short, is no copy
        let mut changed = raw;
        changed[31] ^= 1;
        for written in [B64.encode(changed), hex::encode(&raw[..31]), standard[..40].to_owned()] {
            assert!(!ring.written_in(written.as_bytes()), "{written}");
        }
    }

    #[test]
    fn versions_are_added_and_removed_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE_NAME);
        let one = Keyring::create_file(&path).unwrap();
        let wrapped_v1 = one.wrap("dek", b"s", &SecretKey::generate().unwrap()).unwrap();
        let two = Keyring::add_version_to_file(&path, 1_764_700_000).unwrap();
        assert_eq!(two.current_version(), 2);
        assert_eq!(two.versions(), vec![(1, None), (2, Some(1_764_700_000))]);
        assert!(
            two.unwrap("dek", b"s", &wrapped_v1.0).is_ok(),
            "old versions still unwrap"
        );
        let loaded = Keyring::load_file(&path).unwrap();
        assert_eq!(loaded.versions(), two.versions());
        let rewrapped = loaded
            .wrap("dek", b"s", &loaded.unwrap("dek", b"s", &wrapped_v1.0).unwrap())
            .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        // The newest version cannot go; an older one can, and then nothing under it opens.
        assert!(Keyring::remove_version_from_file(&path, 2).is_err());
        assert!(matches!(
            Keyring::remove_version_from_file(&path, 7),
            Err(CryptoError::UnknownKeyVersion(7))
        ));
        let retired = Keyring::remove_version_from_file(&path, 1).unwrap();
        assert_eq!(retired.versions(), vec![(2, Some(1_764_700_000))]);
        assert!(matches!(
            retired.unwrap("dek", b"s", &wrapped_v1.0),
            Err(CryptoError::UnknownKeyVersion(1))
        ));
        assert!(retired.unwrap("dek", b"s", &rewrapped.0).is_ok());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# Custodia root key."), "comments are kept");
        assert!(!dir.path().join("root.key.new").exists());
        assert_eq!(Keyring::add_version_to_file(&path, 5).unwrap().current_version(), 3);
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
