//! How far a long operation has come, for whoever shows it: the CLI draws a bar on a
//! terminal, the server and the tests pass `&()` and see nothing.
//!
//! The operations that take minutes on a large vault (verifying or exporting the audit log,
//! erasing again from the tombstone log) report through it; the sweeper and key rotation
//! report richer batches through their own callbacks.

/// Told the size of the work once known, then each step done.
pub trait Progress: Sync {
    /// The amount of work, in the operation's unit (entries, subjects): an estimate that the
    /// steps may pass.
    fn total(&self, _total: u64) {}
    /// `n` more units done.
    fn advance(&self, _n: u64) {}
}

/// Nothing shown.
impl Progress for () {}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Counts what an operation reported, for tests that the reports add up.
    #[derive(Default)]
    pub(crate) struct Counted {
        pub total: AtomicU64,
        pub done: AtomicU64,
    }

    impl super::Progress for Counted {
        fn total(&self, total: u64) {
            self.total.store(total, Ordering::Relaxed);
        }
        fn advance(&self, n: u64) {
            self.done.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn counts(p: &Counted) -> (u64, u64) {
        (p.total.load(Ordering::Relaxed), p.done.load(Ordering::Relaxed))
    }

    #[tokio::test]
    async fn verifying_and_exporting_the_log_report_every_entry() {
        let (_dir, vault, admin) = crate::package::tests::vault().await;
        // Entries dated now: the checkpoint refuses a log dated in the future.
        for n in 0..7 {
            let subject = crate::SubjectId::parse(&format!("s{n}")).unwrap();
            let values = [("email".to_owned(), format!("p{n}@example.com"))].into();
            let call = crate::Call::new(&admin, "order_fulfillment", crate::Timestamp::now());
            vault
                .create_record(&call, &subject, "customers", &values)
                .await
                .unwrap();
        }
        vault.checkpoint(crate::Timestamp::now()).await.unwrap();
        let trust = crate::AuditTrust {
            tag_key: None,
            link_key: None,
            key: vault.audit_verifier_key(),
            trusted: Vec::new(),
            now: crate::Timestamp::now(),
            max_unsigned_age: None,
            contiguous: true,
        };
        let verified = Counted::default();
        let report = crate::verify_audit_log(vault.store(), &trust, &verified).await.unwrap();
        let entries = report.entries;
        assert!(entries > 5, "{entries}");
        assert_eq!(counts(&verified), (entries, entries));

        let exported = Counted::default();
        let mut out = Vec::new();
        let written = crate::export_audit_log(vault.store(), &vault.audit_public_key(), &mut out, &exported)
            .await
            .unwrap();
        let written = u64::try_from(written).unwrap();
        assert_eq!(written, entries);
        assert_eq!(counts(&exported), (2 * written, 2 * written));
    }
}
