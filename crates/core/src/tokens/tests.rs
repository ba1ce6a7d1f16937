use std::collections::{HashMap, HashSet};

use proptest::prelude::*;

use super::*;
use crate::DataDir;

fn random_token(ty: FieldType, value: &str, keep_last4: bool) -> String {
    shaped(ty, value, keep_last4, &mut Bytes::random()).unwrap()
}

#[test]
fn card_tokens_are_luhn_valid_and_keep_only_the_last_four_asked_for() {
    for _ in 0..200 {
        let t = random_token(FieldType::CardNumber, "4242424242424242", true);
        assert_eq!(t.len(), 16);
        assert!(t.ends_with("4242") && t.bytes().all(|b| b.is_ascii_digit()), "{t}");
        assert!(values::luhn(&t), "{t} is not Luhn-valid");
        assert_ne!(t, "4242424242424242");
        let t = random_token(FieldType::CardNumber, "5555555555554444", false);
        assert!(values::luhn(&t) && t.len() == 16, "{t}");
    }
}

/// Every format-preserving token is a valid value of its field's type, so it fits where the
/// value went.
#[test]
fn tokens_are_valid_values_of_their_type() {
    let cases = [
        (FieldType::CardNumber, "4242424242424242"),
        (FieldType::Phone, "+447700900123"),
        (FieldType::Date, "1984-02-29"),
        (FieldType::Iban, "GB82WEST12345698765432"),
        (FieldType::Email, "zoë.ødegård@example.com"),
        (FieldType::String, "Zoë Ødegård-Ñúñez"),
        (FieldType::Text, "1 Rue de l'Église\n75001 Paris"),
    ];
    for (ty, value) in cases {
        for _ in 0..100 {
            let t = random_token(ty, value, false);
            assert_eq!(values::normalize(ty, &t).as_deref(), Ok(t.as_str()), "{ty:?}: {t}");
            assert!(t.is_ascii(), "{ty:?}: {t}");
        }
    }
    let t = random_token(FieldType::Phone, "+447700900123", false);
    assert_eq!(t.len(), "+447700900123".len());
    assert!(!t.starts_with("+0"), "{t}");
}

/// The examples: names in other scripts and with accents leave no letter of theirs,
/// no non-ASCII character, no punctuation and no word length in their tokens.
#[test]
fn text_tokens_leave_no_letter_script_or_word_length() {
    let keys = crate::keys::tests::keys().tokens();
    for value in ["Zoë Ødegård-Ñúñez", "Алексей Smith", "Al", "-", "李小龙"] {
        let deterministic = |attempt| {
            let mut bytes = Bytes::keyed(&keys, "customers", "name", value, attempt, false);
            shaped(FieldType::String, value, false, &mut bytes).unwrap()
        };
        for t in [
            random_token(FieldType::String, value, false),
            deterministic(0),
            deterministic(1),
        ] {
            assert_eq!(t.len(), TEXT_TOKEN_LEN, "{value}: {t}");
            assert!(t.bytes().all(|b| b.is_ascii_alphabetic()), "{value}: {t}");
            assert!(t[1..].bytes().all(|b| b.is_ascii_lowercase()), "{value}: {t}");
        }
        assert_eq!(deterministic(0), deterministic(0));
        assert_ne!(
            deterministic(0),
            deterministic(1),
            "a re-derivation draws another token"
        );
    }
    let email = random_token(FieldType::Email, "zoë@ødegård.example", false);
    assert!(
        email.ends_with("@token.invalid") && email.len() == TEXT_TOKEN_LEN + 14,
        "{email}"
    );
}

// --- The vault: tokens claimed in the store, detokenized through the vault. ---

use crate::principal::tests::admin;

async fn vault() -> (tempfile::TempDir, Vault) {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path());
    data.init(None, Timestamp(1)).await.unwrap();
    let vault = data.open(None).await.unwrap();
    (dir, vault)
}

/// A minter whose format-preserving and deterministic tokens come from a space of `space`
/// tokens (`T0`, `T1`, ...), so that they collide all the time; rows as the vault makes them.
struct Crowded {
    minter: Minter,
    space: u8,
}

impl Draw for Crowded {
    fn len(&self) -> usize {
        self.minter.len()
    }

    fn draw(&self, i: usize, attempt: u32) -> Result<(String, TokenRow), VaultError> {
        let p = self.minter.pending(i)?;
        let (byte, binding) = match p.kind {
            TokenKind::Deterministic => {
                let keys = &self.minter.keys;
                let block = keys.block(&p.collection, &p.field, attempt << 8, &p.value)?;
                (block[0], Some(keys.binding(&p.collection, &p.field, &p.value)?))
            }
            _ => (random_array::<1>()?[0], None),
        };
        let token = format!("T{}", byte % self.space);
        let row = self.minter.row(p, &token, binding)?;
        Ok((token, row))
    }
}

/// Tokenizes `value` of `customers.name` for `subject` with `draw`n tokens.
async fn tokenize_crowded(
    vault: &Vault,
    subject: &str,
    kind: TokenKind,
    value: &str,
    space: u8,
) -> Result<String, VaultError> {
    let subject = SubjectId::parse(subject).unwrap();
    let field = vault.registry.collections["customers"].fields["name"].clone();
    let (key, sealed_under, fresh) = vault
        .keys
        .sealing_key(&vault.store, &subject, custodia_store::DEFAULT_KEY_CLASS, Timestamp(2))
        .await?;
    let minter = Minter {
        keys: vault.keys.tokens(),
        key,
        subject: subject.as_str().to_owned(),
        now: Timestamp(2),
        pending: vec![Pending::new("customers", &field, kind, false, value)],
        purpose: "payment".into(),
    };
    let draw = Crowded { minter, space };
    let mut tokens = vault.store_tokens(draw, sealed_under, fresh, None).await?;
    Ok(tokens.remove(0))
}

async fn detokenize(vault: &Vault, tokens: &[String]) -> Vec<Option<String>> {
    let req = DetokenizeRequest {
        purpose: "payment".into(),
        tokens: tokens.to_vec(),
    };
    let out = vault.detokenize(&admin(), Timestamp(3), &req).await.unwrap();
    out.values.into_iter().map(|v| v.value).collect()
}

/// The attack, in a space of 40 tokens: "Al" for one subject and "Bo" for another,
/// alternately, as format-preserving tokens. Every token returned detokenizes to its own
/// value; once the space is full, tokenizing is refused instead of handing out a taken token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_token_is_drawn_again_and_never_returned() {
    let (_dir, vault) = vault().await;
    let mut issued = Vec::new();
    let mut refused = 0;
    for n in 0..60 {
        let (subject, value) = if n % 2 == 0 { ("s1", "Al") } else { ("s2", "Bo") };
        match tokenize_crowded(&vault, subject, TokenKind::FormatPreserving, value, 40).await {
            Ok(token) => issued.push((token, value)),
            Err(e) => {
                assert_eq!(e.code, "token_space_exhausted", "{e}");
                refused += 1;
            }
        }
    }
    assert!(issued.len() >= 30 && issued.len() <= 40, "{} issued", issued.len());
    assert_eq!(issued.len() + refused, 60);
    let tokens: Vec<String> = issued.iter().map(|(t, _)| t.clone()).collect();
    assert_eq!(
        tokens.iter().collect::<HashSet<_>>().len(),
        tokens.len(),
        "no token twice"
    );
    let values = detokenize(&vault, &tokens).await;
    for ((token, value), got) in issued.iter().zip(values) {
        assert_eq!(got.as_deref(), Some(*value), "{token}");
    }
}

#[derive(Debug, Clone)]
struct Op {
    subject: &'static str,
    value: &'static str,
    deterministic: bool,
}

fn op() -> impl Strategy<Value = Op> {
    (
        prop::sample::select(vec!["s1", "s2", "s3"]),
        prop::sample::select(vec!["Al", "Bo", "Cy", "Zoë"]),
        any::<bool>(),
    )
        .prop_map(|(subject, value, deterministic)| Op {
            subject,
            value,
            deterministic,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// In a crowded token space (12 tokens), any sequence of tokenizations by any subjects:
    /// no two distinct values of the field ever share a token, a deterministic token is the
    /// same for every subject's same value, and every token detokenizes to the value it was
    /// issued for, never another subject's.
    #[test]
    fn tokens_never_collide_and_detokenize_to_their_own_value(ops in prop::collection::vec(op(), 1..24)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let (_dir, vault) = vault().await;
            let mut issued: Vec<(String, &str, &str)> = Vec::new();
            let mut deterministic: HashMap<&str, String> = HashMap::new();
            for op in &ops {
                let kind = if op.deterministic { TokenKind::Deterministic } else { TokenKind::FormatPreserving };
                match tokenize_crowded(&vault, op.subject, kind, op.value, 12).await {
                    Ok(token) => {
                        if op.deterministic {
                            let first = deterministic.entry(op.value).or_insert_with(|| token.clone());
                            prop_assert_eq!(&*first, &token, "a deterministic token repeats");
                        }
                        issued.push((token, op.subject, op.value));
                    }
                    Err(e) => prop_assert_eq!(e.code, "token_space_exhausted"),
                }
            }
            let mut values_of: HashMap<&str, HashSet<&str>> = HashMap::new();
            for (token, _, value) in &issued {
                values_of.entry(token).or_default().insert(value);
            }
            prop_assert!(values_of.values().all(|v| v.len() == 1), "{:?}", values_of);
            let tokens: Vec<String> = issued.iter().map(|(t, _, _)| t.clone()).collect();
            if !tokens.is_empty() {
                let got = detokenize(&vault, &tokens).await;
                for ((token, subject, value), got) in issued.iter().zip(got) {
                    prop_assert_eq!(got.as_deref(), Some(*value), "{} of {}", token, subject);
                }
            }
            Ok(())
        })?;
    }
}

/// Review of 2026-12-06 (helper-94): a token of a value stored in no record outlived every
/// retention rule. It expires as a value written when it was handed out would
/// (`customer_support`: a year after it was handed out, whatever the subject did since);
/// handed out again (a deterministic token), its time starts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_expires_as_the_value_it_stands_for_would() {
    use custodia_types::TokenizeRequest;
    let (_dir, vault) = vault().await;
    let day = 86_400_000;
    let t0 = 1_800_000_000_000;
    let req = |kind: &str| TokenizeRequest {
        subject_id: "no_record".into(),
        collection: "customers".into(),
        field: "phone".into(),
        purpose: "customer_support".into(),
        values: vec!["+442079460999".into()],
        kind: Some(kind.into()),
        keep_last4: false,
    };
    let mut tokens = Vec::new();
    for kind in ["random", "deterministic"] {
        tokens.extend(
            vault
                .tokenize(&admin(), Timestamp(t0), &req(kind), false)
                .await
                .unwrap(),
        );
    }
    let open = |at: i64, tokens: Vec<String>| {
        let vault = &vault;
        async move {
            let req = DetokenizeRequest {
                purpose: "customer_support".into(),
                tokens,
            };
            let out = vault.detokenize(&admin(), Timestamp(at), &req).await.unwrap();
            out.values.into_iter().map(|v| v.value).collect::<Vec<_>>()
        }
    };
    let phone = Some("+442079460999".to_owned());
    assert_eq!(open(t0 + day, tokens.clone()).await, [phone.clone(), phone.clone()]);
    let later = t0 + 400 * day;
    assert_eq!(open(later, tokens.clone()).await, [None, None], "expired with the rule");
    // the subject active again: what expired stays expired
    let subject = SubjectId::parse("no_record").unwrap();
    let operator = admin();
    vault
        .report_activity(
            &crate::Call::new(&operator, "customer_support", Timestamp(later)),
            &subject,
        )
        .await
        .unwrap();
    assert_eq!(
        open(later + 1, tokens.clone()).await,
        [None, None],
        "not revived by activity"
    );
    let again = vault
        .tokenize(&admin(), Timestamp(later), &req("deterministic"), false)
        .await
        .unwrap();
    assert_eq!(again, tokens[1..], "the same deterministic token");
    assert_eq!(
        open(later + day, tokens.clone()).await,
        [None, phone],
        "handed out again: renewed"
    );
}
