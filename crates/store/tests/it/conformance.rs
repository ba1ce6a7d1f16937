//! One behaviour contract, every backend.

use custodia_store::{
    Activity, AuditColumns, AuditRow, Binding, BindingTimes, CheckpointRow, DeliveryAttempt, DeliveryState, Ending,
    ErasureRow, FieldValue, HoldRow, IndexEntry, LedgerRow, NewNotification, NewRecord, NotificationRow, PageOf,
    PrincipalRow, RecordCursor, RecordPatch, RequestQuery, RequestRow, Store, StoreError, StoredRecord, SubjectKeyRow,
    Target, TokenRow, UsableBy,
};

use crate::ops::*;

fn field(name: &str, ct: &[u8]) -> FieldValue {
    FieldValue {
        field: name.into(),
        ciphertext: ct.to_vec(),
        key_class: "default".into(),
        binding: Some(binding("p", 0, None)),
    }
}

fn binding(purpose: &str, at: i64, expires_at: Option<i64>) -> Binding {
    Binding {
        purpose: purpose.into(),
        bound_at: at,
        renewed_at: at,
        ended_at: None,
        expires_at,
    }
}

pub(crate) fn new_record(id: &str, subject: &str, now: i64) -> NewRecord {
    NewRecord {
        sealed_under: key_of(subject),
        fresh_key: true,
        record_id: id.into(),
        subject_id: subject.into(),
        collection: "customers".into(),
        now,
        fields: vec![field("name", b"ct-name"), field("email", b"ct-email")],
        index: vec![IndexEntry {
            field: "email".into(),
            digest: vec![1; 16],
        }],
        activity: None,
    }
}

/// The one data key each test subject uses (a stand-in: the store never opens it).
pub(crate) fn key_of(subject: &str) -> SubjectKeyRow {
    SubjectKeyRow {
        subject_id: subject.into(),
        key_class: "default".into(),
        key_version: 1,
        wrapped_key: subject.as_bytes().to_vec(),
        created_at: 0,
        first_wrap: None,
    }
}

/// One record, or `None`.
async fn one(s: &Store, subject: &str, collection: &str, id: &str) -> Option<StoredRecord> {
    let found = record(s, subject, collection, id).await.unwrap()?;
    assert_eq!(
        found.key("default"),
        Some(&key_of(subject)),
        "a read returns the subject's key"
    );
    assert!(found.records.len() <= 1);
    found.records.into_iter().next()
}

/// Every record of a subject in a collection.
async fn all(s: &Store, subject: &str, collection: &str) -> Vec<StoredRecord> {
    records(s, subject, collection)
        .await
        .unwrap()
        .map(|f| f.records)
        .unwrap_or_default()
}

pub async fn meta_is_set_once(s: &Store) {
    assert_eq!(get_meta(s, "index_key").await.unwrap(), None);
    assert!(insert_meta(s, "index_key", b"one").await.unwrap());
    assert!(!insert_meta(s, "index_key", b"two").await.unwrap());
    assert_eq!(get_meta(s, "index_key").await.unwrap().as_deref(), Some(&b"one"[..]));
}

pub async fn subject_key_first_writer_wins(s: &Store) {
    assert_eq!(subject_key(s, "s1").await.unwrap(), None);
    let first = SubjectKeyRow {
        subject_id: "s1".into(),
        key_class: "default".into(),
        key_version: 1,
        wrapped_key: vec![1, 2, 3],
        created_at: 10,
        first_wrap: None,
    };
    let mut rec = new_record("r1", "s1", 10);
    rec.sealed_under = first.clone();
    insert_record(s, &rec).await.unwrap();
    assert_eq!(subject_key(s, "s1").await.unwrap(), Some(first.clone()));

    // A later record naming the same key is fine; naming another key fails whole.
    let mut same = new_record("r2", "s1", 11);
    same.sealed_under = first.clone();
    insert_record(s, &same).await.unwrap();
    let mut other = new_record("r3", "s1", 12);
    other.sealed_under = SubjectKeyRow {
        wrapped_key: vec![9, 9],
        created_at: 12,
        first_wrap: None,
        ..first.clone()
    };
    let err = insert_record(s, &other).await.unwrap_err();
    assert!(matches!(err, StoreError::SubjectKeyConflict), "{err:?}");
    assert!(
        record(s, "s1", "customers", "r3")
            .await
            .unwrap()
            .unwrap()
            .records
            .is_empty(),
        "nothing of the refused record"
    );
    assert_eq!(
        subject_key(s, "s1").await.unwrap(),
        Some(first),
        "the first stored key stays"
    );
}

pub async fn record_round_trip_and_order(s: &Store) {
    insert_record(s, &new_record("r2", "s1", 200)).await.unwrap();
    insert_record(s, &new_record("r1", "s1", 100)).await.unwrap();
    let mut empty = new_record("r3", "s1", 300);
    empty.fields.clear();
    empty.index.clear();
    insert_record(s, &empty).await.unwrap();

    let first = one(s, "s1", "customers", "r1").await.unwrap();
    assert_eq!(first.created_at, 100);
    assert_eq!(first.updated_at, 100);
    let names: Vec<_> = first.fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(names, ["email", "name"], "fields come sorted by name");
    assert_eq!(first.fields[0].ciphertext, b"ct-email");
    assert_eq!(first.fields[0].bindings, [binding("p", 0, None)]);

    let every = all(s, "s1", "customers").await;
    let ids: Vec<_> = every.iter().map(|r| r.record_id.as_str()).collect();
    assert_eq!(ids, ["r1", "r2", "r3"], "records come oldest first");
    assert!(every[2].fields.is_empty());
    assert_eq!(find_by_index(s, "customers", "email", &[1; 16]).await.unwrap().len(), 2);
    assert!(
        find_by_index(s, "customers", "email", &[2; 16])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        find_by_index(s, "customers", "phone", &[1; 16])
            .await
            .unwrap()
            .is_empty()
    );
}

/// A subject's records in every collection, read a page at a time: in the order (collection,
/// created_at, record_id), each once, with their fields, none of another subject's; a
/// record written before the cursor while paging does not shift the pages.
/// What a subject's records in a collection weigh as stored, before they are read.
/// A page of `subject`'s records (every collection, every record unless named).
fn page_of<'a>(subject: &'a str, after: Option<&'a RecordCursor>, limit: i64) -> PageOf<'a> {
    PageOf {
        subject_id: subject,
        collection: None,
        usable_by: None,
        after,
        limit,
    }
}

fn usable_by<'a>(purposes: &'a [&'a str], fields: &'a [&'a str], at: i64) -> UsableBy<'a> {
    UsableBy { purposes, fields, at }
}

/// A page passes over, in the database, the records none of whose values a read could use
/// through the bindings' stored columns: of another purpose, of another field, or expired
/// by their stored expiry (at it, or before); and weighs what it would show.
pub async fn pages_pass_over_what_no_read_may_use(s: &Store) {
    let mut u2 = new_record("u2", "s1", 200);
    u2.fields[0].binding = Some(binding("p", 200, Some(500)));
    let mut u3 = new_record("u3", "s1", 300);
    u3.fields[0].binding = Some(binding("q", 300, None));
    u3.fields.truncate(1);
    let mut u4 = new_record("u4", "s1", 400);
    u4.fields.clear();
    u4.index.clear();
    for r in [new_record("u1", "s1", 100), u2, u3, u4] {
        insert_record(s, &r).await.unwrap();
    }
    let listed = |usable: UsableBy<'static>| async move {
        let page = PageOf {
            usable_by: Some(usable),
            ..page_of("s1", None, 10)
        };
        let mut reader = s.reader().await.unwrap();
        let ids: Vec<String> = reader
            .records()
            .page_of_subject(page)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.record_id)
            .collect();
        let weight = reader.records().page_weight(page).await.unwrap();
        assert_eq!(weight.records, ids.len() as u64, "a page weighs what it shows: {ids:?}");
        ids
    };
    assert_eq!(listed(usable_by(&["p"], &["name", "email"], 1000)).await, ["u1", "u2"]);
    assert_eq!(
        listed(usable_by(&["p"], &["name"], 1000)).await,
        ["u1"],
        "u2's name expired"
    );
    assert_eq!(listed(usable_by(&["p"], &["name"], 499)).await, ["u1", "u2"]);
    assert_eq!(
        listed(usable_by(&["p"], &["name"], 500)).await,
        ["u1"],
        "expired at its expiry"
    );
    assert_eq!(listed(usable_by(&["p"], &["email"], 1000)).await, ["u1", "u2"]);
    assert_eq!(listed(usable_by(&["q"], &["name", "email"], 0)).await, ["u3"]);
    assert_eq!(
        listed(usable_by(&["q"], &["email"], 0)).await,
        Vec::<String>::new(),
        "u3 holds no email"
    );
    assert_eq!(listed(usable_by(&["p", "q"], &["name"], 1000)).await, ["u1", "u3"]);
    assert!(listed(usable_by(&["p", "q"], &[], 0)).await.is_empty(), "no field");
    assert!(listed(usable_by(&[], &["name"], 0)).await.is_empty(), "no purpose");
}

pub async fn page_weight_of_a_subjects_records(s: &Store) {
    let mut rows = vec![
        new_record("c1", "s1", 100),
        new_record("c2", "s1", 200),
        new_record("o1", "s1", 50),
        new_record("x1", "s2", 150),
        new_record("c3", "s1", 300),
    ];
    rows[2].collection = "orders".into();
    rows[4].fields.clear();
    rows[4].index.clear();
    rows[1].fields[0].binding = Some(binding("q", 0, None));
    rows[1].fields.truncate(1);
    for r in &rows {
        insert_record(s, r).await.unwrap();
    }
    async fn weight(s: &Store, page: PageOf<'_>) -> custodia_store::StoredWeight {
        s.reader().await.unwrap().records().page_weight(page).await.unwrap()
    }
    let in_collection = |subject: &'static str, collection: &'static str| PageOf {
        collection: Some(collection),
        ..page_of(subject, None, 1000)
    };
    let one: u64 = rows[0].fields.iter().map(|f| f.ciphertext.len() as u64).sum();
    let name: u64 = rows[1].fields[0].ciphertext.len() as u64;
    assert!(one > name && name > 0);
    let w = |records, fields, bytes| custodia_store::StoredWeight { records, fields, bytes };
    // a record without values counts as a record
    assert_eq!(weight(s, in_collection("s1", "customers")).await, w(3, 3, one + name));
    assert_eq!(weight(s, in_collection("s1", "orders")).await, w(1, 2, one));
    assert_eq!(weight(s, in_collection("s2", "customers")).await, w(1, 2, one));
    assert_eq!(
        weight(s, in_collection("s3", "customers")).await,
        w(0, 0, 0),
        "no records weigh nothing"
    );
    // a page weighs its records alone: after a cursor, up to its limit, of its purposes
    let c1 = RecordCursor {
        collection: "customers".into(),
        created_at: 100,
        record_id: "c1".into(),
    };
    let page = PageOf {
        after: Some(&c1),
        limit: 1,
        ..in_collection("s1", "customers")
    };
    assert_eq!(weight(s, page).await, w(1, 1, name));
    static P: &[&str] = &["p"];
    static Q: &[&str] = &["q", "z"];
    let bound = |purposes: &'static [&'static str]| PageOf {
        usable_by: Some(usable_by(purposes, &["name", "email"], 0)),
        ..in_collection("s1", "customers")
    };
    assert_eq!(weight(s, bound(P)).await, w(1, 2, one), "held for p: c1");
    assert_eq!(weight(s, bound(Q)).await, w(1, 1, name), "held for q: c2");
    assert_eq!(weight(s, bound(&[])).await, w(0, 0, 0));
}

pub async fn subject_records_page_by_keyset(s: &Store) {
    let mut rows = vec![
        new_record("c3", "s1", 300),
        new_record("c2b", "s1", 200),
        new_record("c1", "s1", 100),
        new_record("c2a", "s1", 200),
        new_record("o1", "s1", 50),
        new_record("x1", "s2", 150),
    ];
    rows[4].collection = "orders".into();
    rows[0].fields.clear();
    rows[0].index.clear();
    for r in &rows {
        insert_record(s, r).await.unwrap();
    }
    let page = |after: Option<RecordCursor>| async move {
        s.reader()
            .await
            .unwrap()
            .records()
            .page_of_subject(page_of("s1", after.as_ref(), 2))
            .await
            .unwrap()
    };
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let records = page(after.clone()).await;
        assert!(records.len() <= 2, "a page holds at most its limit");
        let Some(last) = records.last() else { break };
        after = Some(RecordCursor::after(last));
        if seen.is_empty() {
            // Written behind the cursor: later pages do not show it, and nothing shifts.
            insert_record(s, &new_record("c0", "s1", 10)).await.unwrap();
        }
        seen.extend(records);
        assert!(seen.len() <= 5, "pages repeat records");
    }
    let ids: Vec<(&str, &str)> = seen
        .iter()
        .map(|r| (r.collection.as_str(), r.record_id.as_str()))
        .collect();
    assert_eq!(
        ids,
        [
            ("customers", "c1"),
            ("customers", "c2a"),
            ("customers", "c2b"),
            ("customers", "c3"),
            ("orders", "o1"),
        ]
    );
    assert!(seen.iter().all(|r| r.subject_id == "s1"));
    let names: Vec<&str> = seen[0].fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(names, ["email", "name"]);
    assert_eq!(seen[0].fields[0].ciphertext, b"ct-email");
    assert_eq!(seen[0].fields[0].bindings[0].purpose, "p");
    assert_eq!(seen[0].fields[0].key_class, "default");
    assert!(seen[3].fields.is_empty(), "a record without fields is still listed");
    // One collection's pages: the others' records are neither shown nor counted.
    let in_customers = |after: Option<RecordCursor>, limit: i64| async move {
        let page = PageOf {
            collection: Some("customers"),
            ..page_of("s1", after.as_ref(), limit)
        };
        s.reader()
            .await
            .unwrap()
            .records()
            .page_of_subject(page)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.record_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(in_customers(None, 10).await, ["c0", "c1", "c2a", "c2b", "c3"]);
    let after_c2a = Some(RecordCursor::after(&seen[1]));
    assert_eq!(in_customers(after_c2a.clone(), 1).await, ["c2b"]);
    assert_eq!(in_customers(after_c2a, 10).await, ["c2b", "c3"]);
    assert!(in_customers(Some(RecordCursor::after(&seen[3])), 10).await.is_empty());
    // records no value of which is bound to the page's purposes are passed over, and do not
    // count against its limit (c3 holds no value)
    let bound = |purposes: &'static [&'static str], limit: i64| async move {
        let page = PageOf {
            usable_by: Some(usable_by(purposes, &["name", "email"], 0)),
            ..page_of("s1", None, limit)
        };
        let records = s.reader().await.unwrap().records().page_of_subject(page).await.unwrap();
        records.into_iter().map(|r| r.record_id).collect::<Vec<_>>()
    };
    assert_eq!(bound(&["x", "p"], 10).await, ["c0", "c1", "c2a", "c2b", "o1"]);
    assert_eq!(bound(&["p"], 5).await, ["c0", "c1", "c2a", "c2b", "o1"]);
    assert!(bound(&["x"], 10).await.is_empty());
    assert!(bound(&[], 10).await.is_empty());
    assert!(
        s.reader()
            .await
            .unwrap()
            .records()
            .page_of_subject(page_of("s3", None, 10))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn blind_index_pages_in_record_order(s: &Store) {
    // Five records of one digest over three subjects, ids not in subject order.
    for (id, subject) in [("r3", "s1"), ("r1", "s2"), ("r5", "s1"), ("r2", "s3"), ("r4", "s2")] {
        let mut r = new_record(id, subject, 1);
        r.fresh_key = subject_is_new(s, subject).await;
        insert_record(s, &r).await.unwrap();
    }
    let page = |after: Option<&'static str>, limit: i64| async move {
        s.reader()
            .await
            .unwrap()
            .records()
            .find_by_index("customers", "email", &[1; 16], after, limit)
            .await
            .unwrap()
    };
    let ids = |hits: Vec<(String, String)>| hits.into_iter().map(|(_, r)| r).collect::<Vec<_>>();
    assert_eq!(ids(page(None, 2).await), ["r1", "r2"]);
    assert_eq!(ids(page(Some("r2"), 2).await), ["r3", "r4"]);
    assert_eq!(page(Some("r4"), 2).await, [("s1".to_owned(), "r5".to_owned())]);
    assert!(page(Some("r5"), 2).await.is_empty());
    assert!(page(Some("zzz"), 2).await.is_empty(), "a cursor past the end");
    assert_eq!(
        ids(page(Some("r10"), 10).await),
        ["r2", "r3", "r4", "r5"],
        "a cursor between ids"
    );
}

/// Whether `subject` has no data key yet (its first record brings one).
async fn subject_is_new(s: &Store, subject: &str) -> bool {
    s.reader()
        .await
        .unwrap()
        .subjects()
        .keys(subject)
        .await
        .unwrap()
        .is_empty()
}

pub async fn records_are_scoped_to_subject_and_collection(s: &Store) {
    assert!(
        records(s, "s1", "customers").await.unwrap().is_none(),
        "no key, no data"
    );
    insert_record(s, &new_record("r1", "s1", 1)).await.unwrap();
    assert!(one(s, "s2", "customers", "r1").await.is_none());
    assert!(one(s, "s1", "orders", "r1").await.is_none());
    assert!(all(s, "s2", "customers").await.is_empty());
    assert!(!delete_record(s, "s2", "customers", "r1", None).await.unwrap());
    let patch = RecordPatch {
        now: 5,
        unbind: vec![("name".into(), "p".into())],
        ..RecordPatch::default()
    };
    assert!(!update_record(s, "s1", "orders", "r1", &patch).await.unwrap());
    assert_eq!(
        one(s, "s1", "customers", "r1").await.unwrap().fields.len(),
        2,
        "nothing changed"
    );
}

pub async fn update_sets_removes_and_reindexes(s: &Store) {
    insert_record(s, &new_record("r1", "s1", 1)).await.unwrap();
    let patch = RecordPatch {
        now: 50,
        set: vec![field("email", b"ct-email-2"), field("phone", b"ct-phone")],
        unbind: vec![("name".into(), "p".into())],
        index: vec![
            IndexEntry {
                field: "email".into(),
                digest: vec![2; 16],
            },
            IndexEntry {
                field: "phone".into(),
                digest: vec![3; 16],
            },
        ],
        ..RecordPatch::default()
    };
    assert!(update_record(s, "s1", "customers", "r1", &patch).await.unwrap());
    let rec = one(s, "s1", "customers", "r1").await.unwrap();
    assert_eq!(rec.updated_at, 50);
    assert_eq!(rec.created_at, 1);
    let got: Vec<_> = rec
        .fields
        .iter()
        .map(|f| (f.field.as_str(), f.ciphertext.as_slice(), f.updated_at))
        .collect();
    assert_eq!(
        got,
        [("email", &b"ct-email-2"[..], 50), ("phone", &b"ct-phone"[..], 50)]
    );
    assert!(
        find_by_index(s, "customers", "email", &[1; 16])
            .await
            .unwrap()
            .is_empty(),
        "old digest gone"
    );
    assert_eq!(
        find_by_index(s, "customers", "email", &[2; 16]).await.unwrap(),
        [("s1".to_owned(), "r1".to_owned())]
    );
    assert_eq!(find_by_index(s, "customers", "phone", &[3; 16]).await.unwrap().len(), 1);
    assert!(!update_record(s, "s1", "customers", "nope", &patch).await.unwrap());
}

pub async fn delete_removes_fields_and_index(s: &Store) {
    insert_record(s, &new_record("r1", "s1", 1)).await.unwrap();
    insert_record(s, &new_record("r2", "s1", 2)).await.unwrap();
    assert!(delete_record(s, "s1", "customers", "r1", None).await.unwrap());
    assert!(!delete_record(s, "s1", "customers", "r1", None).await.unwrap());
    assert!(one(s, "s1", "customers", "r1").await.is_none());
    assert_eq!(
        find_by_index(s, "customers", "email", &[1; 16]).await.unwrap(),
        [("s1".to_owned(), "r2".to_owned())]
    );
    // The id is free again and a new record under it starts clean.
    let mut again = new_record("r1", "s1", 3);
    again.fields.truncate(1);
    insert_record(s, &again).await.unwrap();
    assert_eq!(one(s, "s1", "customers", "r1").await.unwrap().fields.len(), 1);
}

pub async fn failed_insert_leaves_nothing(s: &Store) {
    let mut bad = new_record("r1", "s1", 1);
    bad.fields.push(field("name", b"duplicate field"));
    assert!(insert_record(s, &bad).await.is_err());
    assert!(one(s, "s1", "customers", "r1").await.is_none(), "no partial record");
    assert!(
        find_by_index(s, "customers", "email", &[1; 16])
            .await
            .unwrap()
            .is_empty(),
        "no partial index"
    );
    insert_record(s, &new_record("r1", "s1", 1)).await.unwrap();
    let err = insert_record(s, &new_record("r1", "s1", 2)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(one(s, "s1", "customers", "r1").await.unwrap().created_at, 1);
}

pub async fn principals_lifecycle(s: &Store) {
    let p = PrincipalRow {
        principal_id: "p1".into(),
        name: "checkout".into(),
        roles: vec!["fulfillment_service".into(), "support_agent".into()],
        key_id: "k1".into(),
        key_hash: vec![7; 32],
        created_at: 1,
        revoked_at: None,
        expires_at: Some(100),
        last_used_at: None,
        created_by: None,
        client_cert: None,
        seal: None,
    };
    let audit = AuditRow {
        seq: 0,
        at: 1,
        entry: "{}".into(),
        leaf: vec![0; 32],
        index: AuditColumns::default(),
        link: None,
        metric: None,
    };
    insert_principal(s, &p, Some(&audit)).await.unwrap();
    let dup = PrincipalRow {
        principal_id: "p2".into(),
        key_id: "k2".into(),
        ..p.clone()
    };
    assert!(
        matches!(insert_principal(s, &dup, None).await, Err(StoreError::Conflict(_))),
        "names are unique"
    );
    assert_eq!(principal_by_key_id(s, "k1").await.unwrap(), Some(p.clone()));
    assert_eq!(principal_by_key_id(s, "k2").await.unwrap(), None);
    assert_eq!(principals(s).await.unwrap(), std::slice::from_ref(&p));
    // A rotation replaces the key: the old key id finds nothing, the new one the principal.
    assert!(rotate_principal(s, "p1", "k1b", None).await.unwrap());
    assert_eq!(principal_by_key_id(s, "k1").await.unwrap(), None);
    let rotated = principal_by_key_id(s, "k1b").await.unwrap().unwrap();
    assert_eq!((rotated.key_hash, rotated.expires_at), (vec![9; 32], None));
    assert!(!rotate_principal(s, "nope", "k9", None).await.unwrap());
    assert!(rotate_principal(s, "p1", "k1", Some(100)).await.unwrap());
    assert!(revoke_principal(s, "p1", 9, Some(&audit)).await.unwrap());
    assert!(
        !rotate_principal(s, "p1", "k1c", None).await.unwrap(),
        "a revoked principal gets no new key"
    );
    assert!(
        !revoke_principal(s, "p1", 10, Some(&audit)).await.unwrap(),
        "revoking twice changes nothing"
    );
    assert!(!revoke_principal(s, "nope", 10, None).await.unwrap());
    assert_eq!(
        audit_entries(s, 0, 10).await.unwrap().len(),
        2,
        "the creation and the one revocation are audited with them"
    );
    assert_eq!(principal_by_key_id(s, "k1").await.unwrap().unwrap().revoked_at, Some(9));
}

pub async fn racing_first_writes_keep_one_key(s: &Store) {
    let mut tasks = Vec::new();
    for i in 0..40 {
        let mut rec = new_record(&format!("r{i:02}"), &format!("s{}", i % 4), i);
        // Every writer races to store a key for its subject; exactly one per subject wins.
        rec.sealed_under = SubjectKeyRow {
            subject_id: rec.subject_id.clone(),
            key_class: "default".into(),
            key_version: 1,
            wrapped_key: vec![u8::try_from(i).unwrap()],
            created_at: i,
            first_wrap: None,
        };
        tasks.push(async move { insert_record(s, &rec).await });
    }
    let results = futures_join_all(tasks).await;
    let landed = results.iter().filter(|r| r.is_ok()).count();
    for result in &results {
        assert!(
            matches!(result, Ok(()) | Err(StoreError::SubjectKeyConflict)),
            "{result:?}"
        );
    }
    let mut total = 0;
    for subject in 0..4 {
        let records = all(s, &format!("s{subject}"), "customers").await;
        let key = subject_key(s, &format!("s{subject}")).await.unwrap().unwrap();
        // Only records written with the kept key landed.
        for r in &records {
            let i: i64 = r.record_id[1..].parse().unwrap();
            assert_eq!(
                key.wrapped_key,
                vec![u8::try_from(i).unwrap()],
                "record {} landed under a lost key",
                r.record_id
            );
        }
        total += records.len();
    }
    assert_eq!(total, landed);
    assert!(total >= 4, "at least the first writer of each subject lands");
}

pub async fn concurrent_writers_all_land(s: &Store) {
    let mut tasks = Vec::new();
    for i in 0..40 {
        let rec = new_record(&format!("r{i:02}"), &format!("s{}", i % 4), i);
        tasks.push(async move { insert_record(s, &rec).await });
    }
    for result in futures_join_all(tasks).await {
        result.unwrap();
    }
    let mut total = 0;
    for subject in 0..4 {
        total += all(s, &format!("s{subject}"), "customers").await.len();
    }
    assert_eq!(total, 40);
}

pub async fn one_bad_record_fails_alone(s: &Store) {
    let mut tasks = Vec::new();
    for i in 0..20 {
        let mut rec = new_record(&format!("r{i:02}"), "s1", i);
        if i == 7 {
            rec.fields.push(field("name", b"a second value for one field"));
        }
        tasks.push(async move { insert_record(s, &rec).await });
    }
    let results = futures_join_all(tasks).await;
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result.is_ok(), i != 7, "record {i}: {result:?}");
    }
    let ids: Vec<_> = all(s, "s1", "customers")
        .await
        .into_iter()
        .map(|r| r.record_id)
        .collect();
    assert_eq!(ids.len(), 19);
    assert!(!ids.contains(&"r07".to_owned()));
    assert_eq!(
        find_by_index(s, "customers", "email", &[1; 16]).await.unwrap().len(),
        19,
        "no index entry of r07"
    );
}

pub async fn ledger_appends_in_order_and_refuses_changes(s: &Store) {
    let entry = |subject: &str, kind: &str, value: bool, at: i64| LedgerRow {
        seq: 0,
        subject_id: subject.into(),
        kind: kind.into(),
        purpose: Some("marketing_email".into()),
        value,
        notice_version: Some("v3".into()),
        method: "web_form".into(),
        evidence: Some("{\"user_agent\":\"test\"}".into()),
        principal_id: "p1".into(),
        at,
    };
    let a = append_ledger(s, &entry("s1", "consent", true, 10), None).await.unwrap();
    let b = append_ledger(s, &entry("s2", "consent", true, 11), None).await.unwrap();
    let c = append_ledger(s, &entry("s1", "consent", false, 12), None)
        .await
        .unwrap();
    assert!(a < b && b < c, "sequence numbers grow: {a} {b} {c}");
    let mut reader = s.reader().await.unwrap();
    assert_eq!(reader.ledger().last_seq("s1").await.unwrap(), Some(c));
    assert_eq!(reader.ledger().last_seq("s2").await.unwrap(), Some(b));
    assert_eq!(reader.ledger().last_seq("nobody").await.unwrap(), None);
    // what a subject's entries weigh as stored: their texts and a row's worth each
    let texts = "consent".len()
        + "marketing_email".len()
        + "v3".len()
        + "web_form".len()
        + r#"{"user_agent":"test"}"#.len()
        + "p1".len();
    let weight = |entries: usize| u64::try_from(entries * (texts + 256)).unwrap();
    assert_eq!(reader.ledger().stored_weight("s1").await.unwrap(), weight(2));
    assert_eq!(reader.ledger().stored_weight("s2").await.unwrap(), weight(1));
    assert_eq!(reader.ledger().stored_weight("nobody").await.unwrap(), 0);
    drop(reader);
    let history = ledger(s, "s1").await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!((history[0].seq, history[0].value, history[0].at), (a, true, 10));
    assert_eq!((history[1].seq, history[1].value), (c, false));
    assert_eq!(
        history[1],
        LedgerRow {
            seq: c,
            ..entry("s1", "consent", false, 12)
        }
    );
    assert!(ledger(s, "nobody").await.unwrap().is_empty());
    // read with a seal other than the one that wrote it: no entry holds
    let refused = s.reader().await.unwrap().ledger().of_subject("s1", &Reversed).await;
    assert!(matches!(refused, Err(StoreError::LedgerAltered(_))), "{refused:?}");
}

/// Appends to one subject's ledger at once (several connections on PostgreSQL) each move
/// the head the one before left: the ledger reads whole, every entry counted.
pub async fn concurrent_ledger_appends_keep_the_head(s: &Store) {
    let mut tasks = Vec::new();
    for i in 0..24 {
        let entry = LedgerRow {
            seq: 0,
            subject_id: format!("busy{}", i % 2),
            kind: "consent".into(),
            purpose: Some("marketing_email".into()),
            value: i % 3 != 0,
            notice_version: None,
            method: "api".into(),
            evidence: None,
            principal_id: "p1".into(),
            at: i,
        };
        tasks.push(async move { append_ledger(s, &entry, None).await });
    }
    for result in futures_join_all(tasks).await {
        result.unwrap();
    }
    for subject in ["busy0", "busy1"] {
        assert_eq!(ledger(s, subject).await.unwrap().len(), 12, "{subject}");
    }
    // and the whole ledger's tally counted each
    s.reader()
        .await
        .unwrap()
        .ledger()
        .check_tally(&crate::TestSeal)
        .await
        .unwrap();
}

/// The rows that grant access keep their sealed tally through every change the vault makes
/// to them (sealed inserts, reseals, sessions opened at once on several connections and
/// revoked one, by operator and all): checked against the rows, it holds; made anew from the
/// rows, it is the same; read with another seal, it is refused.
pub async fn access_rows_keep_their_tally(s: &Store) {
    use custodia_store::{AccessCheck, BreakGlassRow, OperatorRow, SessionRow, SessionsOf};
    let check = || async {
        s.write(|mut tx| Box::pin(async move { tx.tallies().check_access(&crate::TestSeal).await }))
            .await
            .map(|c| c == AccessCheck::Holds)
    };
    let first = s
        .write(|mut tx| Box::pin(async move { tx.tallies().check_access(&crate::TestSeal).await }))
        .await
        .unwrap();
    assert_eq!(
        first,
        AccessCheck::NoTally { rows: 0 },
        "no tally before the first change"
    );
    let principal = |id: &str| PrincipalRow {
        principal_id: id.into(),
        name: format!("name-{id}"),
        roles: vec!["admin".into()],
        key_id: format!("k-{id}"),
        key_hash: vec![7; 32],
        created_at: 1,
        revoked_at: None,
        expires_at: None,
        last_used_at: None,
        created_by: None,
        client_cert: None,
        seal: Some(format!("seal-{id}").into_bytes()),
    };
    insert_principal(s, &principal("p1"), None).await.unwrap();
    insert_principal(s, &principal("p2"), None).await.unwrap();
    // one written before seals: no part of the tally
    insert_principal(
        s,
        &PrincipalRow {
            seal: None,
            ..principal("p3")
        },
        None,
    )
    .await
    .unwrap();
    assert!(check().await.unwrap());
    let operator = OperatorRow {
        operator_id: "o1".into(),
        name: "olga".into(),
        roles: vec!["dpo".into()],
        password_hash: None,
        totp_sealed: None,
        totp_confirmed_at: None,
        totp_last_step: None,
        enrol_hash: None,
        enrol_expires_at: None,
        failed_logins: 0,
        locked_until: None,
        created_at: 1,
        created_by: "local".into(),
        disabled_at: None,
        seal: Some(b"seal-o1".to_vec()),
    };
    s.write(move |mut tx| {
        Box::pin(async move {
            tx.operators().insert(&operator, &crate::TestSeal).await?;
            // resealed after a change: the old seal out, the new one in (and a row resealed
            // from none: the upgrade's)
            tx.principals().revoke("p1", 5).await?;
            tx.principals()
                .set_seal("p1", b"seal-p1-revoked", &crate::TestSeal)
                .await?;
            tx.principals().set_seal("p3", b"seal-p3", &crate::TestSeal).await?;
            tx.operators()
                .set_seal("o1", b"seal-o1-enrolled", &crate::TestSeal)
                .await
        })
    })
    .await
    .unwrap();
    assert!(check().await.unwrap());
    let mut logins = Vec::new();
    for i in 0..12 {
        let session = SessionRow {
            session_id: format!("s{i}"),
            secret_hash: vec![1; 32],
            operator_id: "o1".into(),
            created_at: i,
            expires_at: 100,
            revoked_at: None,
            seal: Some(format!("seal-s{i}").into_bytes()),
        };
        logins.push(async move {
            s.write(move |mut tx| {
                Box::pin(async move { tx.operators().open_session(&session, &crate::TestSeal).await })
            })
            .await
        });
    }
    for opened in futures_join_all(logins).await {
        opened.unwrap();
    }
    assert!(check().await.unwrap());
    let grant = BreakGlassRow {
        grant_id: "g1".into(),
        operator_id: "o1".into(),
        session_id: "s0".into(),
        role: "admin".into(),
        reason: "incident".into(),
        started_at: 3,
        expires_at: 9,
        seal: Some(b"seal-g1".to_vec()),
    };
    let revoked = s
        .write(move |mut tx| {
            Box::pin(async move {
                tx.operators().open_break_glass(&grant, &crate::TestSeal).await?;
                let one = tx
                    .operators()
                    .revoke_sessions(SessionsOf::Session("s0"), 6, &crate::TestSeal)
                    .await?;
                let again = tx
                    .operators()
                    .revoke_sessions(SessionsOf::Session("s0"), 7, &crate::TestSeal)
                    .await?;
                Ok((one, again))
            })
        })
        .await
        .unwrap();
    assert_eq!(revoked, (1, 0));
    assert!(check().await.unwrap());
    let revoked = s
        .write(move |mut tx| {
            Box::pin(async move {
                tx.operators()
                    .revoke_sessions(SessionsOf::Operator("o1"), 8, &crate::TestSeal)
                    .await
            })
        })
        .await
        .unwrap();
    assert_eq!(revoked, 11);
    assert!(check().await.unwrap());
    assert_eq!(
        s.write(|mut tx| Box::pin(async move {
            tx.operators()
                .revoke_sessions(SessionsOf::All, 9, &crate::TestSeal)
                .await
        }))
        .await
        .unwrap(),
        0
    );
    // expired sessions pruned (the revoked ones, unsealed, and one still sealed), the tally
    // moved with them; one not yet expired, and one whose seal is not the vault's, stay
    for (id, expires_at, seal) in [("s20", 50, "seal-s20"), ("s21", 500, "seal-s21"), ("s22", 60, "forged")] {
        let session = SessionRow {
            session_id: id.into(),
            secret_hash: vec![1; 32],
            operator_id: "o1".into(),
            created_at: 10,
            expires_at,
            revoked_at: None,
            seal: Some(seal.as_bytes().to_vec()),
        };
        s.write(move |mut tx| Box::pin(async move { tx.operators().open_session(&session, &crate::TestSeal).await }))
            .await
            .unwrap();
    }
    let prune = |limit: i64| async move {
        s.write(move |mut tx| {
            Box::pin(async move { tx.operators().prune_sessions(200, limit, &crate::TestSeal).await })
        })
        .await
        .unwrap()
    };
    // oldest first: s20, then the forged s22 (skipped), then three of the twelve revoked
    assert_eq!(prune(5).await, 4, "at most the limit");
    assert_eq!(
        prune(100).await,
        9,
        "the other nine revoked; not s21 nor the forged s22"
    );
    assert_eq!(prune(100).await, 0);
    for id in ["s21", "s22"] {
        let kept = s.reader().await.unwrap().operators().session(id).await.unwrap();
        assert!(kept.is_some(), "{id}");
    }
    let refused = check().await;
    assert!(
        matches!(&refused, Err(StoreError::AccessAltered(what)) if what.contains("session s22")),
        "{refused:?}"
    );
    s.write(|mut tx| {
        Box::pin(async move {
            tx.operators()
                .revoke_sessions(SessionsOf::All, 9, &crate::TestSeal)
                .await?;
            tx.operators().prune_sessions(1_000, 100, &crate::TestSeal).await
        })
    })
    .await
    .unwrap();
    assert!(check().await.unwrap());
    // made anew from the rows: the same tally (two principals, an operator, a grant)
    let counted = s
        .write(|mut tx| Box::pin(async move { tx.tallies().tally_access_rows(&crate::TestSeal).await }))
        .await
        .unwrap();
    assert_eq!(counted, 5);
    assert!(check().await.unwrap());
    let refused = s
        .write(|mut tx| Box::pin(async move { tx.tallies().check_access(&Reversed).await }))
        .await;
    assert!(matches!(refused, Err(StoreError::AccessAltered(_))), "{refused:?}");
    // a row whose seal is not the vault's is named, whatever the tally says
    insert_principal(
        s,
        &PrincipalRow {
            seal: Some(b"forged".to_vec()),
            ..principal("p9")
        },
        None,
    )
    .await
    .unwrap();
    let refused = check().await;
    assert!(
        matches!(&refused, Err(StoreError::AccessAltered(what)) if what.contains("principal p9")),
        "{refused:?}"
    );
}

/// Training completions are read only as the vault sealed them: with another seal, none is;
/// as stored (for `assess`), every one; sealed again at an upgrade, none is copied twice.
pub async fn training_is_read_only_as_sealed(s: &Store) {
    use custodia_store::TrainingRow;
    let done = |course: &str| TrainingRow {
        operator_id: "o1".into(),
        course: course.into(),
        completed_at: 5,
        attested_by: "prn_1".into(),
        recorded_at: 6,
    };
    let rows = [done("privacy_basics"), done("security_awareness")];
    let written = rows.clone();
    s.write(move |mut tx| {
        Box::pin(async move {
            for row in &written {
                tx.operators().record_training(row, &crate::TestSeal).await?;
            }
            Ok(())
        })
    })
    .await
    .unwrap();
    let mut reader = s.reader().await.unwrap();
    assert_eq!(
        reader.operators().training(Some("o1"), &crate::TestSeal).await.unwrap(),
        rows
    );
    assert_eq!(reader.operators().training(None, &crate::TestSeal).await.unwrap(), rows);
    assert!(
        reader
            .operators()
            .training(Some("o2"), &crate::TestSeal)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        reader
            .operators()
            .training(Some("o1"), &Reversed)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(reader.operators().training_as_stored(None).await.unwrap(), rows);
    drop(reader);
    let sealed = s
        .write(|mut tx| Box::pin(async move { tx.operators().seal_unsealed_training(&crate::TestSeal).await }))
        .await
        .unwrap();
    assert_eq!(sealed, 0);
}

/// A seal that is not the one that wrote the rows (its own is a reversal of the message).
struct Reversed;

impl custodia_store::Sealer for Reversed {
    fn seal(&self, message: &[u8]) -> Vec<u8> {
        message.iter().rev().copied().collect()
    }
    fn holds(&self, message: &[u8], seal: &[u8]) -> bool {
        self.seal(message) == seal
    }
}

impl custodia_store::AccessSealer for Reversed {
    fn holds_row(&self, _: custodia_store::AccessRow<'_>) -> bool {
        true
    }
}

/// A series' value in the process's metrics (0 before its first sample).
fn counter(series: &str) -> f64 {
    custodia_metrics::render(0)
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

pub async fn audit_entries_land_with_their_writes(s: &Store) {
    let audit = |n: i64| AuditRow {
        seq: 0,
        leaf: vec![7; 32],
        at: n,
        entry: format!("{{\"n\":{n}}}"),
        index: AuditColumns::default(),
        link: None,
        metric: None,
    };
    insert_record_audited(s, &new_record("r1", "s1", 1), audit(1))
        .await
        .unwrap();
    let patch = RecordPatch {
        now: 2,
        unbind: vec![("name".into(), "p".into())],
        ..RecordPatch::default()
    };
    assert!(
        update_record_audited(s, "s1", "customers", "r1", &patch, audit(2))
            .await
            .unwrap()
    );
    // Group commit and audit appends are counted for the metrics, on every backend.
    let batches = format!("custodia_store_commit_batch_size_count{{backend=\"{}\"}}", s.backend());
    let (batches_before, appends_before) = (counter(&batches), counter("custodia_audit_appends_total"));
    append_audit(s, &[audit(3), audit(4)]).await.unwrap();
    assert!(counter(&batches) > batches_before, "{batches}");
    assert!(counter("custodia_audit_appends_total") >= appends_before + 2.0);
    assert!(
        delete_record(s, "s1", "customers", "r1", Some(&audit(5)))
            .await
            .unwrap()
    );

    // A write that fails takes its audit entry with it, and so does one that finds nothing.
    let mut bad = new_record("r2", "s1", 6);
    bad.fields.push(field("name", b"twice"));
    assert!(insert_record_audited(s, &bad, audit(6)).await.is_err());
    assert!(
        !delete_record(s, "s1", "customers", "r1", Some(&audit(7)))
            .await
            .unwrap()
    );

    let entries = audit_entries(s, 0, 100).await.unwrap();
    let ats: Vec<i64> = entries.iter().map(|e| e.at).collect();
    assert_eq!(ats, [1, 2, 3, 4, 5]);
    assert!(entries.windows(2).all(|w| w[0].seq < w[1].seq), "sequence numbers grow");
    assert_eq!(entries[0].entry, "{\"n\":1}");
    assert_eq!(entries[0].leaf, vec![7; 32], "the leaf hash is stored with its entry");
    // entries rolled back with their writes left no gap in the links
    crate::assert_links_chain(&entries);
    let after = audit_entries(s, entries[1].seq, 2).await.unwrap();
    assert_eq!(
        after.iter().map(|e| e.at).collect::<Vec<_>>(),
        [3, 4],
        "paging by sequence number"
    );
}

pub async fn tokens_and_subject_keys(s: &Store) {
    let key = SubjectKeyRow {
        subject_id: "s9".into(),
        key_class: "default".into(),
        key_version: 1,
        wrapped_key: vec![1],
        created_at: 1,
        first_wrap: None,
    };
    assert_eq!(ensure_subject_key(s, &key).await.unwrap(), key);
    let other = SubjectKeyRow {
        wrapped_key: vec![2],
        ..key.clone()
    };
    assert_eq!(ensure_subject_key(s, &other).await.unwrap(), key, "the first key stays");
    let audit = AuditRow {
        seq: 0,
        leaf: vec![7; 32],
        at: 5,
        entry: "{}".into(),
        index: AuditColumns::default(),
        link: None,
        metric: None,
    };
    // The first claim of a token stores it, with the audit entry of its write.
    let r1 = token_row("t1", "s9", None, 1);
    assert_eq!(
        claim_tokens(s, std::slice::from_ref(&r1), Some(&audit)).await.unwrap(),
        [true]
    );
    // A random token is one subject's value's alone: another subject, the same subject
    // again, a deterministic row or another field cannot have it.
    let refused = [
        token_row("t1", "s8", None, 2),
        token_row("t1", "s9", None, 3),
        token_row("t1", "s8", Some(b"v"), 4),
        TokenRow {
            field: "phone".into(),
            ..token_row("t1", "s8", None, 5)
        },
    ];
    assert_eq!(
        claim_tokens(s, &refused, None).await.unwrap(),
        [false; 4],
        "a taken token is not stored"
    );
    // A deterministic token is shared by the rows bound to its value, and by no other.
    let d = |subject: &str, binding: &[u8], ct: u8| token_row("t2", subject, Some(binding), ct);
    assert_eq!(
        claim_tokens(s, &[d("s9", b"v", 6), d("s8", b"v", 7), d("s7", b"w", 8)], None)
            .await
            .unwrap(),
        [true, true, false]
    );
    assert_eq!(
        claim_tokens(s, &[d("s9", b"v", 9), d("s6", b"w", 10)], None)
            .await
            .unwrap(),
        [true, false],
        "a subject's row of a token it holds is kept as it was"
    );
    // Within one batch the first row of a token claims it first.
    let batch = [
        token_row("t3", "s9", None, 11),
        token_row("t3", "s9", None, 12),
        token_row("t4", "s9", Some(b"x"), 13),
        token_row("t4", "s9", Some(b"x"), 14),
        token_row("t4", "s8", Some(b"y"), 15),
    ];
    assert_eq!(
        claim_tokens(s, &batch, None).await.unwrap(),
        [true, false, true, true, false]
    );

    let names: Vec<Vec<u8>> = ["t1", "t2", "t3", "t4", "nope"]
        .iter()
        .map(|t| t.as_bytes().to_vec())
        .collect();
    let mut rows = tokens(s, &names).await.unwrap();
    rows.sort_by(|a, b| (&a.name, &a.subject_id).cmp(&(&b.name, &b.subject_id)));
    let got: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                std::str::from_utf8(&r.name).unwrap(),
                r.subject_id.as_str(),
                r.ciphertext[0],
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("t1", "s9", 1),
            ("t2", "s8", 7),
            ("t2", "s9", 6),
            ("t3", "s9", 11),
            ("t4", "s9", 13)
        ]
    );
    assert_eq!(rows[0], r1);
    assert_eq!(rows[2], d("s9", b"v", 6));
    assert_eq!(
        audit_entries(s, 0, 10).await.unwrap().len(),
        1,
        "the audit entry came with the tokens"
    );

    // What the sweeper judges: every value held for a purpose, a page at a time, in order;
    // an expired one goes unless it was handed out again since it was judged.
    let mut held = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .reader()
            .await
            .unwrap()
            .tokens()
            .held(after.as_ref(), 2)
            .await
            .unwrap();
        let Some(last) = page.last().cloned() else { break };
        held.extend(page);
        after = Some(last);
    }
    let seen: Vec<(&str, &str)> = held
        .iter()
        .map(|t| (std::str::from_utf8(&t.name).unwrap(), t.subject_id.as_str()))
        .collect();
    assert_eq!(
        seen,
        [("t2", "s8"), ("t1", "s9"), ("t2", "s9"), ("t3", "s9"), ("t4", "s9")]
    );
    assert!(
        held.iter()
            .all(|t| t.purpose == "payment" && t.field == "email" && t.created_at == 5)
    );
    let first = held[1].clone();
    let stale = custodia_store::HeldToken {
        created_at: 4,
        ..first.clone()
    };
    let gone = s
        .write(move |mut tx| {
            Box::pin(async move {
                let kept = tx.tokens().expire(&[stale]).await?;
                let gone = tx.tokens().expire(&[first]).await?;
                Ok((kept, gone))
            })
        })
        .await
        .unwrap();
    assert_eq!(gone, (0, 1), "one handed out again since stays");
    assert!(tokens(s, &[b"t1".to_vec()]).await.unwrap().is_empty());
}

fn token_row(name: &str, subject: &str, binding: Option<&[u8]>, ct: u8) -> TokenRow {
    TokenRow {
        name: name.as_bytes().to_vec(),
        subject_id: subject.into(),
        collection: "customers".into(),
        field: "email".into(),
        kind: if binding.is_some() { "deterministic" } else { "random" }.into(),
        binding: binding.map(<[u8]>::to_vec),
        ciphertext: vec![ct],
        created_at: 5,
        purpose: Some("payment".into()),
    }
}

/// Claims of one token by two subjects at once (two nodes on PostgreSQL): one is stored.
pub async fn racing_claims_of_one_token_store_one(s: &Store) {
    for round in 0..20u8 {
        let name = format!("race{round}");
        let (one, two) = ([token_row(&name, "s1", None, 1)], [token_row(&name, "s2", None, 2)]);
        let (a, b) = tokio::join!(claim_tokens(s, &one, None), claim_tokens(s, &two, None));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(usize::from(a[0]) + usize::from(b[0]), 1, "round {round}: {a:?} {b:?}");
        assert_eq!(tokens(s, &[name.into_bytes()]).await.unwrap().len(), 1);
    }
}

pub async fn checkpoints_are_stored_once_per_size(s: &Store) {
    let cp = |size: i64| CheckpointRow {
        tree_size: size,
        root: vec![size as u8; 32],
        at: size,
        note: format!("note {size}"),
    };
    insert_checkpoint(s, &cp(2)).await.unwrap();
    insert_checkpoint(s, &cp(1)).await.unwrap();
    assert!(
        insert_checkpoint(
            s,
            &CheckpointRow {
                note: "forged".into(),
                ..cp(2)
            }
        )
        .await
        .is_err()
    );
    assert_eq!(checkpoints(s).await.unwrap(), [cp(1), cp(2)]);
    insert_checkpoint(s, &cp(7)).await.unwrap();
    let mut reader = s.reader().await.unwrap();
    let mut audit = reader.audit();
    assert_eq!(audit.checkpoints_after(1, 1).await.unwrap(), [cp(2)], "a page");
    assert_eq!(audit.checkpoints_after(2, 10).await.unwrap(), [cp(7)]);
    assert!(audit.checkpoints_after(7, 10).await.unwrap().is_empty());
    assert_eq!(audit.checkpoint_count().await.unwrap(), 3);
}

/// A job that goes on after one of its statements failed is told the truth: either its write
/// fails and nothing of it is stored, or it succeeds and the rest of it is stored (PostgreSQL
/// answers `COMMIT` of a transaction a failed statement aborted with a silent rollback).
pub async fn a_job_that_ignores_a_failed_statement_is_told_the_truth(s: &Store) {
    insert_record(s, &new_record("r0", "s0", 1)).await.unwrap();
    let mut again = new_record("r0", "s0", 2);
    again.fresh_key = false;
    let mut other = new_record("r1", "s1", 2);
    other.fresh_key = true;
    let result: Result<(), StoreError> = s
        .write(move |mut tx| {
            Box::pin(async move {
                tx.records().insert(&other).await?;
                let refused = tx.records().insert(&again).await;
                assert!(refused.is_err(), "r0 is taken");
                Ok(())
            })
        })
        .await;
    let stored = one(s, "s1", "customers", "r1").await.is_some();
    assert_eq!(
        stored,
        result.is_ok(),
        "the write says {result:?} but r1 is {}stored",
        if stored { "" } else { "not " }
    );
    assert!(one(s, "s0", "customers", "r0").await.is_some(), "r0 untouched");
}

/// A job that fails after writing rolls back all it wrote, and its audit entry with it.
pub async fn a_failed_job_rolls_back_everything_it_did(s: &Store) {
    let record = new_record("r1", "s1", 1);
    let entry = LedgerRow {
        seq: 0,
        subject_id: "s1".into(),
        kind: "consent".into(),
        purpose: None,
        value: true,
        notice_version: None,
        method: "api".into(),
        evidence: None,
        principal_id: "p".into(),
        at: 1,
    };
    let audit = AuditRow {
        seq: 0,
        at: 1,
        entry: "{}".into(),
        leaf: vec![0; 32],
        index: AuditColumns::default(),
        link: None,
        metric: None,
    };
    let result: Result<(), StoreError> = s
        .write(move |mut tx| {
            Box::pin(async move {
                tx.records().insert(&record).await?;
                tx.ledger().append(&entry, &crate::TestSeal).await?;
                tx.audit().append(&[audit]).await?;
                Err(StoreError::Conflict("the job changed its mind".into()))
            })
        })
        .await;
    assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
    assert!(
        subject_key(s, "s1").await.unwrap().is_none(),
        "the key it stored is gone"
    );
    assert!(records(s, "s1", "customers").await.unwrap().is_none());
    assert!(ledger(s, "s1").await.unwrap().is_empty());
    assert!(audit_entries(s, 0, 10).await.unwrap().is_empty());
    // The store still works after a rollback.
    insert_record_job(s, &new_record("r1", "s1", 1)).await.unwrap();
    assert_eq!(all(s, "s1", "customers").await.len(), 1);
}

/// An erasure (the subject's key destroyed) racing a write makes the write fail, through
/// either write path, instead of sealing data under a destroyed key; a fresh key for new
/// data after the erasure is accepted.
pub async fn a_write_under_a_destroyed_key_fails(s: &Store) {
    insert_record(s, &new_record("r1", "s1", 1)).await.unwrap();
    let destroyed: bool = s
        .write(|mut tx| Box::pin(async move { tx.subjects().destroy_key("s1", "default").await }))
        .await
        .unwrap();
    assert!(destroyed);
    assert!(
        records(s, "s1", "customers")
            .await
            .unwrap()
            .is_some_and(|f| f.keys.is_empty()),
        "no key: the ciphertext left is the erasure's to delete, and nothing opens it"
    );
    let mut late = new_record("r2", "s1", 2);
    late.fresh_key = false;
    for result in [insert_record(s, &late).await, insert_record_job(s, &late).await] {
        assert!(matches!(result, Err(StoreError::SubjectKeyConflict)), "{result:?}");
    }
    let key = key_of("s1");
    let sealed: Result<(), StoreError> = s
        .write(move |mut tx| Box::pin(async move { tx.subjects().seal_under(&key, false).await }))
        .await;
    assert!(matches!(sealed, Err(StoreError::SubjectKeyConflict)), "{sealed:?}");
    assert!(
        subject_key(s, "s1").await.unwrap().is_none(),
        "the destroyed key stays destroyed"
    );
    let mut reborn = new_record("r3", "s1", 3);
    reborn.sealed_under.wrapped_key = vec![42];
    insert_record(s, &reborn).await.unwrap();
    assert_eq!(subject_key(s, "s1").await.unwrap().unwrap().wrapped_key, [42]);
}

/// The purposes a subject's data was processed for, as the access package lists them: those
/// of the allowed entries about any of the subject's digests, each once, indexed or not yet;
/// not a refused attempt's, not another subject's, not an entry without a purpose.
pub async fn audit_purposes_about_a_subject_are_those_allowed(s: &Store) {
    let row = |at: i64, purpose: Option<&str>, decision: &str, subject: &str| AuditRow {
        seq: 0,
        at,
        entry: format!("{{\"at\":{at}}}"),
        leaf: vec![0; 32],
        index: AuditColumns {
            principal: Some("p".into()),
            action: Some("record.read".into()),
            decision: Some(decision.into()),
            purpose: purpose.map(Into::into),
            subject: Some(subject.into()),
        },
        link: None,
        metric: None,
    };
    let purposes = |subjects: Vec<String>| async move {
        s.reader()
            .await
            .unwrap()
            .audit()
            .purposes_about(&subjects)
            .await
            .unwrap()
    };
    let d1 = || vec!["d1".to_owned(), "legacy-d1".to_owned()];
    append_audit(
        s,
        &[
            row(1, Some("support"), "allow", "d1"),
            row(2, Some("payment"), "deny", "d1"),
            row(3, Some("analytics"), "allow", "d2"),
            row(4, Some("orders"), "allow", "legacy-d1"),
            row(5, None, "allow", "d1"),
            row(6, Some("support"), "allow", "d1"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(purposes(d1()).await, ["orders", "support"], "before indexing");
    let _: u64 = s
        .write(|mut tx| Box::pin(async move { tx.audit().index_subjects().await }))
        .await
        .unwrap();
    append_audit(s, &[row(7, Some("billing"), "allow", "d1")])
        .await
        .unwrap();
    assert_eq!(
        purposes(d1()).await,
        ["billing", "orders", "support"],
        "from the index and after it"
    );
    assert_eq!(purposes(vec!["d2".into()]).await, ["analytics"]);
    assert!(purposes(Vec::new()).await.is_empty());
    assert!(purposes(vec!["nobody".into()]).await.is_empty());
}

/// Audit queries select by the indexed columns: subject (any of several digests), principal,
/// action, purpose, decision and time, combined, and page by sequence number.
pub async fn audit_queries_use_the_indexed_columns(s: &Store) {
    let row = |at: i64, principal: &str, action: &str, decision: &str, subject: Option<&str>| AuditRow {
        seq: 0,
        at,
        entry: format!("{{\"at\":{at}}}"),
        leaf: vec![0; 32],
        index: AuditColumns {
            principal: Some(principal.into()),
            action: Some(action.into()),
            decision: Some(decision.into()),
            purpose: Some("support".into()),
            subject: subject.map(Into::into),
        },
        link: None,
        metric: None,
    };
    append_audit(
        s,
        &[
            row(1, "alice", "record.read", "allow", Some("d1")),
            row(2, "bob", "record.read", "deny", Some("d1")),
            row(3, "alice", "record.create", "allow", Some("d2")),
            row(4, "alice", "record.read", "allow", Some("legacy-d1")),
            row(5, "alice", "audit.read", "allow", None),
        ],
    )
    .await
    .unwrap();
    let query = |q: custodia_store::AuditQuery| async move {
        s.reader()
            .await
            .unwrap()
            .audit()
            .query(&q, 0, 100)
            .await
            .unwrap()
            .iter()
            .map(|e| e.at)
            .collect::<Vec<_>>()
    };
    use custodia_store::AuditQuery as Q;
    assert_eq!(
        query(Q {
            subjects: vec!["d1".into()],
            ..Q::default()
        })
        .await,
        [1, 2]
    );
    assert_eq!(
        query(Q {
            subjects: vec!["d1".into(), "legacy-d1".into()],
            ..Q::default()
        })
        .await,
        [1, 2, 4]
    );
    assert_eq!(
        query(Q {
            principal: Some("alice".into()),
            from: Some(2),
            to: Some(5),
            ..Q::default()
        })
        .await,
        [3, 4]
    );
    assert_eq!(
        query(Q {
            action: Some("record.read".into()),
            decision: Some("deny".into()),
            ..Q::default()
        })
        .await,
        [2]
    );
    assert_eq!(
        query(Q {
            purpose: Some("support".into()),
            ..Q::default()
        })
        .await
        .len(),
        5
    );
    assert!(
        query(Q {
            subjects: vec!["nobody".into()],
            ..Q::default()
        })
        .await
        .is_empty()
    );
    // The same answers once the indexing job has run, and with entries on both sides of it.
    let indexed: u64 = s
        .write(|mut tx| Box::pin(async move { tx.audit().index_subjects().await }))
        .await
        .unwrap();
    assert_eq!(indexed, 4, "the entries with a subject");
    append_audit(s, &[row(6, "bob", "record.read", "allow", Some("d1"))])
        .await
        .unwrap();
    let d1 = || vec!["d1".to_owned(), "legacy-d1".to_owned()];
    assert_eq!(
        query(Q {
            subjects: d1(),
            ..Q::default()
        })
        .await,
        [1, 2, 4, 6]
    );
    assert_eq!(
        query(Q {
            subjects: vec!["d2".into()],
            ..Q::default()
        })
        .await,
        [3]
    );
    assert_eq!(
        query(Q {
            subjects: vec!["d1".into()],
            principal: Some("bob".into()),
            ..Q::default()
        })
        .await,
        [2, 6]
    );
    let only_d1 = Q {
        subjects: vec!["d1".into()],
        ..Q::default()
    };
    let paged = s.reader().await.unwrap().audit().query(&only_d1, 1, 100).await.unwrap();
    assert_eq!(paged.len(), 2, "after the first entry: entries 2 and 6");
    let again: u64 = s
        .write(|mut tx| Box::pin(async move { tx.audit().index_subjects().await }))
        .await
        .unwrap();
    assert_eq!(again, 1);
    assert_eq!(
        query(Q {
            subjects: d1(),
            ..Q::default()
        })
        .await,
        [1, 2, 4, 6],
        "no entry twice"
    );
    let first = s
        .reader()
        .await
        .unwrap()
        .audit()
        .query(&Q::default(), 0, 2)
        .await
        .unwrap();
    let rest = s
        .reader()
        .await
        .unwrap()
        .audit()
        .query(&Q::default(), first[1].seq, 10)
        .await
        .unwrap();
    assert_eq!(first.len() + rest.len(), 6, "paging by sequence number");
}

/// Polls futures concurrently on this task (no extra dependency for `join_all`).
async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut out = Vec::with_capacity(futures.len());
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (fut, slot) in pinned.iter_mut().zip(results.iter_mut()) {
            if slot.is_none() {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(results.into_iter().flatten());
    out
}

/// A chunk ([`custodia_store::AuditChunk`]) carries every entry exactly as a row does: NULL
/// and empty columns apart, texts in any script, in sequence order. Values it cannot carry
/// with certainty (as an attacker with the database could write them) make it refuse to split
/// rather than split wrongly: a value holding the separator or the NULL mark, a leaf that is
/// not 32 bytes, a gap in the sequence numbers.
pub async fn audit_chunks_carry_entries_exactly(s: &Store) {
    let row = |at: i64, entry: &str, principal: Option<&str>, purpose: Option<&str>| AuditRow {
        seq: 0,
        at,
        entry: entry.into(),
        leaf: vec![u8::try_from(at.rem_euclid(256)).unwrap(); 32],
        index: AuditColumns {
            principal: principal.map(Into::into),
            action: Some("record.read".into()),
            decision: Some(String::new()),
            purpose: purpose.map(Into::into),
            subject: None,
        },
        link: None,
        metric: None,
    };
    let fine = [
        row(1, "{\"at\":1}", Some("alice"), None),
        row(-2, "", Some(""), Some("")),
        row(3, "ünïcødé \u{1F600} \"quoted\" \\ back,slash", None, Some("x,y")),
        row(i64::MAX, "{}", Some("bob"), Some("support")),
    ];
    append_audit(s, &fine).await.unwrap();
    let entries = audit_entries(s, 0, 100).await.unwrap();
    let chunk =
        |after: i64, upto: i64| async move { s.reader().await.unwrap().audit().chunk(after, upto).await.unwrap() };
    let all = chunk(0, 100).await;
    let expected: Vec<_> = entries.iter().map(AuditRow::as_ref).collect();
    assert_eq!(all.rows().unwrap(), expected);
    assert_eq!((all.len(), all.last()), (4, Some(entries[3].seq)));
    let middle = chunk(entries[0].seq, entries[2].seq).await;
    assert_eq!(middle.rows().unwrap(), expected[1..3]);
    let empty = chunk(1000, 2000).await;
    assert_eq!((empty.rows().unwrap(), empty.last()), (Vec::new(), None));

    // Each hostile row, appended after a fine one, spoils its chunk and only its chunk.
    let separator = "\u{1e}";
    let mut spliced = row(5, "{\"at\":5}", Some("p"), None);
    spliced.entry = format!("{{\"at\":5}}{separator}{{\"at\":6}}");
    let mut marked = row(5, "{\"at\":5}", Some("p"), None);
    marked.index.subject = Some("\u{1d}".into());
    let mut in_column = row(5, "{\"at\":5}", Some("p"), None);
    in_column.index.principal = Some(format!("a{separator}b"));
    let mut short_leaf = row(5, "{\"at\":5}", Some("p"), None);
    short_leaf.leaf.pop();
    let mut no_leaf = row(5, "{\"at\":5}", Some("p"), None);
    no_leaf.leaf = Vec::new();
    for hostile in [spliced, marked, in_column, short_leaf, no_leaf] {
        let before = audit_entries(s, 0, 1000).await.unwrap().last().unwrap().seq;
        append_audit(s, &[hostile.clone(), row(7, "{}", None, None)])
            .await
            .unwrap();
        let whole = chunk(before, before + 2).await;
        assert_eq!(whole.len(), 2);
        assert!(whole.rows().is_none(), "{hostile:?} was split");
        let next = chunk(before + 1, before + 2).await;
        assert_eq!(next.rows().unwrap().len(), 1, "{hostile:?} spoils only its own chunk");
    }

    // A gap in the sequence numbers (a rolled-back append on PostgreSQL; a deletion).
    let gap = audit_entries(s, 0, 1000).await.unwrap().last().unwrap().seq;
    let result = s
        .write(|mut tx| {
            Box::pin(async move {
                tx.audit()
                    .append(&[AuditRow {
                        seq: 0,
                        at: 8,
                        entry: "{}".into(),
                        leaf: vec![0; 32],
                        index: AuditColumns::default(),
                        link: None,
                        metric: None,
                    }])
                    .await?;
                Err::<(), _>(StoreError::Corrupt("roll back".into()))
            })
        })
        .await;
    assert!(result.is_err());
    append_audit(s, &[row(9, "{}", None, None)]).await.unwrap();
    let after_gap = chunk(gap - 1, gap + 10).await;
    assert_eq!(after_gap.len(), 2);
    let last = audit_entries(s, gap, 10).await.unwrap()[0].seq;
    assert_eq!(
        after_gap.rows().is_some(),
        last == gap + 1,
        "a chunk splits exactly when its numbers run without a gap"
    );
}

fn request(id: &str, status: &str, due_at: i64) -> RequestRow {
    RequestRow {
        request_id: id.into(),
        subject_id: Some("s1".into()),
        subject_digest: "d1".into(),
        kind: "erasure".into(),
        jurisdiction: "gdpr".into(),
        received_via: "api".into(),
        status: status.into(),
        received_at: 1,
        acknowledge_by: None,
        due_at,
        extended_at: None,
        extension_reason: None,
        verified_via: None,
        verified_by: None,
        verified_at: None,
        denial_reason: None,
        outcome: None,
        created_by: "prn_1".into(),
        updated_at: 1,
        closed_at: None,
        keep_until: 1000,
        version: 0,
    }
}

/// Requests: stored whole, listed by status and deadline (soonest first), changed only from
/// the state a step expects, their subject id forgotten on erasure, purged after keeping.
pub async fn requests_queue_and_steps(s: &Store) {
    let mut elsewhere = request("req_d", "completed", 40);
    (elsewhere.subject_id, elsewhere.subject_digest) = (Some("s2".into()), "d2".into());
    (elsewhere.jurisdiction, elsewhere.keep_until) = ("ccpa".into(), 5000);
    let rows = [
        request("req_b", "received", 30),
        request("req_a", "in_progress", 20),
        request("req_c", "completed", 10),
        elsewhere,
    ];
    let stored = rows.clone();
    s.write(move |mut tx| {
        Box::pin(async move {
            for r in &stored {
                tx.requests().insert(r).await?;
            }
            Ok(())
        })
    })
    .await
    .unwrap();
    let dup = rows[0].clone();
    let again: Result<(), StoreError> = s
        .write(move |mut tx| Box::pin(async move { tx.requests().insert(&dup).await }))
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let mut reader = s.reader().await.unwrap();
    assert_eq!(reader.requests().get("req_a").await.unwrap().as_ref(), Some(&rows[1]));
    let open = RequestQuery {
        statuses: vec!["received".into(), "in_progress".into()],
        limit: 10,
        ..RequestQuery::default()
    };
    let ids = |v: Vec<RequestRow>| v.into_iter().map(|r| r.request_id).collect::<Vec<_>>();
    assert_eq!(ids(reader.requests().list(&open).await.unwrap()), ["req_a", "req_b"]);
    let soon = RequestQuery {
        due_before: Some(25),
        ..open.clone()
    };
    assert_eq!(ids(reader.requests().list(&soon).await.unwrap()), ["req_a"]);
    let any = RequestQuery {
        limit: 2,
        ..RequestQuery::default()
    };
    assert_eq!(ids(reader.requests().list(&any).await.unwrap()), ["req_c", "req_a"]);
    let mut named = reader.requests().jurisdictions_of(&["d1", "d2", "d3"]).await.unwrap();
    named.sort();
    let pair = |d: &str, j: &str| (d.to_owned(), j.to_owned());
    assert_eq!(named, [pair("d1", "gdpr"), pair("d2", "ccpa")], "each pair once");
    assert_eq!(
        reader.requests().jurisdictions_of(&["d2"]).await.unwrap(),
        [pair("d2", "ccpa")]
    );
    assert!(reader.requests().jurisdictions_of(&[]).await.unwrap().is_empty());
    drop(reader);

    let mut done = rows[1].clone();
    done.status = "completed".into();
    done.outcome = Some("{}".into());
    done.closed_at = Some(25);
    let (first, second) = (done.clone(), done.clone());
    let changed: (bool, bool) = s
        .write(move |mut tx| {
            Box::pin(async move {
                let a = tx.requests().update(&first).await?;
                let b = tx.requests().update(&second).await?;
                Ok((a, b))
            })
        })
        .await
        .unwrap();
    assert_eq!(changed, (true, false), "a change applies only to the version it read");
    // a subject the sweeper removed is forgotten in its closed requests alone
    let forgotten: u64 = s
        .write(|mut tx| Box::pin(async move { tx.requests().forget_subject("s1", false).await }))
        .await
        .unwrap();
    assert_eq!(forgotten, 1, "req_a, closed");
    let forgotten: u64 = s
        .write(|mut tx| Box::pin(async move { tx.requests().forget_subject("s1", true).await }))
        .await
        .unwrap();
    assert_eq!(forgotten, 2, "an erasure's: the open ones too");
    let got = s
        .reader()
        .await
        .unwrap()
        .requests()
        .get("req_a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            got.subject_id,
            got.status.as_str(),
            got.subject_digest.as_str(),
            got.version
        ),
        (None, "completed", "d1", 2),
        "forgetting the subject is a change too"
    );
    let purged: u64 = s
        .write(|mut tx| Box::pin(async move { tx.requests().purge(1001).await }))
        .await
        .unwrap();
    assert_eq!(purged, 3);
}

/// Erasing deletes a subject's default-class values, its index entries, its emptied records
/// and its token values, batch by batch, keeping values of other classes; the tombstone list
/// only grows.
pub async fn erasure_deletes_what_the_default_key_sealed(s: &Store) {
    for i in 0..5 {
        insert_record(s, &new_record(&format!("r{i}"), "s1", i)).await.unwrap();
    }
    insert_record(s, &new_record("other", "s2", 9)).await.unwrap();
    // r0 also holds a value of a class that outlives an erasure.
    let survivor = SubjectKeyRow {
        key_class: "purpose:tax".into(),
        ..key_of("s1")
    };
    let patch = RecordPatch {
        now: 10,
        set: vec![FieldValue {
            key_class: "purpose:tax".into(),
            binding: Some(binding("tax", 10, None)),
            ..field("address", b"ct-address")
        }],
        ..RecordPatch::default()
    };
    s.write(move |mut tx| {
        Box::pin(async move {
            tx.subjects().seal_under(&survivor, true).await?;
            let t = Target {
                subject_id: "s1",
                collection: "customers",
                record_id: "r0",
            };
            assert!(tx.records().update(t, &patch).await?.is_some());
            Ok(())
        })
    })
    .await
    .unwrap();
    let ids = s.reader().await.unwrap().subjects().all_ids().await.unwrap();
    assert_eq!(ids, ["s1", "s2"]);

    let mut total = custodia_store::ErasedRows::default();
    let mut after = String::new();
    let mut batches = 0;
    loop {
        let from = after.clone();
        let (rows, last) = s
            .write(move |mut tx| {
                Box::pin(async move { tx.records().erase_batch("s1", &from, 2, &["tax".to_owned()]).await })
            })
            .await
            .unwrap();
        total.add(rows);
        batches += 1;
        match last {
            Some(last) => after = last,
            None => break,
        }
    }
    assert_eq!(batches, 4, "5 records in batches of 2, then an empty one");
    assert_eq!((total.records, total.fields, total.index_entries), (4, 10, 5));
    let held = s.reader().await.unwrap().records().held_values("s1").await.unwrap();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(
        (held[0].field.as_str(), held[0].key_class.as_str(), held[0].values),
        ("address", "purpose:tax", 1)
    );
    let left = all(s, "s1", "customers").await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].fields.len(), 1);
    assert_eq!(all(s, "s2", "customers").await.len(), 1, "another subject is untouched");
    let hits = s
        .reader()
        .await
        .unwrap()
        .records()
        .find_by_index("customers", "email", &[1; 16], None, 10)
        .await
        .unwrap();
    assert_eq!(hits, [("s2".to_owned(), "other".to_owned())]);

    let tombstone = ErasureRow {
        subject_digest: "d1".into(),
        request_id: Some("req_a".into()),
        at: 5,
    };
    let t = tombstone.clone();
    s.write(move |mut tx| Box::pin(async move { tx.erasures().append(&t).await }))
        .await
        .unwrap();
    assert_eq!(s.reader().await.unwrap().erasures().all().await.unwrap(), [tombstone]);
}

fn notice(request: &str, recipient: &str, state: custodia_store::DeliveryState, at: i64) -> NewNotification {
    NewNotification {
        request_id: request.into(),
        recipient: recipient.into(),
        action: "erasure".into(),
        payload: (state == DeliveryState::Pending).then(|| format!("{{\"to\":\"{recipient}\"}}")),
        state,
        created_at: at,
    }
}

fn attempt(id: i64, at: i64, state: DeliveryState, next: Option<i64>, status: Option<i64>) -> DeliveryAttempt {
    DeliveryAttempt {
        notification_id: id,
        at,
        outcome: if state == DeliveryState::Delivered {
            "delivered".into()
        } else {
            "http_status".into()
        },
        http_status: status,
        state,
        next_attempt_at: next,
        error: (state != DeliveryState::Delivered).then(|| "HTTP 500".into()),
    }
}

async fn record_attempt(s: &Store, a: DeliveryAttempt) -> bool {
    s.write(move |mut tx| Box::pin(async move { tx.notifications().record_attempt(&a).await }))
        .await
        .unwrap()
}

/// The outbox: queued notifications fall due, move through their attempts (each logged, the
/// body cleared once final), and are listed per request; a final one takes no more attempts.
pub async fn notifications_are_queued_attempted_and_logged(s: &Store) {
    use DeliveryState::{Delivered, Failed, NoWebhook, Pending};
    let queued = vec![
        notice("req_1", "parcel_carrier", Pending, 100),
        notice("req_1", "ad_partner", NoWebhook, 100),
        notice("req_1", "email_provider", Pending, 100),
        notice("req_2", "parcel_carrier", Pending, 200),
    ];
    let rows = queued.clone();
    let ids = s
        .write(move |mut tx| Box::pin(async move { tx.notifications().enqueue(&rows).await }))
        .await
        .unwrap();
    assert_eq!(ids.len(), 4);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow: {ids:?}");
    let (carrier, no_hook, mail, other) = (ids[0], ids[1], ids[2], ids[3]);

    let due = |now: i64, limit: i64| async move {
        let rows = s.reader().await.unwrap().notifications().due(now, limit).await.unwrap();
        rows.into_iter().map(|r| r.id).collect::<Vec<_>>()
    };
    assert!(due(99, 10).await.is_empty(), "nothing is due before it was queued");
    assert_eq!(due(100, 10).await, [carrier, mail], "a no_webhook notice is never due");
    assert_eq!(due(200, 1).await, [carrier], "the limit holds, soonest first");
    assert_eq!(due(200, 10).await, [carrier, mail, other]);

    let of_request = |request: &'static str| async move {
        s.reader()
            .await
            .unwrap()
            .notifications()
            .of_request(request)
            .await
            .unwrap()
    };
    let first = of_request("req_1").await;
    assert_eq!(first.iter().map(|r| r.id).collect::<Vec<_>>(), [carrier, no_hook, mail]);
    assert_eq!(
        first[0],
        NotificationRow {
            id: carrier,
            request_id: "req_1".into(),
            recipient: "parcel_carrier".into(),
            action: "erasure".into(),
            payload: Some("{\"to\":\"parcel_carrier\"}".into()),
            state: Pending,
            attempts: 0,
            next_attempt_at: Some(100),
            last_error: None,
            created_at: 100,
            delivered_at: None,
        }
    );
    assert_eq!(
        (first[1].state, first[1].payload.as_deref(), first[1].next_attempt_at),
        (NoWebhook, None, None)
    );

    // A failed attempt: still pending, body kept, due again at its next time.
    assert!(record_attempt(s, attempt(carrier, 150, Pending, Some(180), Some(500))).await);
    let row = of_request("req_1").await.remove(0);
    assert_eq!(
        (row.state, row.attempts, row.next_attempt_at, row.last_error.as_deref()),
        (Pending, 1, Some(180), Some("HTTP 500"))
    );
    assert!(row.payload.is_some());
    assert_eq!(due(179, 10).await, [mail]);
    assert_eq!(due(180, 10).await, [mail, carrier]);

    // Delivered: final, the body gone, the error cleared; no more attempts are taken.
    assert!(record_attempt(s, attempt(carrier, 181, Delivered, None, Some(204))).await);
    let row = of_request("req_1").await.remove(0);
    assert_eq!(
        (row.state, row.attempts, row.delivered_at, row.payload, row.last_error),
        (Delivered, 2, Some(181), None, None)
    );
    assert!(!record_attempt(s, attempt(carrier, 182, Failed, None, Some(500))).await);
    assert!(
        !record_attempt(s, attempt(no_hook, 182, Failed, None, None)).await,
        "a no_webhook notice takes none"
    );
    assert!(
        !record_attempt(s, attempt(9_999_999, 182, Failed, None, None)).await,
        "nor an absent one"
    );

    // Failed for good: final, the body gone.
    assert!(record_attempt(s, attempt(mail, 190, Failed, None, Some(503))).await);
    let row = of_request("req_1").await.remove(2);
    assert_eq!((row.state, row.payload, row.delivered_at), (Failed, None, None));
    assert_eq!(due(1_000, 10).await, [other]);

    // The delivery log holds each attempt taken, in order, and nothing else.
    let log = s
        .reader()
        .await
        .unwrap()
        .notifications()
        .attempts(carrier)
        .await
        .unwrap();
    assert_eq!(
        log.iter()
            .map(|a| (a.notification_id, a.at, a.outcome.as_str(), a.http_status))
            .collect::<Vec<_>>(),
        [
            (carrier, 150, "http_status", Some(500)),
            (carrier, 181, "delivered", Some(204))
        ]
    );
    assert!(log[0].seq < log[1].seq);
    let none = s
        .reader()
        .await
        .unwrap()
        .notifications()
        .attempts(no_hook)
        .await
        .unwrap();
    assert!(none.is_empty());

    // The row's change and its log entry commit together or not at all.
    let failed = s
        .write(move |mut tx| {
            Box::pin(async move {
                assert!(
                    tx.notifications()
                        .record_attempt(&attempt(other, 300, Delivered, None, Some(200)))
                        .await?
                );
                Err::<(), _>(StoreError::Aborted("rolled back".into()))
            })
        })
        .await;
    assert!(failed.is_err());
    let row = of_request("req_2").await.remove(0);
    assert_eq!((row.state, row.attempts), (Pending, 0));
    let log = s.reader().await.unwrap().notifications().attempts(other).await.unwrap();
    assert!(log.is_empty());
    assert!(of_request("req_3").await.is_empty());
}

/// The bindings of one field of record `r` of subject `s`.
async fn bindings_of(s: &Store, subject: &str, record: &str, field: &str) -> Vec<Binding> {
    one(s, subject, "customers", record)
        .await
        .map(|r| {
            r.fields
                .into_iter()
                .filter(|f| f.field == field)
                .flat_map(|f| f.bindings)
                .collect()
        })
        .unwrap_or_default()
}

/// A value stays while some purpose holds it: a renewal adds a binding (and may re-seal the
/// value), unbinding one purpose keeps the value for the other, and the last unbinding
/// destroys it with its index entry, and the record with its last value.
pub async fn bindings_hold_values_until_the_last_goes(s: &Store) {
    insert_record(s, &new_record("r1", "s1", 1)).await.unwrap();
    let renew = RecordPatch {
        now: 20,
        renew: vec![custodia_store::Renewal {
            field: "email".into(),
            binding: binding("q", 20, Some(500)),
            value: b"ct-email-q".to_vec(),
            resealed: Some("default".into()),
        }],
        ..RecordPatch::default()
    };
    assert!(update_record(s, "s1", "customers", "r1", &renew).await.unwrap());
    let held = bindings_of(s, "s1", "r1", "email").await;
    assert_eq!(held, [binding("p", 0, None), binding("q", 20, Some(500))]);
    let rec = one(s, "s1", "customers", "r1").await.unwrap();
    assert_eq!(rec.fields[0].ciphertext, b"ct-email-q", "re-sealed");
    assert_eq!(rec.fields.len(), 2, "one field per value, whatever its bindings");

    // Renewing again moves the renewal time, keeps when it was first bound.
    let mut again = renew.clone();
    again.renew[0].binding = Binding {
        renewed_at: 30,
        expires_at: Some(600),
        ..binding("q", 20, None)
    };
    again.renew[0].resealed = None;
    assert!(update_record(s, "s1", "customers", "r1", &again).await.unwrap());
    let q = bindings_of(s, "s1", "r1", "email").await.pop().unwrap();
    assert_eq!((q.bound_at, q.renewed_at, q.expires_at), (20, 30, Some(600)));

    let unbind = |field: &str, purpose: &str| RecordPatch {
        now: 40,
        unbind: vec![(field.into(), purpose.into())],
        ..RecordPatch::default()
    };
    assert!(
        update_record(s, "s1", "customers", "r1", &unbind("email", "p"))
            .await
            .unwrap()
    );
    assert_eq!(
        bindings_of(s, "s1", "r1", "email").await,
        [again.renew[0].binding.clone()]
    );
    assert_eq!(find_by_index(s, "customers", "email", &[1; 16]).await.unwrap().len(), 1);
    assert!(
        update_record(s, "s1", "customers", "r1", &unbind("email", "q"))
            .await
            .unwrap()
    );
    let rec = one(s, "s1", "customers", "r1").await.unwrap();
    assert_eq!(
        rec.fields.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(),
        ["name"]
    );
    assert!(
        find_by_index(s, "customers", "email", &[1; 16])
            .await
            .unwrap()
            .is_empty(),
        "its index entry went with it"
    );
    // A value set anew replaces the field's bindings with its own.
    let set = RecordPatch {
        now: 50,
        set: vec![FieldValue {
            binding: Some(binding("q", 50, None)),
            ..field("name", b"ct-name-2")
        }],
        ..RecordPatch::default()
    };
    assert!(update_record(s, "s1", "customers", "r1", &set).await.unwrap());
    assert_eq!(bindings_of(s, "s1", "r1", "name").await, [binding("q", 50, None)]);
    // A corrected value (no binding) keeps the bindings it had.
    let correct = RecordPatch {
        now: 60,
        set: vec![FieldValue {
            binding: None,
            ..field("name", b"ct-name-3")
        }],
        ..RecordPatch::default()
    };
    assert!(update_record(s, "s1", "customers", "r1", &correct).await.unwrap());
    assert_eq!(bindings_of(s, "s1", "r1", "name").await, [binding("q", 50, None)]);
    assert!(
        update_record(s, "s1", "customers", "r1", &unbind("name", "q"))
            .await
            .unwrap()
    );
    assert!(
        one(s, "s1", "customers", "r1").await.is_none(),
        "the record went with its last value"
    );
    assert_eq!(
        s.reader().await.unwrap().retention().of_subject("s1").await.unwrap(),
        []
    );
}

/// The expiry index: due bindings in expiry order, page by page; a binding without an expiry
/// is never due; an ending applies only to a binding still as it was read.
pub async fn due_bindings_come_by_expiry_and_end_only_as_read(s: &Store) {
    for (i, expiry) in [Some(300), None, Some(100), Some(200), Some(900)]
        .into_iter()
        .enumerate()
    {
        let mut r = new_record(&format!("r{i}"), &format!("s{i}"), 1);
        r.sealed_under = key_of(&format!("s{i}"));
        r.fields = vec![FieldValue {
            binding: Some(binding("p", 1, expiry)),
            ..field("email", b"ct")
        }];
        r.index.clear();
        insert_record(s, &r).await.unwrap();
    }
    let mut reader = s.reader().await.unwrap();
    assert_eq!(reader.retention().count_due(300).await.unwrap(), 3);
    let first = reader.retention().due(300, None, 2).await.unwrap();
    let ids: Vec<_> = first.iter().map(|v| v.record_id.as_str()).collect();
    assert_eq!(ids, ["r2", "r3"]);
    assert_eq!(
        (first[0].subject_id.as_str(), first[0].collection.as_str()),
        ("s2", "customers")
    );
    let next = reader
        .retention()
        .due(300, Some(&custodia_store::DueCursor::after(&first[1])), 2)
        .await
        .unwrap();
    assert_eq!(next.iter().map(|v| v.record_id.as_str()).collect::<Vec<_>>(), ["r0"]);
    drop(reader);

    let stale = Ending {
        record_id: "r2".into(),
        field: "email".into(),
        purpose: "p".into(),
        renewed_at: 0,
        expires_at: Some(100),
    };
    let current = Ending {
        renewed_at: 1,
        ..stale.clone()
    };
    let ended = s
        .write(move |mut tx| Box::pin(async move { tx.retention().end(&[stale, current]).await }))
        .await
        .unwrap();
    assert_eq!(ended, [false, true]);
    // Times computed again move a binding in the index.
    let times = BindingTimes {
        record_id: "r3".into(),
        field: "email".into(),
        purpose: "p".into(),
        ended_at: Some(150),
        expires_at: Some(1000),
    };
    s.write(move |mut tx| Box::pin(async move { tx.retention().set_times(&[times]).await }))
        .await
        .unwrap();
    let mut reader = s.reader().await.unwrap();
    let due: Vec<_> = reader.retention().due(i64::MAX, None, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|v| v.record_id.as_str()).collect::<Vec<_>>(),
        ["r0", "r4", "r3"]
    );
    assert_eq!(due[2].binding.ended_at, Some(150));
    let ended_only = reader.retention().held_only_by_ended().await.unwrap();
    assert_eq!(ended_only.len(), 1);
    assert_eq!((ended_only[0].field.as_str(), ended_only[0].values), ("email", 1));
    let held = reader.retention().held_counts().await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!((held[0].purpose.as_str(), held[0].values, held[0].ended), ("p", 4, 1));
}

/// A subject's activity moves forward only, and moves the expiry of the bindings of the
/// purposes that run from it, unless the ledger ended them.
pub async fn activity_moves_forward_and_renews(s: &Store) {
    let mut r = new_record("r1", "s1", 1);
    r.fields = vec![
        FieldValue {
            binding: Some(binding("support", 1, Some(100))),
            ..field("email", b"ct")
        },
        FieldValue {
            binding: Some(Binding {
                ended_at: Some(5),
                ..binding("support", 1, Some(50))
            }),
            ..field("name", b"ct")
        },
        FieldValue {
            binding: Some(binding("orders", 1, Some(100))),
            ..field("phone", b"ct")
        },
    ];
    r.index.clear();
    r.activity = Some(Activity {
        subject_id: "s1".into(),
        at: 10,
        renew: vec![],
    });
    insert_record(s, &r).await.unwrap();
    let activity = |at: i64, expires: i64| Activity {
        subject_id: "s1".into(),
        at,
        renew: vec![("support".into(), expires)],
    };
    for a in [activity(40, 400), activity(20, 200)] {
        s.write(move |mut tx| Box::pin(async move { tx.retention().record_activity(&a).await }))
            .await
            .unwrap();
    }
    let mut reader = s.reader().await.unwrap();
    assert_eq!(
        reader.retention().last_activity("s1").await.unwrap(),
        Some(40),
        "never back"
    );
    drop(reader);
    let expiry = |field: &'static str| async move { bindings_of(s, "s1", "r1", field).await[0].expires_at };
    assert_eq!(expiry("email").await, Some(400), "never earlier either");
    assert_eq!(expiry("name").await, Some(50), "an ended binding keeps its end");
    assert_eq!(
        expiry("phone").await,
        Some(100),
        "another purpose's binding is untouched"
    );
    s.write(|mut tx| Box::pin(async move { tx.retention().forget_activity("s1").await }))
        .await
        .unwrap();
    assert_eq!(
        s.reader().await.unwrap().retention().last_activity("s1").await.unwrap(),
        None
    );
}

/// Holds: placed, found by subject or collection while in force, released once, all listed.
pub async fn legal_holds_are_placed_found_and_released(s: &Store) {
    let hold = |id: &str, subject: Option<&str>, collection: Option<&str>| HoldRow {
        hold_id: id.into(),
        subject_id: subject.map(Into::into),
        collection: collection.map(Into::into),
        reason: "case 1".into(),
        created_by: "prn_1".into(),
        created_at: 5,
        released_at: None,
        released_by: None,
        release_reason: None,
    };
    let (a, b) = (hold("h1", Some("s1"), None), hold("h2", None, Some("orders")));
    s.write(move |mut tx| {
        Box::pin(async move {
            tx.retention().place_hold(&a).await?;
            tx.retention().place_hold(&b).await
        })
    })
    .await
    .unwrap();
    let mut reader = s.reader().await.unwrap();
    let on = |subject: &'static str, collections: &'static [&'static str]| async move {
        s.reader()
            .await
            .unwrap()
            .retention()
            .holds_on(subject, collections)
            .await
            .unwrap()
            .iter()
            .map(|h| h.hold_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(on("s1", &["customers"]).await, ["h1"]);
    assert_eq!(on("s2", &["customers", "orders"]).await, ["h2"]);
    assert!(on("s2", &[]).await.is_empty());
    assert_eq!(reader.retention().active_holds().await.unwrap().len(), 2);
    drop(reader);
    let release = |id: &'static str| async move {
        s.write(move |mut tx| Box::pin(async move { tx.retention().release_hold(id, "prn_2", 9, "settled").await }))
            .await
            .unwrap()
    };
    assert!(release("h1").await);
    assert!(!release("h1").await, "released once");
    assert!(!release("nope").await);
    assert!(on("s1", &["customers"]).await.is_empty());
    let mut reader = s.reader().await.unwrap();
    let all = reader.retention().all_holds().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(
        (
            all[0].released_at,
            all[0].released_by.as_deref(),
            all[0].release_reason.as_deref()
        ),
        (Some(9), Some("prn_2"), Some("settled"))
    );
    assert_eq!(
        reader.retention().hold("h2").await.unwrap().unwrap(),
        hold("h2", None, Some("orders"))
    );
    drop(reader);
    // An erased subject is forgotten in the holds released on it: its id and the texts
    // written about it (which may name the person); the hold's facts stay.
    let forgotten = s
        .write(|mut tx| Box::pin(async move { tx.retention().forget_subject_in_holds("s1").await }))
        .await
        .unwrap();
    assert_eq!(forgotten, 1);
    let h1 = s.reader().await.unwrap().retention().hold("h1").await.unwrap().unwrap();
    assert_eq!(
        (
            h1.subject_id,
            h1.reason.as_str(),
            h1.release_reason.as_deref(),
            h1.released_by.as_deref()
        ),
        (
            None,
            custodia_store::FORGOTTEN_TEXT,
            Some(custodia_store::FORGOTTEN_TEXT),
            Some("prn_2")
        )
    );
    // Rules are remembered per purpose, replaced when they change.
    for rule in ["r1", "r2"] {
        s.write(move |mut tx| Box::pin(async move { tx.retention().set_rule("p", rule, 1).await }))
            .await
            .unwrap();
    }
    assert_eq!(
        s.reader().await.unwrap().retention().rules().await.unwrap(),
        [("p".to_owned(), "r2".to_owned())]
    );
}

/// Notice versions are kept once each, the first publication's time winning, and listed
/// without their texts.
pub async fn notice_versions_are_kept_once_each(s: &Store) {
    let row = |version: &str, at: i64, html: &str| custodia_store::NoticeRow {
        version: version.into(),
        language: "en".into(),
        published_at: at,
        notice: format!("{{\"version\":\"{version}\"}}"),
        html: html.into(),
    };
    let publish = |r: custodia_store::NoticeRow| async move {
        s.write(move |mut tx| Box::pin(async move { tx.notices().publish(&r).await }))
            .await
            .unwrap()
    };
    assert!(publish(row("sha256-b", 10, "<p>b</p>")).await);
    assert!(
        !publish(row("sha256-b", 99, "<p>changed</p>")).await,
        "a known version is kept as first shown"
    );
    assert!(publish(row("sha256-a", 20, "<p>a</p>")).await);
    let mut reader = s.reader().await.unwrap();
    let b = reader.notices().get("sha256-b").await.unwrap().unwrap();
    assert_eq!(b, row("sha256-b", 10, "<p>b</p>"));
    assert_eq!(reader.notices().get("sha256-c").await.unwrap(), None);
    let listed: Vec<(String, i64, String)> = reader
        .notices()
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.version, r.published_at, r.html))
        .collect();
    assert_eq!(
        listed,
        [
            ("sha256-b".to_owned(), 10, String::new()),
            ("sha256-a".to_owned(), 20, String::new())
        ]
    );
}

/// Incidents: the register keeps every incident with its state, the timeline keeps its
/// order and refuses changes, a collection goes into read-only mode once and comes out once,
/// and sessions end for one operator or for all.
pub async fn incidents_timelines_and_read_only_collections(s: &Store) {
    use custodia_store::{IncidentEntryRow, IncidentRow, ReadOnlyRow};
    let incident = |id: &str, aware: i64| IncidentRow {
        incident_id: id.into(),
        opened_at: aware + 5,
        opened_by: "prn_admin".into(),
        aware_at: aware,
        sealed: vec![1, 2, 3],
        phase: "detect".into(),
        risk: "unassessed".into(),
        updated_at: aware + 5,
        tally: Some(vec![1]),
    };
    let entry = |id: &str, at: i64, kind: &str| IncidentEntryRow {
        entry_id: 0,
        incident_id: id.into(),
        at,
        by_principal: "prn_admin".into(),
        kind: kind.into(),
        sealed: vec![at as u8],
    };
    let (a, b) = (incident("inc_a", 100), incident("inc_b", 200));
    let (a2, b2) = (a.clone(), b.clone());
    s.write(move |mut tx| {
        Box::pin(async move {
            tx.incidents().insert(&a2).await?;
            tx.incidents().insert(&b2).await?;
            tx.incidents().append(&entry("inc_a", 110, "opened")).await?;
            tx.incidents().append(&entry("inc_b", 210, "opened")).await?;
            tx.incidents().append(&entry("inc_a", 120, "note")).await
        })
    })
    .await
    .unwrap();
    let taken = a.clone();
    let again = s
        .write(move |mut tx| Box::pin(async move { tx.incidents().insert(&taken).await }))
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let moved = s
        .write(|mut tx| {
            Box::pin(async move {
                let found = tx
                    .incidents()
                    .set_state("inc_a", ("contain", "high_risk"), 130, 2, &[3])
                    .await?;
                let missing = tx
                    .incidents()
                    .set_state("inc_zz", ("contain", "risk"), 130, 0, &[1])
                    .await?;
                Ok((found, missing))
            })
        })
        .await
        .unwrap();
    assert_eq!(moved, (true, false));
    // a change numbered after a timeline another change has grown since is refused
    let stale = s
        .write(|mut tx| {
            Box::pin(async move {
                tx.incidents()
                    .set_state("inc_a", ("eradicate", "high_risk"), 140, 1, &[2])
                    .await
            })
        })
        .await;
    assert!(
        matches!(stale, Err(StoreError::Conflict(ref what)) if what == "incident"),
        "{stale:?}"
    );
    let mut reader = s.reader().await.unwrap();
    let register: Vec<String> = reader
        .incidents()
        .all()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.incident_id)
        .collect();
    assert_eq!(register, ["inc_b", "inc_a"], "the most recently discovered first");
    let got = reader.incidents().get("inc_a").await.unwrap().unwrap();
    assert_eq!(
        (got.phase.as_str(), got.risk.as_str(), got.updated_at, got.tally),
        ("contain", "high_risk", 130, Some(vec![3])),
        "the tally moves with the state; the refused change moved nothing"
    );
    assert_eq!(
        reader.incidents().get("inc_b").await.unwrap().unwrap().tally,
        Some(vec![1])
    );
    assert_eq!(got.sealed, a.sealed);
    let timeline: Vec<(i64, String)> = reader
        .incidents()
        .entries("inc_a")
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.at, e.kind))
        .collect();
    assert_eq!(timeline, [(110, "opened".to_owned()), (120, "note".to_owned())]);
    drop(reader);

    let mode = |c: &str| ReadOnlyRow {
        collection: c.into(),
        since: 140,
        incident_id: "inc_a".into(),
        set_by: "prn_admin".into(),
    };
    let (m1, m2) = (mode("customers"), mode("customers"));
    let set = s
        .write(move |mut tx| {
            Box::pin(async move {
                let first = tx.incidents().set_read_only(&m1).await?;
                let second = tx.incidents().set_read_only(&m2).await?;
                Ok((first, second))
            })
        })
        .await
        .unwrap();
    assert_eq!(set, (true, false));
    let listed = s.reader().await.unwrap().incidents().read_only().await.unwrap();
    assert_eq!(listed, [mode("customers")]);
    let cleared = s
        .write(|mut tx| {
            Box::pin(async move {
                let first = tx.incidents().clear_read_only("customers").await?;
                let second = tx.incidents().clear_read_only("customers").await?;
                Ok((first, second))
            })
        })
        .await
        .unwrap();
    assert_eq!(cleared, (true, false));
    assert!(
        s.reader()
            .await
            .unwrap()
            .incidents()
            .read_only()
            .await
            .unwrap()
            .is_empty()
    );
}
