//! Where the root key comes from. A provider loads the keyring and, when it can store keys,
//! adds a version (a rotation) and removes one nothing uses any more (a retirement).
//!
//! | provider | source | rotation |
//! |---|---|---|
//! | [`FileProvider`] | the data directory's `root.key` (0600) | adds a line, atomically |
//! | [`EnvProvider`] | `CUSTODIA_ROOT_KEY` (`V:BASE64,...`) | the operator adds the version to the variable and restarts; the vault then re-wraps |

use std::path::PathBuf;

use crate::{CryptoError, Keyring, ROOT_KEY_ENV, SecretKey};

/// A source of the root keyring.
pub trait KeyProvider: Send + Sync {
    /// Its name in `keys status`: `file`, `environment`.
    fn name(&self) -> &'static str;
    /// The keyring as the source holds it now (every version).
    fn load(&self) -> Result<Keyring, CryptoError>;
    /// Adds a fresh version above the newest, made at `now_secs`, and returns the keyring.
    fn add_version(&self, now_secs: i64) -> Result<Keyring, CryptoError>;
    /// Removes `version` (never the newest) and returns the keyring.
    fn remove_version(&self, version: u32) -> Result<Keyring, CryptoError>;
    /// The keyring, making its first version at `now_secs` when the source has none yet
    /// (`custodia init`). Sources custodia cannot write only load.
    fn load_or_create(&self, _now_secs: i64) -> Result<Keyring, CryptoError> {
        self.load()
    }
}

/// The key file in the data directory.
#[derive(Debug, Clone)]
pub struct FileProvider(pub PathBuf);

impl KeyProvider for FileProvider {
    fn name(&self) -> &'static str {
        "file"
    }

    fn load(&self) -> Result<Keyring, CryptoError> {
        Keyring::load_file(&self.0)
    }

    fn add_version(&self, now_secs: i64) -> Result<Keyring, CryptoError> {
        Keyring::add_version_to_file(&self.0, now_secs)
    }

    fn remove_version(&self, version: u32) -> Result<Keyring, CryptoError> {
        Keyring::remove_version_from_file(&self.0, version)
    }

    fn load_or_create(&self, _now_secs: i64) -> Result<Keyring, CryptoError> {
        if self.0.exists() {
            Keyring::load_file(&self.0)
        } else {
            Keyring::create_file(&self.0)
        }
    }
}

/// The `CUSTODIA_ROOT_KEY` environment variable. A process cannot change its parent's
/// environment, so versions are added and removed by the operator; the vault re-wraps.
#[derive(Debug, Clone, Copy)]
pub struct EnvProvider;

impl KeyProvider for EnvProvider {
    fn name(&self) -> &'static str {
        "environment"
    }

    fn load(&self) -> Result<Keyring, CryptoError> {
        let value = std::env::var(ROOT_KEY_ENV)
            .map_err(|_| CryptoError::InvalidRootKey(format!("{ROOT_KEY_ENV} is not set")))?;
        Keyring::parse_env(&value)
    }

    fn add_version(&self, _now_secs: i64) -> Result<Keyring, CryptoError> {
        Err(CryptoError::InvalidRootKey(format!(
            "the root key comes from {ROOT_KEY_ENV}, which custodia cannot change: add a new version to it \
             (`1:OLD,2:NEW`, NEW from `openssl rand -base64 32`), restart, and rotate again to re-wrap every key"
        )))
    }

    fn remove_version(&self, version: u32) -> Result<Keyring, CryptoError> {
        Err(CryptoError::InvalidRootKey(format!(
            "the root key comes from {ROOT_KEY_ENV}, which custodia cannot change: nothing uses version {version} \
             any more, so remove it from the variable and restart"
        )))
    }
}

/// The file of [`PassphraseProvider`] in the data directory.
pub const PASSPHRASE_KEY_FILE: &str = "root.key.sealed";
/// The environment variable that holds the passphrase (and selects this provider).
pub const ROOT_KEY_PASSPHRASE_ENV: &str = "CUSTODIA_ROOT_KEY_PASSPHRASE";
const SEALED_HEADER: &str = "custodia-root-key-passphrase-v1";

/// The root key versions in a file, each sealed (AES-256-GCM) under a key derived from a
/// passphrase with Argon2id (19 MiB, 2 passes) and the file's random salt: the file alone, or
/// a backup of the data directory, opens nothing without the passphrase.
///
/// ```text
/// custodia-root-key-passphrase-v1
/// salt BASE64(16 bytes)
/// 1 BASE64(nonce 12 || sealed key 32 || tag 16) [CREATED]
/// ```
pub struct PassphraseProvider {
    file: PathBuf,
    passphrase: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for PassphraseProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassphraseProvider")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// A sealed key file's salt and lines (version, sealed key, time made).
type SealedLines = (Vec<u8>, Vec<(u32, Vec<u8>, Option<i64>)>);

impl PassphraseProvider {
    /// A provider over `file`, opened with `passphrase` (at least 12 characters).
    pub fn new(file: PathBuf, passphrase: zeroize::Zeroizing<String>) -> Result<Self, CryptoError> {
        let distinct: std::collections::BTreeSet<char> = passphrase.chars().filter(|c| !c.is_whitespace()).collect();
        if passphrase.chars().count() < 12 || distinct.len() < 6 {
            return Err(CryptoError::InvalidRootKey(format!(
                "{ROOT_KEY_PASSPHRASE_ENV} must have at least 12 characters, 6 of them different and not spaces"
            )));
        }
        Ok(Self { file, passphrase })
    }

    fn kek(&self, salt: &[u8]) -> Result<aws_lc_rs::aead::LessSafeKey, CryptoError> {
        let params = argon2::Params::new(19 * 1024, 2, 1, Some(32)).map_err(|_| CryptoError::Primitive)?;
        let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = zeroize::Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(self.passphrase.as_bytes(), salt, out.as_mut())
            .map_err(|_| CryptoError::Primitive)?;
        let unbound = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, out.as_ref())
            .map_err(|_| CryptoError::Primitive)?;
        Ok(aws_lc_rs::aead::LessSafeKey::new(unbound))
    }

    /// What a sealed version is bound to: its number and the time it was made (so neither
    /// can be edited in the file).
    fn aad(version: u32, created: Option<i64>) -> Vec<u8> {
        match created {
            Some(t) => format!("custodia-root-key:v{version}:{t}").into_bytes(),
            None => format!("custodia-root-key:v{version}").into_bytes(),
        }
    }

    fn seal(
        kek: &aws_lc_rs::aead::LessSafeKey,
        version: u32,
        created: Option<i64>,
        key: &SecretKey,
    ) -> Result<Vec<u8>, CryptoError> {
        let nonce = crate::random_array::<12>()?;
        let mut body = key.expose().to_vec();
        kek.seal_in_place_append_tag(
            aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
            aws_lc_rs::aead::Aad::from(Self::aad(version, created)),
            &mut body,
        )
        .map_err(|_| CryptoError::Primitive)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&body);
        Ok(out)
    }

    fn open(
        kek: &aws_lc_rs::aead::LessSafeKey,
        version: u32,
        created: Option<i64>,
        sealed: &[u8],
    ) -> Result<SecretKey, CryptoError> {
        if sealed.len() < 12 + 16 {
            return Err(CryptoError::Format("a sealed root key is truncated".into()));
        }
        let nonce =
            aws_lc_rs::aead::Nonce::try_assume_unique_for_key(&sealed[..12]).map_err(|_| CryptoError::Primitive)?;
        let mut body = zeroize::Zeroizing::new(sealed[12..].to_vec());
        let plain = kek
            .open_in_place(nonce, aws_lc_rs::aead::Aad::from(Self::aad(version, created)), &mut body)
            .map_err(|_| {
                CryptoError::InvalidRootKey(format!(
                    "the passphrase ({ROOT_KEY_PASSPHRASE_ENV}) does not open version {version} of the root key file (a wrong passphrase, or the file was edited)"
                ))
            })?;
        SecretKey::from_slice(plain)
    }

    fn read(&self) -> Result<SealedLines, CryptoError> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let text = crate::read_private(&self.file)?;
        let bad = |m: &str| CryptoError::InvalidRootKey(format!("{}: {m}", self.file.display()));
        let mut lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        if lines.next() != Some(SEALED_HEADER) {
            return Err(bad(&format!("the file must start with `{SEALED_HEADER}`")));
        }
        let salt = lines
            .next()
            .and_then(|l| l.strip_prefix("salt "))
            .and_then(|s| b64.decode(s.trim()).ok())
            .filter(|s| s.len() >= 16)
            .ok_or_else(|| bad("the second line must be `salt BASE64`"))?;
        let mut keys = Vec::new();
        for line in lines {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let (version, sealed, created) = match parts.as_slice() {
                [v, s] => (v, s, None),
                [v, s, t] => (v, s, Some(t.parse::<i64>().map_err(|_| bad("a time is not a number"))?)),
                _ => return Err(bad("each key line is `VERSION BASE64 [CREATED]`")),
            };
            let version = version.parse::<u32>().map_err(|_| bad("a version is not a number"))?;
            let sealed = b64.decode(sealed).map_err(|_| bad("a sealed key is not base64"))?;
            keys.push((version, sealed, created));
        }
        Ok((salt, keys))
    }

    fn write(&self, salt: &[u8], keys: &[(u32, Vec<u8>, Option<i64>)]) -> Result<(), CryptoError> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut body = format!(
            "# Custodia root key, each version sealed under a key derived from a passphrase\n# ({ROOT_KEY_PASSPHRASE_ENV}, Argon2id): without it this file opens nothing.\n{SEALED_HEADER}\nsalt {}\n",
            b64.encode(salt)
        );
        for (version, sealed, created) in keys {
            body.push_str(&format!("{version} {}", b64.encode(sealed)));
            if let Some(t) = created {
                body.push_str(&format!(" {t}"));
            }
            body.push('\n');
        }
        crate::replace_private(&self.file, &body)
    }

    fn keyring(&self, salt: &[u8], keys: &[(u32, Vec<u8>, Option<i64>)]) -> Result<Keyring, CryptoError> {
        let kek = self.kek(salt)?;
        let opened = keys
            .iter()
            .map(|(version, sealed, created)| Ok((*version, Self::open(&kek, *version, *created, sealed)?, *created)))
            .collect::<Result<Vec<_>, CryptoError>>()?;
        Keyring::from_dated_keys(opened)
    }
}

impl KeyProvider for PassphraseProvider {
    fn name(&self) -> &'static str {
        "passphrase"
    }

    fn load(&self) -> Result<Keyring, CryptoError> {
        let (salt, keys) = self.read()?;
        self.keyring(&salt, &keys)
    }

    fn add_version(&self, now_secs: i64) -> Result<Keyring, CryptoError> {
        let (salt, mut keys) = self.read()?;
        let current = self.keyring(&salt, &keys)?;
        let version = current
            .current_version()
            .checked_add(1)
            .ok_or_else(|| CryptoError::InvalidRootKey("no version number is left".into()))?;
        keys.push((
            version,
            Self::seal(&self.kek(&salt)?, version, Some(now_secs), &SecretKey::generate()?)?,
            Some(now_secs),
        ));
        let updated = self.keyring(&salt, &keys)?;
        self.write(&salt, &keys)?;
        Ok(updated)
    }

    fn remove_version(&self, version: u32) -> Result<Keyring, CryptoError> {
        let (salt, mut keys) = self.read()?;
        let current = self.keyring(&salt, &keys)?;
        if !keys.iter().any(|(v, _, _)| *v == version) {
            return Err(CryptoError::UnknownKeyVersion(version));
        }
        if version == current.current_version() {
            return Err(CryptoError::InvalidRootKey(format!(
                "version {version} is the newest, which wraps every new key; rotate first"
            )));
        }
        keys.retain(|(v, _, _)| *v != version);
        let updated = self.keyring(&salt, &keys)?;
        self.write(&salt, &keys)?;
        Ok(updated)
    }

    fn load_or_create(&self, now_secs: i64) -> Result<Keyring, CryptoError> {
        if self.file.exists() {
            return self.load();
        }
        let salt = crate::random_array::<16>()?.to_vec();
        let keys = vec![(
            1,
            Self::seal(&self.kek(&salt)?, 1, Some(now_secs), &SecretKey::generate()?)?,
            Some(now_secs),
        )];
        let keyring = self.keyring(&salt, &keys)?;
        self.write(&salt, &keys)?;
        Ok(keyring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(s: &str) -> zeroize::Zeroizing<String> {
        zeroize::Zeroizing::new(s.to_owned())
    }

    #[test]
    fn a_passphrase_sealed_keyring_rotates_and_needs_its_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(PASSPHRASE_KEY_FILE);
        assert!(PassphraseProvider::new(file.clone(), pass("short")).is_err());
        let provider = PassphraseProvider::new(file.clone(), pass("correct horse battery")).unwrap();
        let ring = provider.load_or_create(100).unwrap();
        let wrapped = ring.wrap("dek", b"s", &SecretKey::generate().unwrap()).unwrap();
        let two = provider.add_version(200).unwrap();
        assert_eq!(two.versions(), vec![(1, Some(100)), (2, Some(200))]);
        assert!(provider.load().unwrap().unwrap("dek", b"s", &wrapped.0).is_ok());
        // Another passphrase opens nothing; nor does an edited line (each is bound to its version).
        let wrong = PassphraseProvider::new(file.clone(), pass("correct horse batterz")).unwrap();
        let err = wrong.load().unwrap_err();
        assert!(err.to_string().contains("does not open"), "{err}");
        let text = std::fs::read_to_string(&file).unwrap();
        let swapped = text.replacen("\n1 ", "\n3 ", 1);
        std::fs::write(&file, swapped).unwrap();
        assert!(
            provider.load().is_err(),
            "a sealed key moved to another version does not open"
        );
        let redated = text.replacen(" 200\n", " 100\n", 1);
        assert_ne!(redated, text);
        std::fs::write(&file, redated).unwrap();
        assert!(provider.load().is_err(), "a version's time is bound to it too");
        assert!(PassphraseProvider::new(file.clone(), pass("aaaaaaaaaaaaaaa")).is_err());
        assert!(PassphraseProvider::new(file.clone(), pass("            ")).is_err());
        std::fs::write(&file, &text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let one = provider.remove_version(1).unwrap();
        assert_eq!(one.current_version(), 2);
        assert!(provider.remove_version(2).is_err(), "never the newest");
    }
}
