//! Fuzzing as plain tests (issue 17): proptest over arbitrary input and over mutations of
//! valid values made here, for everything that reads stored bytes or text back: field
//! envelopes, wrapped keys, key files and `CUSTODIA_ROOT_KEY`, blind index domains, Shamir
//! shares, TOTP secrets and codes, password hashes. Each must refuse bad input with a typed
//! error, never panic, and give valid input back unchanged.
//!
//! The case counts keep the run short in CI; `PROPTEST_CASES=100000 cargo test -p
//! custodia-crypto fuzz` fuzzes longer.

use proptest::prelude::*;
use proptest::sample::Index;

use crate::shamir;
use crate::{
    BlindIndexer, CryptoError, DataKey, Domain, FieldContext, IndexKey, Keyring, SecretKey, TotpRefusal, TotpSecret,
    verify_password,
};

/// Cases per property: `default`, or `PROPTEST_CASES` when it is set.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(default: u32) -> ProptestConfig {
    ProptestConfig {
        cases: cases(default),
        ..ProptestConfig::default()
    }
}

/// One change to a stored value.
#[derive(Debug, Clone)]
enum Mutation {
    /// XOR one byte with a non-zero mask.
    Flip(Index, u8),
    /// Keep only a prefix.
    Truncate(Index),
    /// Append bytes.
    Extend(Vec<u8>),
    /// Insert bytes somewhere.
    Insert(Index, Vec<u8>),
    /// Remove a run of bytes.
    Remove(Index, usize),
    /// Overwrite a run with bytes taken from another valid value (a splice).
    Splice(Index, Index, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let bytes = proptest::collection::vec(any::<u8>(), 1..24);
    prop_oneof![
        4 => (any::<Index>(), 1u8..=255).prop_map(|(i, m)| Mutation::Flip(i, m)),
        2 => any::<Index>().prop_map(Mutation::Truncate),
        1 => bytes.clone().prop_map(Mutation::Extend),
        1 => (any::<Index>(), bytes).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<Index>(), 1usize..24).prop_map(|(i, n)| Mutation::Remove(i, n)),
        2 => (any::<Index>(), any::<Index>(), 1usize..40).prop_map(|(i, j, n)| Mutation::Splice(i, j, n)),
    ]
}

/// One to four mutations, applied in order.
fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    proptest::collection::vec(mutation(), 1..=4)
}

/// `data` with `changes` applied; `donor` is another valid value that splices copy from.
fn mutate(data: &[u8], changes: &[Mutation], donor: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    for change in changes {
        match change {
            Mutation::Flip(i, mask) if !out.is_empty() => {
                let at = i.index(out.len());
                out[at] ^= mask;
            }
            Mutation::Flip(..) => {}
            Mutation::Truncate(i) => out.truncate(i.index(out.len() + 1)),
            Mutation::Extend(bytes) => out.extend_from_slice(bytes),
            Mutation::Insert(i, bytes) => {
                let at = i.index(out.len() + 1);
                out.splice(at..at, bytes.iter().copied());
            }
            Mutation::Remove(i, n) => {
                let at = i.index(out.len() + 1);
                let end = (at + n).min(out.len());
                out.drain(at..end);
            }
            Mutation::Splice(i, j, n) if !donor.is_empty() => {
                let at = i.index(out.len() + 1);
                let from = j.index(donor.len());
                let run = &donor[from..(from + n).min(donor.len())];
                let end = (at + run.len()).min(out.len());
                out.splice(at..end, run.iter().copied());
            }
            Mutation::Splice(..) => {}
        }
    }
    out
}

/// Arbitrary bytes, and bytes behind a well-formed version-1 header (so that they reach
/// the version check and the AEAD rather than stopping at the format byte).
fn stored_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..96),
        (any::<u32>(), proptest::collection::vec(any::<u8>(), 0..80)).prop_map(|(version, rest)| {
            let mut out = vec![0x01];
            out.extend_from_slice(&version.to_be_bytes());
            out.extend_from_slice(&rest);
            out
        }),
        proptest::collection::vec(any::<u8>(), 0..80).prop_map(|rest| [&[0x01, 0, 0, 0, 1][..], &rest].concat()),
    ]
}

fn ring() -> Keyring {
    let key = |b: u8| SecretKey::from_slice(&[b; 32]).unwrap();
    Keyring::from_keys(vec![(1, key(0x41)), (2, key(0x42))]).unwrap()
}

fn data_key() -> DataKey {
    DataKey::from_secret(1, &SecretKey::from_slice(&[0x11; 32]).unwrap()).unwrap()
}

const PLACE: FieldContext<'static> = FieldContext {
    collection: "customers",
    subject: "cus_1",
    record: "rec_1",
    field: "email",
};

/// The error a field envelope (or a wrapped key, whose header is laid out the same way) must
/// be refused with: format for a short text or a format byte not in `formats`, unknown
/// version for a version the key (ring) does not have, authentication for everything else.
fn expected_refusal(sealed: &[u8], formats: &[u8], known_version: impl Fn(u32) -> bool) -> &'static str {
    if sealed.len() < 1 + 4 + 12 + 16 || !formats.contains(&sealed[0]) {
        return "format";
    }
    let version = u32::from_be_bytes([sealed[1], sealed[2], sealed[3], sealed[4]]);
    if known_version(version) { "decrypt" } else { "version" }
}

/// The format bytes a field envelope may carry (v2 padded, v1 unpadded), and a wrapped key.
const FIELD_FORMATS: &[u8] = &[0x01, 0x02];
const KEY_FORMATS: &[u8] = &[0x01];

fn refusal(error: &CryptoError) -> &'static str {
    match error {
        CryptoError::Format(_) => "format",
        CryptoError::UnknownKeyVersion(_) => "version",
        CryptoError::Decrypt => "decrypt",
        _ => "other",
    }
}

/// Registry names (`[a-z][a-z0-9_]{0,62}`) and strings that are nearly, or not at all.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9_]{0,62}",
        "[a-z][a-z0-9_]{60,66}",
        "[a-zA-Z0-9_:\\x00/ -]{0,12}",
        any::<String>(),
    ]
}

fn is_registry_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
}

proptest! {
    #![proptest_config(config(256))]

    /// The ciphertext decoder refuses arbitrary bytes with the typed error their header
    /// calls for, and never panics.
    #[test]
    fn envelope_refuses_arbitrary_bytes(sealed in stored_bytes()) {
        let err = data_key().open(&PLACE, &sealed).unwrap_err();
        prop_assert_eq!(refusal(&err), expected_refusal(&sealed, FIELD_FORMATS, |v| v == 1), "{:?}", err);
    }

    /// Every mutation of a valid envelope (flips, truncations, extensions, insertions,
    /// removals, splices from another envelope) is refused with its typed error; the
    /// unchanged envelope opens to its value.
    #[test]
    fn envelope_mutations_are_refused(
        value in proptest::collection::vec(any::<u8>(), 0..64),
        changes in mutations(),
    ) {
        let key = data_key();
        let sealed = key.seal(&PLACE, &value).unwrap();
        let donor = key.seal(&FieldContext { field: "phone", ..PLACE }, b"+44 20 7123 4567").unwrap();
        let changed = mutate(&sealed, &changes, &donor);
        match key.open(&PLACE, &changed) {
            Ok(opened) => {
                prop_assert_eq!(&changed, &sealed, "a changed envelope opened");
                prop_assert_eq!(opened, value);
            }
            Err(err) => {
                prop_assert_ne!(&changed, &sealed);
                prop_assert_eq!(refusal(&err), expected_refusal(&changed, FIELD_FORMATS, |v| v == 1), "{:?}", err);
            }
        }
    }

    /// Envelopes round-trip for any value, key version and place, and open nowhere else.
    #[test]
    fn envelope_round_trips_and_stays_in_place(
        value in proptest::collection::vec(any::<u8>(), 0..256),
        version in any::<u32>(),
        subject in any::<String>(),
        record in any::<String>(),
        field in any::<String>(),
        other in any::<String>(),
    ) {
        let key = DataKey::from_secret(version, &SecretKey::from_slice(&[0x22; 32]).unwrap()).unwrap();
        let place = FieldContext { collection: "customers", subject: &subject, record: &record, field: &field };
        let sealed = key.seal(&place, &value).unwrap();
        prop_assert_eq!(key.open(&place, &sealed).unwrap(), value);
        if other != field {
            let elsewhere = FieldContext { field: &other, ..place };
            prop_assert!(matches!(key.open(&elsewhere, &sealed), Err(CryptoError::Decrypt)));
        }
    }

    /// Wrapped keys (data keys, the index key) refuse arbitrary bytes with a typed error.
    #[test]
    fn wrapped_key_refuses_arbitrary_bytes(wrapped in stored_bytes()) {
        let ring = ring();
        let err = ring.unwrap("custodia.dek.v1", b"cus_1", &wrapped).unwrap_err();
        prop_assert_eq!(refusal(&err), expected_refusal(&wrapped, KEY_FORMATS, |v| v == 1 || v == 2), "{:?}", err);
        prop_assert!(DataKey::unwrap(&ring, "cus_1", 1, &wrapped).is_err());
        prop_assert!(IndexKey::unwrap(&ring, &wrapped).is_err());
        prop_assert!(DataKey::rewrap(&ring, "cus_1", &wrapped).is_err());
    }

    /// Every mutation of a wrapped key is refused with its typed error, including one that
    /// moves it to the other root key version; the unchanged one unwraps to its key.
    #[test]
    fn wrapped_key_mutations_are_refused(changes in mutations(), secret in any::<[u8; 32]>()) {
        let ring = ring();
        let wrapped = ring.wrap("custodia.dek.v1", b"cus_1", &SecretKey::from_slice(&secret).unwrap()).unwrap().0;
        let (_, donor) = IndexKey::generate(&ring).unwrap();
        let changed = mutate(&wrapped, &changes, &donor.0);
        match ring.unwrap("custodia.dek.v1", b"cus_1", &changed) {
            Ok(key) => {
                prop_assert_eq!(&changed, &wrapped, "a changed wrapped key unwrapped");
                prop_assert_eq!(key.expose(), &secret);
            }
            Err(err) => {
                prop_assert_ne!(&changed, &wrapped);
                prop_assert_eq!(refusal(&err), expected_refusal(&changed, KEY_FORMATS, |v| v == 1 || v == 2), "{:?}", err);
            }
        }
    }

    /// A wrapped key round-trips through a rewrap to the newest version, and is bound to its
    /// label and owner.
    #[test]
    fn wrapped_keys_round_trip(secret in any::<[u8; 32]>(), owner in any::<String>(), other in any::<String>()) {
        let old = Keyring::from_keys(vec![(1, SecretKey::from_slice(&[0x41; 32]).unwrap())]).unwrap();
        let wrapped = old.wrap("custodia.dek.v1", owner.as_bytes(), &SecretKey::from_slice(&secret).unwrap()).unwrap();
        let ring = ring();
        let rewrapped = ring.rewrap("custodia.dek.v1", owner.as_bytes(), &wrapped.0).unwrap();
        prop_assert_eq!(rewrapped.0[1..5].to_vec(), 2u32.to_be_bytes().to_vec());
        for w in [&wrapped, &rewrapped] {
            let key = ring.unwrap("custodia.dek.v1", owner.as_bytes(), &w.0).unwrap();
            prop_assert_eq!(key.expose(), &secret);
            prop_assert!(ring.unwrap("custodia.index-key.v1", owner.as_bytes(), &w.0).is_err());
            if other != owner {
                prop_assert!(ring.unwrap("custodia.dek.v1", other.as_bytes(), &w.0).is_err());
            }
        }
    }

    /// `CUSTODIA_ROOT_KEY` values: arbitrary text, and mutations of a valid value, are
    /// refused with a typed error or give a keyring; never a panic.
    #[test]
    fn root_key_env_never_panics(
        text in prop_oneof![
            any::<String>(),
            "[0-9:, A-Za-z+/=]{0,120}",
            (proptest::collection::vec((any::<u32>(), any::<[u8; 32]>()), 1..4), any::<Index>(), "[0-9:,= ]{0,3}")
                .prop_map(|(keys, at, noise)| {
                    use base64::Engine;
                    let mut text = keys.iter()
                        .map(|(v, k)| format!("{v}:{}", base64::engine::general_purpose::STANDARD.encode(k)))
                        .collect::<Vec<_>>()
                        .join(",");
                    let at = at.index(text.len() + 1);
                    text.insert_str(at, &noise);
                    text
                }),
        ],
    ) {
        match Keyring::parse_env(&text) {
            Ok(ring) => prop_assert!(ring.current_version() >= 1),
            Err(err) => prop_assert!(matches!(err, CryptoError::InvalidRootKey(_)), "{:?}", err),
        }
    }

    /// Blind index (and other keyed digest) domains: a digest is made exactly when the
    /// collection and field are registry names, refused as `InvalidDomain` otherwise, for any
    /// value; and it is deterministic.
    #[test]
    fn blind_index_inputs_are_checked(
        collection in name(),
        field in name(),
        value in any::<String>(),
        counter in any::<u32>(),
    ) {
        let indexer = BlindIndexer::new(IndexKey::from_secret(SecretKey::from_slice(&[0x01; 32]).unwrap()));
        let valid = is_registry_name(&collection) && is_registry_name(&field);
        let domains = [
            Domain::Field { collection: &collection, field: &field },
            Domain::DeterministicToken { collection: &collection, field: &field, counter },
            Domain::TokenValue { collection: &collection, field: &field },
        ];
        for domain in domains {
            match indexer.digest(domain, &value) {
                Ok(digest) => {
                    prop_assert!(valid, "{:?} accepted", domain);
                    prop_assert_eq!(digest, indexer.digest(domain, &value).unwrap());
                }
                Err(err) => {
                    prop_assert!(!valid, "{:?} refused: {}", domain, err);
                    prop_assert!(matches!(err, CryptoError::InvalidDomain));
                }
            }
        }
        for domain in [Domain::ContextSigner { signer: &field }, Domain::WebhookSecret { recipient: &field }] {
            prop_assert_eq!(indexer.derived_key(domain).is_ok(), is_registry_name(&field));
        }
    }

    /// Shamir shares: arbitrary text is refused; shares of a split give the secret back,
    /// and mutated shares give an error or the same secret, never a wrong one.
    #[test]
    fn shamir_shares_are_checked(
        junk in proptest::collection::vec(
            prop_oneof![any::<String>(), "custodia-share-v1:[0-9]{1,3}:[0-9]{1,3}:[A-Za-z0-9+/=]{0,12}:[0-9a-f]{0,16}"],
            0..4,
        ),
        secret in proptest::collection::vec(any::<u8>(), 0..48),
        (k, n) in (2u8..5).prop_flat_map(|k| (Just(k), k..7)),
        change in (any::<Index>(), any::<Index>(), any::<char>()),
    ) {
        let junk: Vec<&str> = junk.iter().map(String::as_str).collect();
        prop_assert!(shamir::combine(&junk).is_err());
        let shares = shamir::split(&secret, k, n).unwrap();
        let mut given: Vec<String> = shares.iter().map(|s| s.to_string()).collect();
        let back = shamir::combine(&given.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
        prop_assert_eq!(back.as_slice(), secret.as_slice());
        let (which, at, c) = change;
        let share = &mut given[which.index(usize::from(n))];
        let mut chars: Vec<char> = share.chars().collect();
        let at = at.index(chars.len());
        chars[at] = c;
        *share = chars.into_iter().collect();
        if let Ok(back) = shamir::combine(&given.iter().map(String::as_str).collect::<Vec<_>>()) {
            prop_assert_eq!(back.as_slice(), secret.as_slice());
        }
    }

    /// TOTP secrets in base32 round-trip, arbitrary text is read or refused, and codes are
    /// checked at any time (the whole `i64` range) without a panic.
    #[test]
    fn totp_inputs_never_panic(
        secret in proptest::collection::vec(any::<u8>(), 0..40),
        text in any::<String>(),
        code in prop_oneof![any::<String>(), "[0-9 ]{0,8}"],
        now in prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), 0i64..100],
        last in proptest::option::of(any::<i64>()),
    ) {
        let totp = TotpSecret::from_bytes(&secret);
        let back = TotpSecret::from_base32(&totp.to_base32()).unwrap();
        prop_assert_eq!(back.expose(), secret.as_slice());
        let _ = TotpSecret::from_base32(&text);
        match totp.verify(&code, now, last) {
            Ok(step) => prop_assert!(last.is_none_or(|l| step > l)),
            Err(r) => prop_assert!(matches!(r, TotpRefusal::Malformed | TotpRefusal::Wrong | TotpRefusal::Reused)),
        }
        if now >= 30 {
            // The code of the current step is accepted (as the first step of the window that
            // gives it: one before may give the same six digits).
            let step = crate::totp_step(now);
            let code = totp.code_at_step(step);
            let accepted = totp.verify(&code, now, None).unwrap();
            prop_assert!((step - 1..=step).contains(&accepted));
            prop_assert_eq!(totp.code_at_step(accepted), code);
        }
    }

    /// A stored password hash that is not an Argon2id PHC string verifies nothing.
    #[test]
    fn malformed_password_hashes_refuse(
        stored in prop_oneof![
            any::<String>(),
            "\\$argon2id\\$[a-z0-9=,$]{0,30}",
            // A salt but no hash: parsed, then refused without an Argon2 run.
            "\\$argon2id\\$v=19\\$m=19456,t=2,p=1\\$[A-Za-z0-9+/]{0,60}",
        ],
        password in any::<String>(),
    ) {
        prop_assert!(!verify_password(&password, &stored));
    }
}

/// Key files: arbitrary text, and mutations of a valid file, are refused with a typed error
/// or give a keyring; never a panic. A file per case, so fewer cases.
#[test]
fn key_files_never_panic() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("root.key");
    let valid = format!(
        "# comment\ncustodia-root-key-v1\n1 {} 100\n2 {}\n",
        b64.encode([7u8; 32]),
        b64.encode([8u8; 32])
    );
    let texts = prop_oneof![
        any::<String>(),
        Just(valid.clone()),
        (any::<Index>(), any::<Index>(), "[0-9 #\\n=A-Za-z+/-]{0,8}").prop_map(move |(at, len, noise)| {
            let mut chars: Vec<char> = valid.chars().collect();
            let at = at.index(chars.len() + 1);
            let end = (at + len.index(6)).min(chars.len());
            chars.splice(at..end, noise.chars());
            chars.into_iter().collect::<String>()
        }),
    ];
    let mut runner = proptest::test_runner::TestRunner::new(config(48));
    runner
        .run(&texts, |text| {
            std::fs::write(&path, &text).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
            match Keyring::load_file(&path) {
                Ok(ring) => prop_assert!(ring.current_version() >= 1),
                Err(err) => prop_assert!(matches!(err, CryptoError::InvalidRootKey(_)), "{:?}", err),
            }
            Ok(())
        })
        .unwrap();
}
