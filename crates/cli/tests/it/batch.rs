//! Batch creation and reads over HTTP: each item decided, answered and audited as if sent
//! alone, so a batch is no way around the gate, the consent ledger or the audit log.

use serde_json::{Value, json};

use crate::support::{Client, Vault, fresh_postgres_database, postgres_url};

/// The audit entries with `action` and `decision`.
async fn entries(admin: &mut Client, action: &str, decision: &str) -> Vec<Value> {
    let (status, v) = admin
        .get(&format!(
            "/v1/audit/events?action={action}&decision={decision}&limit=1000"
        ))
        .await;
    assert_eq!(status, 200, "{v}");
    v["events"].as_array().cloned().unwrap_or_default()
}

/// Writes `count` records of `subject` holding `address` as its shipping address, `per_batch`
/// at a time, under `order_fulfillment`.
async fn fill(client: &mut Client, subject: &str, address: &str, count: usize, per_batch: usize) {
    for _ in 0..count / per_batch {
        let items: Vec<Value> = (0..per_batch)
            .map(|_| json!({"subject_id": subject, "collection": "customers", "fields": {"shipping_address": address}}))
            .collect();
        let (status, v) = client
            .post(
                "/v1/batch/records",
                json!({"purpose": "order_fulfillment", "items": items}),
            )
            .await;
        assert_eq!(
            (status, statuses(&v).iter().filter(|s| **s == 201).count()),
            (200, per_batch)
        );
    }
}

/// A batch read under `order_fulfillment` of `subjects`' records, a page of each.
async fn read_lists(client: &mut Client, subjects: impl IntoIterator<Item = &str>) -> Value {
    let items: Vec<Value> = subjects
        .into_iter()
        .map(|subject| json!({"subject_id": subject, "collection": "customers"}))
        .collect();
    let (status, v) = client
        .post(
            "/v1/batch/records/read",
            json!({"purpose": "order_fulfillment", "items": items}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v
}

fn statuses(v: &Value) -> Vec<u64> {
    v["results"]
        .as_array()
        .map(|r| r.iter().map(|i| i["status"].as_u64().unwrap_or(0)).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_decide_answer_and_audit_each_item_as_if_alone_on_sqlite() {
    batches_decide_answer_and_audit_each_item_as_if_alone(Vault::init()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_decide_answer_and_audit_each_item_as_if_alone_on_postgres() {
    let Some(url) = postgres_url() else {
        assert!(std::env::var("CI").is_err(), "CI must run the PostgreSQL tests");
        return;
    };
    batches_decide_answer_and_audit_each_item_as_if_alone(Vault::init_with(Some(fresh_postgres_database(&url)))).await;
}

async fn batches_decide_answer_and_audit_each_item_as_if_alone(vault: Vault) {
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let shipping_key = admin.principal("warehouse", &["fulfillment_service"]).await;
    let support_key = admin.principal("helpdesk", &["support_agent"]).await;
    let marketing_key = admin.principal("newsletter", &["marketing_service"]).await;
    let mut shipping = server.client(&shipping_key).await;

    // Two records of one new subject (they share its first data key), and three refusals of
    // different kinds, each answered as it would be alone.
    let (status, v) = shipping
        .post(
            "/v1/batch/records",
            json!({"purpose": "order_fulfillment", "items": [
                {"subject_id": "b-1", "collection": "customers", "fields": {"name": "Ada Byron", "email": "ada@example.org"}},
                {"subject_id": "b-1", "collection": "customers", "fields": {"shipping_address": "12 Analytical Row"}},
                {"subject_id": "b-2", "collection": "customers", "fields": {"card_number": "4242424242424242"}},
                {"subject_id": "b-3", "collection": "customers", "fields": {"email": "not an email"}},
                {"subject_id": "b-4", "collection": "customers", "fields": {"name": "Grace Hopper"}},
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(statuses(&v), [201, 201, 403, 422, 201], "{v}");
    let results = v["results"].as_array().unwrap();
    assert!(results[2]["error"]["code"].is_string() && results[2]["record_id"].is_null());
    let ids: Vec<&str> = [0, 1, 4]
        .iter()
        .map(|&i| results[i]["record_id"].as_str().unwrap())
        .collect();
    let text = v.to_string();
    for value in ["Ada Byron", "ada@example.org", "4242424242424242", "not an email"] {
        assert!(!text.contains(value), "an answer never echoes a value: {value}");
    }

    // What was written reads back exactly, one by one.
    let (status, one) = shipping
        .get(&format!(
            "/v1/subjects/b-1/records/customers/{}?purpose=order_fulfillment",
            ids[0]
        ))
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["fields"], json!({"name": "Ada Byron", "email": "ada@example.org"}));
    let (_, list) = shipping
        .get("/v1/subjects/b-1/records/customers?purpose=order_fulfillment")
        .await;
    assert_eq!(list["records"].as_array().map(Vec::len), Some(2), "{list}");
    let (_, nothing) = shipping
        .get("/v1/subjects/b-3/records/customers?purpose=order_fulfillment")
        .await;
    assert_eq!(nothing["records"], json!([]), "a refused item wrote nothing");

    // One entry per item: an allow for each creation, a deny for the refusal; nothing for
    // malformed input (nothing was decided).
    assert_eq!(entries(&mut admin, "record.create", "allow").await.len(), 3);
    let denied = entries(&mut admin, "record.create", "deny").await;
    assert_eq!(denied.len(), 1, "{denied:?}");

    // A read-only role's batch is refused item by item and audited; a role needing consent
    // the subject has not given gets nothing through a batch either.
    let (status, v) = server
        .client(&support_key)
        .await
        .post(
            "/v1/batch/records",
            json!({"purpose": "customer_support", "items": [
                {"subject_id": "b-1", "collection": "customers", "fields": {"name": "Mallory"}},
                {"subject_id": "b-9", "collection": "customers", "fields": {"name": "Mallory"}},
            ]}),
        )
        .await;
    assert_eq!((status, statuses(&v)), (200, vec![403, 403]), "{v}");
    let (status, v) = server
        .client(&marketing_key)
        .await
        .post(
            "/v1/batch/records",
            json!({"purpose": "marketing_email", "items": [
                {"subject_id": "b-1", "collection": "customers", "fields": {"email": "ada@example.org"}},
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["results"][0]["error"]["code"], "consent_required", "{v}");
    let denied = entries(&mut admin, "record.create", "deny").await;
    assert_eq!(denied.len(), 4, "{denied:#?}");
    assert_eq!(entries(&mut admin, "record.create", "allow").await.len(), 3);

    // Reads: a record, a subject's records, an unknown record, a subject with none, a
    // malformed record id; each audited as its own read.
    let reads_before = entries(&mut admin, "record.read", "allow").await.len()
        + entries(&mut admin, "record.list", "allow").await.len();
    let (status, v) = shipping
        .post(
            "/v1/batch/records/read",
            json!({"purpose": "order_fulfillment", "items": [
                {"subject_id": "b-1", "collection": "customers", "record_id": ids[1]},
                {"subject_id": "b-1", "collection": "customers", "fields": ["name"]},
                {"subject_id": "b-1", "collection": "customers", "record_id": "rec_00000000000000000000000000000000"},
                {"subject_id": "b-4", "collection": "customers", "record_id": ids[0]},
                {"subject_id": "b-7", "collection": "customers"},
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(statuses(&v), [200, 200, 404, 404, 200], "{v}");
    assert_eq!(
        v["results"][0]["records"][0]["fields"],
        json!({"shipping_address": "12 Analytical Row"})
    );
    let listed = v["results"][1]["records"].as_array().unwrap();
    assert!(
        listed
            .iter()
            .all(|r| r["fields"].as_object().unwrap().keys().all(|k| k == "name")),
        "only the fields asked for: {v}"
    );
    assert_eq!(
        listed.iter().filter(|r| r["fields"]["name"] == "Ada Byron").count(),
        1,
        "{v}"
    );
    assert_eq!(v["results"][4]["records"], json!([]));
    let reads_after = entries(&mut admin, "record.read", "allow").await.len()
        + entries(&mut admin, "record.list", "allow").await.len();
    assert_eq!(
        reads_after - reads_before,
        3,
        "the record, the list and the empty list were each audited"
    );

    // A batch read by a role without the purpose is refused per item, with a deny entry each.
    let (status, v) = server
        .client(&support_key)
        .await
        .post(
            "/v1/batch/records/read",
            json!({"purpose": "order_fulfillment", "items": [
                {"subject_id": "b-1", "collection": "customers"},
                {"subject_id": "b-4", "collection": "customers"},
            ]}),
        )
        .await;
    assert_eq!((status, statuses(&v)), (200, vec![403, 403]), "{v}");
    assert!(!v.to_string().contains("Ada"), "{v}");
    assert_eq!(entries(&mut admin, "record.list", "deny").await.len(), 2);

    // One small request cannot make the server hold gigabytes: a subject's records listed
    // over and over stop being read once the answer passes its bound (16 MiB).
    let big = "x".repeat(16_000);
    fill(&mut shipping, "b-big", &big, 40, 40).await;
    let v = read_lists(&mut shipping, ["b-big"; 40]).await;
    assert!(v.to_string().len() < 24 << 20, "the answer is bounded");
    assert_eq!(v["results"][0]["status"], 200);
    assert_eq!(v["results"][39]["error"]["code"], "batch_answer_too_large");
    // by about one item: a list is 40 x 16,052 bytes, 26.1 of them fill the bound (before, the
    // lists were read eight at a time and 32 were answered)
    let answered = statuses(&v).iter().filter(|s| **s == 200).count();
    assert!((25..=27).contains(&answered), "{answered} lists answered");
    // however the batch starts: a small list first let eight large ones (6.4 MB each) be
    // read together when the batch judged the lists by those read before (51 MB answered);
    // each is now a page of about 4 MiB (and says where the next one starts)
    fill(&mut shipping, "b-huge", &big, 400, 50).await;
    let v = read_lists(&mut shipping, std::iter::once("b-1").chain(["b-huge"; 8])).await;
    assert!(
        v["results"][0]["records"].as_array().is_some_and(|r| !r.is_empty()),
        "{}",
        v["results"][0]
    );
    assert!(v["results"][1]["next_after"].is_string(), "a page of a longer list");
    let answered = statuses(&v)[1..].iter().filter(|s| **s == 200).count();
    assert!(answered <= 4, "{answered} pages of 4 MiB answered after a small one");
    assert!(
        v.to_string().len() < (16 << 20) + (4 << 20) + 40_000,
        "the answer passes its bound by one page at most"
    );
    // a list of many small records weighs what its records do in the answer, not their
    // values alone (counted so, 4,000 one-letter records weighed 180 KB and lists of them
    // answered 24 MB; a page of 1,000 would weigh 25 KB and eight be read at once)
    fill(&mut shipping, "b-tiny", "x", 1000, 1000).await;
    let v = read_lists(&mut shipping, ["b-tiny"; 120]).await;
    let list = v["results"][0].to_string().len();
    assert!(list > 100_000, "{list}");
    let answer = v.to_string().len();
    assert!(
        answer < (16 << 20) + 2 * list,
        "{answer} bytes answered, lists of {list}"
    );
    assert_eq!(v["results"][119]["error"]["code"], "batch_answer_too_large");

    // Input the schema refuses (ids, names) is refused whole, before anything is decided.
    let item = |subject: &str, collection: &str| json!({"subject_id": subject, "collection": collection, "fields": {"name": "Eve"}});
    for (path, body, code) in [
        (
            "/v1/batch/records",
            json!({"purpose": "order_fulfillment", "items": []}),
            Some("batch_size"),
        ),
        (
            "/v1/batch/records",
            json!({"purpose": "order_fulfillment", "items": [], "extra": 1}),
            None,
        ),
        (
            "/v1/batch/records",
            json!({"purpose": "", "items": [item("b-5", "customers")]}),
            Some("invalid_purpose"),
        ),
        (
            "/v1/batch/records",
            json!({"purpose": "order_fulfillment", "items": [item("b-5", "customers"), item("not an id", "customers")]}),
            Some("invalid_subject_id"),
        ),
        (
            "/v1/batch/records",
            json!({"purpose": "order_fulfillment", "items": [item("b-5", "Customers")]}),
            Some("invalid_collection"),
        ),
        (
            "/v1/batch/records/read",
            json!({"purpose": "order_fulfillment", "items": [{"subject_id": "b-1", "collection": "customers", "record_id": "../../etc"}]}),
            Some("invalid_record_id"),
        ),
    ] {
        let (status, v) = shipping.raw_unchecked("POST", path, Some(body)).await;
        assert_eq!(status, 400, "{v}");
        if let Some(code) = code {
            assert_eq!(v["error"]["code"], code, "{v}");
        }
    }
    let (_, none) = shipping
        .get("/v1/subjects/b-5/records/customers?purpose=order_fulfillment")
        .await;
    assert_eq!(none["records"], json!([]), "a batch refused whole wrote nothing");
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"subject_id": format!("m-{i}"), "collection": "customers"}))
        .collect();
    let (status, v) = shipping
        .raw_unchecked(
            "POST",
            "/v1/batch/records/read",
            Some(json!({"purpose": "order_fulfillment", "items": many})),
        )
        .await;
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("batch_size")), "{v}");
}

/// A batch's creations commit together or not at all: when its transaction cannot commit (here
/// the audit log refuses every entry, as a full disk would), no item is written and the call
/// fails, whatever the items' own checks said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_cannot_commit_writes_nothing() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let db = vault.break_audit_log().await;
    let items: Vec<Value> = (0..20)
        .map(|i| json!({"subject_id": format!("c-{}", i % 3), "collection": "customers", "fields": {"name": format!("Name {i}")}}))
        .collect();
    let (status, v) = admin
        .raw_unchecked(
            "POST",
            "/v1/batch/records",
            Some(json!({"purpose": "order_fulfillment", "items": items})),
        )
        .await;
    assert!(status >= 500, "{status} {v}");
    assert!(!v.to_string().contains("Name "), "{v}");
    Vault::mend_audit_log(&db).await;
    let (records,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM records")
        .fetch_one(&db)
        .await
        .unwrap();
    let (keys,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM subject_keys")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!((records, keys), (0, 0), "nothing of the batch was written");
    for subject in ["c-0", "c-1", "c-2"] {
        let (_, list) = admin
            .get(&format!(
                "/v1/subjects/{subject}/records/customers?purpose=order_fulfillment"
            ))
            .await;
        assert_eq!(list["records"], json!([]), "{subject}: {list}");
    }
}
