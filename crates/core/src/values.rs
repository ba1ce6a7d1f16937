//! Field values by type: validation, the normalized form that is stored, the form a blind
//! index is computed over, and type-aware masks. Error messages name the rule broken, never
//! the value.

use custodia_registry::FieldType;

/// Longest `string` value, in bytes.
pub const MAX_STRING_LEN: usize = 1024;
/// Longest `text` value, in bytes.
pub const MAX_TEXT_LEN: usize = 16 * 1024;

/// Validates `raw` as a value of type `ty` and returns the form to store.
pub fn normalize(ty: FieldType, raw: &str) -> Result<String, String> {
    match ty {
        FieldType::Email => email(raw),
        FieldType::Phone => phone(raw),
        FieldType::Date => date(raw),
        FieldType::CardNumber => card_number(raw),
        FieldType::Iban => iban(raw),
        FieldType::String => text(raw, MAX_STRING_LEN, false),
        FieldType::Text => text(raw, MAX_TEXT_LEN, true),
    }
}

/// The form a blind index is computed over: equal for values that mean the same.
#[must_use]
pub fn index_form(ty: FieldType, stored: &str) -> String {
    match ty {
        FieldType::Email => stored.to_lowercase(),
        FieldType::String | FieldType::Text => stored.trim().to_lowercase(),
        FieldType::Phone | FieldType::Date | FieldType::CardNumber | FieldType::Iban => stored.to_owned(),
    }
}

fn email(raw: &str) -> Result<String, String> {
    let v = raw.trim();
    if v.len() > 254 {
        return Err("an email address is at most 254 characters".into());
    }
    let (local, domain) = v.rsplit_once('@').ok_or("an email address needs an @")?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    if !local_ok {
        return Err("the part before @ is not a valid email local part".into());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    if !domain_ok {
        return Err("the part after @ is not a valid domain name".into());
    }
    Ok(v.to_owned())
}

fn phone(raw: &str) -> Result<String, String> {
    let compact: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    let digits = compact
        .strip_prefix('+')
        .ok_or("a phone number must be in international E.164 form, starting with + and the country code")?;
    if !(8..=15).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) || digits.starts_with('0') {
        return Err("a phone number must be + followed by 8 to 15 digits, the first not 0 (E.164)".into());
    }
    Ok(compact)
}

fn date(raw: &str) -> Result<String, String> {
    let v = raw.trim();
    let b = v.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return Err("a date must be YYYY-MM-DD".into());
    }
    let num = |s: &str| s.parse::<u32>().unwrap_or(0);
    let (y, m, d) = (num(&v[0..4]), num(&v[5..7]), num(&v[8..10]));
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err("a date's month must be 01 to 12".into()),
    };
    if y == 0 || d == 0 || d > days {
        return Err("that day does not exist in that month".into());
    }
    Ok(v.to_owned())
}

fn card_number(raw: &str) -> Result<String, String> {
    let digits: String = raw.trim().chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    if !(12..=19).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err("a card number is 12 to 19 digits (spaces and dashes allowed)".into());
    }
    if !luhn(&digits) {
        return Err("the card number fails its Luhn check digit".into());
    }
    Ok(digits)
}

/// The Luhn (mod 10) check over a string of ASCII digits.
#[must_use]
pub fn luhn(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, c) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(c.wrapping_sub(b'0'));
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

fn iban(raw: &str) -> Result<String, String> {
    let v: String = raw
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    let b = v.as_bytes();
    let shape = (15..=34).contains(&b.len())
        && b[0].is_ascii_uppercase()
        && b[1].is_ascii_uppercase()
        && b[2].is_ascii_digit()
        && b[3].is_ascii_digit()
        && b.iter().all(u8::is_ascii_alphanumeric);
    if !shape {
        return Err("an IBAN is a country code, two check digits and 11 to 30 letters or digits".into());
    }
    let rearranged = v[4..].bytes().chain(v[..4].bytes());
    let mut rem = 0u32;
    for c in rearranged {
        if c.is_ascii_digit() {
            rem = (rem * 10 + u32::from(c - b'0')) % 97;
        } else {
            rem = (rem * 100 + u32::from(c - b'A' + 10)) % 97;
        }
    }
    if rem != 1 {
        return Err("the IBAN fails its mod-97 check digits".into());
    }
    Ok(v)
}

fn text(raw: &str, max: usize, multiline: bool) -> Result<String, String> {
    if raw.trim().is_empty() {
        return Err("a value must not be empty (to erase a field, send null in a PATCH)".into());
    }
    if raw.len() > max {
        return Err(format!("a value of this type is at most {max} bytes"));
    }
    let allowed = |c: char| !c.is_control() || (multiline && matches!(c, '\n' | '\r' | '\t'));
    if !raw.chars().all(allowed) {
        return Err(if multiline {
            "control characters other than newline and tab are not allowed".into()
        } else {
            "control characters (including newlines) are not allowed in a string field; use type text".into()
        });
    }
    Ok(raw.to_owned())
}

/// A type-aware mask that keeps just enough to recognize a value.
#[must_use]
pub fn mask(ty: FieldType, stored: &str) -> String {
    let stars = |n: usize| "*".repeat(n);
    match ty {
        FieldType::Email => match stored.rsplit_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            None => stars(8),
        },
        FieldType::Phone => {
            let digits = stored.trim_start_matches('+');
            if digits.len() > 5 {
                format!(
                    "+{} {} {}",
                    &digits[..2],
                    stars(digits.len() - 5),
                    &digits[digits.len() - 3..]
                )
            } else {
                stars(8)
            }
        }
        FieldType::CardNumber => {
            let last4 = stored.get(stored.len().saturating_sub(4)..).unwrap_or("");
            format!("**** **** **** {last4}")
        }
        FieldType::Iban => {
            let (head, tail) = (
                stored.get(..4).unwrap_or(""),
                stored.get(stored.len().saturating_sub(4)..).unwrap_or(""),
            );
            format!("{head} **** **** {tail}")
        }
        FieldType::Date => format!("{}-**-**", stored.get(..4).unwrap_or("****")),
        FieldType::String | FieldType::Text => {
            let first: String = stored.chars().take(1).collect();
            format!("{first}***")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FieldType::*;

    #[test]
    fn emails() {
        assert_eq!(
            normalize(Email, " Alice.Smith@Example.com ").unwrap(),
            "Alice.Smith@Example.com"
        );
        for bad in [
            "",
            "a",
            "a@",
            "@b.co",
            "a@b",
            "a@b.c",
            "a..b@c.co",
            "a@-b.co",
            "a b@c.co",
            "a@b_c.co",
            ".a@b.co",
        ] {
            assert!(normalize(Email, bad).is_err(), "{bad}");
        }
        assert_eq!(index_form(Email, "Alice@Example.COM"), "alice@example.com");
    }

    #[test]
    fn phones() {
        assert_eq!(normalize(Phone, "+44 20 7946 0958").unwrap(), "+442079460958");
        assert_eq!(normalize(Phone, "+1 (415) 555-0100").unwrap(), "+14155550100");
        for bad in [
            "",
            "020 7946 0958",
            "+0 20 7946 0958",
            "+44",
            "+4412345678901234",
            "+44 20 79x6 0958",
        ] {
            assert!(normalize(Phone, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates() {
        assert!(normalize(Date, "2000-02-29").is_ok());
        for bad in [
            "1900-02-29",
            "2001-02-29",
            "2020-13-01",
            "2020-04-31",
            "2020-1-01",
            "20200101",
            "0000-01-01",
            "2020-01-00",
        ] {
            assert!(normalize(Date, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cards() {
        assert_eq!(
            normalize(CardNumber, "4242 4242 4242 4242").unwrap(),
            "4242424242424242"
        );
        assert_eq!(
            normalize(CardNumber, "2223-0031-2200-3222").unwrap(),
            "2223003122003222"
        );
        for bad in [
            "4242 4242 4242 4241",
            "4242",
            "abcd efgh ijkl mnop",
            "42424242424242424242",
        ] {
            assert!(normalize(CardNumber, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ibans() {
        assert_eq!(
            normalize(Iban, "gb82 west 1234 5698 7654 32").unwrap(),
            "GB82WEST12345698765432"
        );
        assert!(normalize(Iban, "DE89370400440532013000").is_ok());
        assert!(normalize(Iban, "GB82WEST12345698765433").is_err());
        assert!(normalize(Iban, "GB82").is_err());
    }

    #[test]
    fn strings_and_text() {
        assert!(normalize(String, "Ada Lovelace").is_ok());
        assert!(normalize(String, "  ").is_err());
        assert!(normalize(String, "two\nlines").is_err());
        assert!(normalize(Text, "1 Main St\nLondon").is_ok());
        assert!(normalize(Text, "bell\u{7}").is_err());
        assert!(normalize(String, &"x".repeat(MAX_STRING_LEN + 1)).is_err());
    }

    #[test]
    fn masks() {
        assert_eq!(mask(Email, "jane@example.com"), "j***@example.com");
        assert_eq!(mask(CardNumber, "4242424242424242"), "**** **** **** 4242");
        assert_eq!(mask(Phone, "+441234567789"), "+44 ******* 789");
        assert_eq!(mask(Date, "1990-05-17"), "1990-**-**");
        assert_eq!(mask(String, "Ada"), "A***");
    }
}
