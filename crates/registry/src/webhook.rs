//! Webhook URLs (Art. 19 recipients): `https://` to anywhere, `http://` to the local host
//! only. One parser, so that `custodia check` refuses exactly what delivery would not send to
//! (a URL it accepted and the sender refused failed every notice, silently).

/// Where a webhook URL points, if the vault sends to it: the registry refuses a URL it
/// would not send to, and the sender reads it with the same function.
#[derive(Debug, PartialEq, Eq)]
pub enum WebhookTarget<'a> {
    /// `http://` to the local host: the authority as written (the `Host` header), the
    /// address to connect to, and the path.
    Local {
        authority: &'a str,
        connect: String,
        path: &'a str,
    },
    /// `https://`: the authority as written, the host the certificate must name, the address
    /// to connect to, and the path.
    Tls {
        authority: &'a str,
        host: &'a str,
        connect: String,
        path: &'a str,
    },
}

/// Parses a webhook URL: `http://` only to `localhost`, `127.0.0.1` or `[::1]` (with an
/// optional port), `https://` to anywhere; `None` for anything else (`http://localhost.evil`,
/// user info, fragments).
pub fn webhook_target(url: &str) -> Option<WebhookTarget<'_>> {
    let (tls, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => return None,
    };
    let (authority, path) = rest.find('/').map_or((rest, "/"), |at| rest.split_at(at));
    if path.contains('#') || authority.is_empty() || authority.contains(['?', '#', '@']) {
        return None;
    }
    let (host, port) = match authority.find(']') {
        Some(end) if authority.starts_with('[') => authority.split_at(end + 1),
        _ => authority.find(':').map_or((authority, ""), |at| authority.split_at(at)),
    };
    let port: u16 = match port.strip_prefix(':') {
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => digits.parse().ok()?,
        None if port.is_empty() => {
            if tls {
                443
            } else {
                80
            }
        }
        _ => return None,
    };
    // a name or an address, as a certificate can name it (`exa mple`, `%2e` are neither)
    let name = |h: &str| {
        !h.is_empty()
            && h.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    };
    let address = |h: &str| {
        h.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .is_some_and(|inner| inner.parse::<std::net::Ipv6Addr>().is_ok())
    };
    if !(name(host) || address(host)) {
        return None;
    }
    let connect = format!("{host}:{port}");
    if tls {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        return Some(WebhookTarget::Tls {
            authority,
            host,
            connect,
            path,
        });
    }
    if !["localhost", "127.0.0.1", "[::1]"].contains(&host) {
        return None;
    }
    Some(WebhookTarget::Local {
        authority,
        connect,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_http_and_https_webhooks_are_sent_to() {
        let local = |authority, connect: &str, path| {
            Some(WebhookTarget::Local {
                authority,
                connect: connect.to_owned(),
                path,
            })
        };
        assert_eq!(
            webhook_target("http://127.0.0.1:8080/hooks/art19?v=1"),
            local("127.0.0.1:8080", "127.0.0.1:8080", "/hooks/art19?v=1")
        );
        assert_eq!(
            webhook_target("http://localhost"),
            local("localhost", "localhost:80", "/")
        );
        assert_eq!(webhook_target("http://[::1]:9/x"), local("[::1]:9", "[::1]:9", "/x"));
        assert_eq!(
            webhook_target("https://recipient.example/hook"),
            Some(WebhookTarget::Tls {
                authority: "recipient.example",
                host: "recipient.example",
                connect: "recipient.example:443".to_owned(),
                path: "/hook",
            })
        );
        assert_eq!(
            webhook_target("https://[2001:db8::1]:8443"),
            Some(WebhookTarget::Tls {
                authority: "[2001:db8::1]:8443",
                host: "2001:db8::1",
                connect: "[2001:db8::1]:8443".to_owned(),
                path: "/",
            })
        );
        for url in [
            "https://",
            "https://user@recipient.example/",
            "https://recipient.example:x/",
            "https://exa mple.com/",
            "https://exa%6dple.com/",
            "https://.example/",
            "https://-x.example/",
            "https://[2001:db8::zz]/",
            "ftp://x/",
        ] {
            assert_eq!(webhook_target(url), None, "{url}");
        }
        for url in [
            "http://localhost.evil.example/hook",
            "http://localhost.invalid:8298/x",
            "http://localhostx.example/x",
            "http://127.0.0.1.evil.example/",
            "http://localhost@127.0.0.2:8298/userinfo",
            "http://user@localhost/",
            "http://127.0.0.2/x",
            "http://localhost:/",
            "http://localhost:99999/",
            "http://localhost:80x/",
            "http://localhost/#frag",
            "http://localhost?x",
            "http://[::1]x/",
            "http://example.com/",
            "ftp://localhost/",
        ] {
            assert_eq!(webhook_target(url), None, "{url}");
        }
    }
}
