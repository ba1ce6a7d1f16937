//! The root key sealed by OpenBao's (or Vault's) transit engine: the data directory keeps
//! `root.key.bao`, each version's key encrypted by a transit key that never leaves OpenBao;
//! custodia asks OpenBao to decrypt them at start (and when a rotation elsewhere adds one).
//! A copy of the data directory alone, root key file included, opens nothing.
//!
//! ```text
//! root.key.bao (0600)
//!   custodia-root-key-openbao-v1
//!   1 vault:v1:3Xk...  1764700000        VERSION CIPHERTEXT [CREATED (Unix seconds)]
//!   2 vault:v1:Q8a...  1767300000
//! ```
//!
//! Configuration: `CUSTODIA_OPENBAO_ADDR` (e.g. `http://127.0.0.1:8200`; plain HTTP to the
//! local host only, as to an agent beside custodia), `CUSTODIA_OPENBAO_TOKEN`,
//! `CUSTODIA_OPENBAO_KEY` (the transit key's name, default `custodia`) and
//! `CUSTODIA_OPENBAO_MOUNT` (default `transit`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use custodia_crypto::{CryptoError, KeyProvider, Keyring, SecretKey, read_private, replace_private};
use zeroize::Zeroizing;

/// The environment variable that selects this provider.
pub const OPENBAO_ADDR_ENV: &str = "CUSTODIA_OPENBAO_ADDR";
/// The key file's name in the data directory.
pub const OPENBAO_KEY_FILE: &str = "root.key.bao";
const HEADER: &str = "custodia-root-key-openbao-v1";
/// How long OpenBao has to answer one call.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The transit engine of one OpenBao server.
pub struct OpenBaoProvider {
    file: PathBuf,
    /// `host:port`, plain HTTP to the local host.
    authority: String,
    token: Zeroizing<String>,
    mount: String,
    key: String,
}

impl std::fmt::Debug for OpenBaoProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenBaoProvider")
            .field("file", &self.file)
            .field("authority", &self.authority)
            .field("mount", &self.mount)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

fn invalid(message: impl Into<String>) -> CryptoError {
    CryptoError::InvalidRootKey(message.into())
}

/// A path segment made of what transit names may hold.
fn segment(what: &str, value: &str) -> Result<String, CryptoError> {
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
        && !value.contains("..");
    if ok {
        Ok(value.trim_matches('/').to_owned())
    } else {
        Err(invalid(format!("{what} must be letters, digits, - _ . /")))
    }
}

impl OpenBaoProvider {
    /// The provider the environment configures, keeping its sealed keys in `file`.
    pub fn from_env(file: PathBuf) -> Result<Self, CryptoError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let addr = var(OPENBAO_ADDR_ENV).ok_or_else(|| invalid(format!("{OPENBAO_ADDR_ENV} is not set")))?;
        let authority = addr
            .strip_prefix("http://")
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|a| {
                let host = a.rsplit_once(':').map_or(*a, |(h, _)| h);
                ["127.0.0.1", "localhost", "[::1]"].contains(&host)
            })
            .ok_or_else(|| {
                invalid(format!(
                    "{OPENBAO_ADDR_ENV} must be http://127.0.0.1:PORT or http://localhost:PORT (an OpenBao agent or server on this host)"
                ))
            })?
            .to_owned();
        let token =
            Zeroizing::new(var("CUSTODIA_OPENBAO_TOKEN").ok_or_else(|| invalid("CUSTODIA_OPENBAO_TOKEN is not set"))?);
        Ok(Self {
            file,
            authority,
            token,
            mount: segment(
                "CUSTODIA_OPENBAO_MOUNT",
                &var("CUSTODIA_OPENBAO_MOUNT").unwrap_or_else(|| "transit".into()),
            )?,
            key: segment(
                "CUSTODIA_OPENBAO_KEY",
                &var("CUSTODIA_OPENBAO_KEY").unwrap_or_else(|| "custodia".into()),
            )?,
        })
    }

    /// One POST of `body` to `path` under the API; the answer's `data` object.
    fn call(&self, op: &str, body: &serde_json::Value) -> Result<serde_json::Value, CryptoError> {
        let path = format!("/v1/{}/{op}/{}", self.mount, self.key);
        let body = Zeroizing::new(serde_json::to_vec(body).map_err(|_| CryptoError::Primitive)?);
        let io = |e: std::io::Error| invalid(format!("OpenBao at {}: {e}", self.authority));
        let mut stream = TcpStream::connect(&self.authority).map_err(io)?;
        stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
        stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nX-Vault-Token: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.authority,
            self.token.as_str(),
            body.len()
        );
        let head = Zeroizing::new(head);
        stream.write_all(head.as_bytes()).map_err(io)?;
        stream.write_all(&body).map_err(io)?;
        let mut answer = Zeroizing::new(Vec::new());
        stream.take(1 << 20).read_to_end(&mut answer).map_err(io)?;
        let text = std::str::from_utf8(&answer).map_err(|_| invalid("OpenBao answered something that is not text"))?;
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| invalid("OpenBao's answer has no body"))?;
        let status = head.split_whitespace().nth(1).unwrap_or("?");
        if status != "200" {
            // OpenBao's error bodies name the problem (`permission denied`, ...), never a key.
            return Err(invalid(format!(
                "OpenBao transit {op} with key `{}` answered {status}: {}",
                self.key,
                body.chars().take(200).collect::<String>()
            )));
        }
        let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            dechunk(body)?
        } else {
            body.to_owned()
        };
        let value: serde_json::Value =
            serde_json::from_str(&body).map_err(|_| invalid("OpenBao's answer is not JSON"))?;
        Ok(value["data"].clone())
    }

    fn encrypt(&self, key: &SecretKey) -> Result<String, CryptoError> {
        let plaintext = Zeroizing::new(B64.encode(key.expose()));
        let data = self.call("encrypt", &serde_json::json!({ "plaintext": plaintext.as_str() }))?;
        data["ciphertext"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| invalid("OpenBao's encrypt answer has no ciphertext"))
    }

    fn decrypt(&self, ciphertext: &str) -> Result<SecretKey, CryptoError> {
        let data = self.call("decrypt", &serde_json::json!({ "ciphertext": ciphertext }))?;
        let plaintext = Zeroizing::new(
            data["plaintext"]
                .as_str()
                .ok_or_else(|| invalid("OpenBao's decrypt answer has no plaintext"))?
                .to_owned(),
        );
        let bytes = Zeroizing::new(
            B64.decode(plaintext.as_bytes())
                .map_err(|_| invalid("OpenBao's plaintext is not base64"))?,
        );
        SecretKey::from_slice(&bytes)
    }

    /// The file's lines: version, ciphertext, time made.
    fn lines(text: &str) -> Result<Vec<(u32, String, Option<i64>)>, CryptoError> {
        let mut lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        if lines.next() != Some(HEADER) {
            return Err(invalid(format!("the key file must start with `{HEADER}`")));
        }
        lines
            .map(|line| {
                let parts: Vec<&str> = line.split_whitespace().collect();
                let (version, ciphertext, created) = match parts.as_slice() {
                    [v, c] => (v, c, None),
                    [v, c, t] => (
                        v,
                        c,
                        Some(t.parse::<i64>().map_err(|_| invalid(format!("`{t}` is not a time")))?),
                    ),
                    _ => return Err(invalid("each line is `VERSION CIPHERTEXT [CREATED]`")),
                };
                let version = version
                    .parse::<u32>()
                    .map_err(|_| invalid(format!("`{version}` is not a key version")))?;
                Ok((version, (*ciphertext).to_owned(), created))
            })
            .collect()
    }

    fn keyring(&self, lines: &[(u32, String, Option<i64>)]) -> Result<Keyring, CryptoError> {
        let keys = lines
            .iter()
            .map(|(version, ciphertext, created)| Ok((*version, self.decrypt(ciphertext)?, *created)))
            .collect::<Result<Vec<_>, CryptoError>>()?;
        Keyring::from_dated_keys(keys)
    }

    fn write(&self, lines: &[(u32, String, Option<i64>)]) -> Result<(), CryptoError> {
        let mut body = format!(
            "# Custodia root key, sealed by OpenBao transit key `{}` (mount `{}`): without OpenBao it opens nothing.\n# VERSION CIPHERTEXT [CREATED (Unix seconds)]; the newest wraps.\n{HEADER}\n",
            self.key, self.mount
        );
        for (version, ciphertext, created) in lines {
            body.push_str(&format!("{version} {ciphertext}"));
            if let Some(t) = created {
                body.push_str(&format!(" {t}"));
            }
            body.push('\n');
        }
        replace_private(&self.file, &body)
    }
}

/// The body of a `Transfer-Encoding: chunked` answer.
fn dechunk(mut body: &str) -> Result<String, CryptoError> {
    let mut out = String::new();
    loop {
        let (size, rest) = body
            .split_once("\r\n")
            .ok_or_else(|| invalid("a chunked answer is cut short"))?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| invalid("a chunked answer has a bad chunk size"))?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest
            .get(..size)
            .ok_or_else(|| invalid("a chunked answer is cut short"))?;
        out.push_str(chunk);
        body = rest.get(size..).and_then(|r| r.strip_prefix("\r\n")).unwrap_or("");
    }
}

impl KeyProvider for OpenBaoProvider {
    fn name(&self) -> &'static str {
        "openbao"
    }

    fn load(&self) -> Result<Keyring, CryptoError> {
        self.keyring(&Self::lines(&read_private(&self.file)?)?)
    }

    fn add_version(&self, now_secs: i64) -> Result<Keyring, CryptoError> {
        let mut lines = Self::lines(&read_private(&self.file)?)?;
        let version = lines
            .iter()
            .map(|(v, _, _)| *v)
            .max()
            .unwrap_or(0)
            .checked_add(1)
            .ok_or_else(|| invalid("no version number is left"))?;
        lines.push((version, self.encrypt(&SecretKey::generate()?)?, Some(now_secs)));
        let keyring = self.keyring(&lines)?;
        self.write(&lines)?;
        Ok(keyring)
    }

    fn remove_version(&self, version: u32) -> Result<Keyring, CryptoError> {
        let mut lines = Self::lines(&read_private(&self.file)?)?;
        let newest = lines.iter().map(|(v, _, _)| *v).max().unwrap_or(0);
        if !lines.iter().any(|(v, _, _)| *v == version) {
            return Err(CryptoError::UnknownKeyVersion(version));
        }
        if version == newest {
            return Err(invalid(format!(
                "version {version} is the newest, which wraps every new key; rotate first"
            )));
        }
        lines.retain(|(v, _, _)| *v != version);
        let keyring = self.keyring(&lines)?;
        self.write(&lines)?;
        Ok(keyring)
    }

    fn load_or_create(&self, now_secs: i64) -> Result<Keyring, CryptoError> {
        if self.file.exists() {
            return self.load();
        }
        let lines = vec![(1, self.encrypt(&SecretKey::generate()?)?, Some(now_secs))];
        let keyring = self.keyring(&lines)?;
        self.write(&lines)?;
        Ok(keyring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_answers_are_joined() {
        assert_eq!(dechunk("4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n").unwrap(), "{\"a\":1}");
        assert!(dechunk("zz\r\nabc").is_err());
        assert!(dechunk("9\r\nabc").is_err());
    }

    #[test]
    fn key_file_lines() {
        let lines =
            OpenBaoProvider::lines("# c\ncustodia-root-key-openbao-v1\n1 vault:v1:AAA 5\n2 vault:v1:BBB\n").unwrap();
        assert_eq!(
            lines,
            [
                (1, "vault:v1:AAA".to_owned(), Some(5)),
                (2, "vault:v1:BBB".to_owned(), None)
            ]
        );
        assert!(
            OpenBaoProvider::lines("1 vault:v1:AAA").is_err(),
            "the header is required"
        );
        assert!(OpenBaoProvider::lines("custodia-root-key-openbao-v1\nx vault:v1:A").is_err());
    }

    #[test]
    fn only_local_plain_http_and_safe_names() {
        assert!(segment("k", "custodia").is_ok());
        assert!(segment("k", "../sys").is_err());
        assert!(segment("k", "a b").is_err());
    }
}
