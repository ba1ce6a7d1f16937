//! `custodia webhook-secret`: the secret Art. 19 notices to a recipient are signed with.

use crate::support::{Vault, custodia};

#[test]
fn webhook_secret_prints_a_key_per_recipient_and_refuses_unknown_ones() {
    let vault = Vault::init();
    let secret = |recipient: &str| {
        custodia()
            .args(["webhook-secret", recipient, "--data-dir"])
            .arg(vault.path())
            .output()
            .unwrap()
    };
    let carrier = secret("parcel_carrier");
    assert!(carrier.status.success(), "{}", String::from_utf8_lossy(&carrier.stderr));
    let carrier = String::from_utf8(carrier.stdout).unwrap();
    assert_eq!(hex::decode(carrier.trim()).unwrap().len(), 32);
    let again = String::from_utf8(secret("parcel_carrier").stdout).unwrap();
    assert_eq!(carrier, again, "derived, not drawn: the same each time");
    let other = String::from_utf8(secret("payment_processor").stdout).unwrap();
    assert_ne!(carrier, other);
    let unknown = secret("nobody");
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no recipient `nobody`"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
}
