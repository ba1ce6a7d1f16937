//! Lists of a subject's records over HTTP, a page at a time: every record the purpose may see
//! appears once, in record id order (the order they were created), a page holds at most its
//! `limit` and about 4 MiB, and `next_after` never tells of records held for other purposes.

use serde_json::{Value, json};

use crate::support::{Client, Vault, fresh_postgres_database, postgres_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_read_a_page_at_a_time_on_sqlite() {
    lists_are_read_a_page_at_a_time(Vault::init()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_read_a_page_at_a_time_on_postgres() {
    let Some(url) = postgres_url() else {
        assert!(std::env::var("CI").is_err(), "CI must run the PostgreSQL tests");
        return;
    };
    lists_are_read_a_page_at_a_time(Vault::init_with(Some(fresh_postgres_database(&url)))).await;
}

/// Creates a record of `subject` for `purpose` and returns its id.
async fn create(client: &mut Client, subject: &str, purpose: &str, fields: Value) -> String {
    let (status, v) = client
        .post(
            &format!("/v1/subjects/{subject}/records/customers"),
            json!({"purpose": purpose, "fields": fields}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    v["record_id"].as_str().unwrap().to_owned()
}

/// One page of `subject`'s records under `order_fulfillment`, with the query `extra`.
async fn page(client: &mut Client, subject: &str, extra: &str) -> (Vec<String>, Option<String>, usize) {
    let (status, v) = client
        .get(&format!(
            "/v1/subjects/{subject}/records/customers?purpose=order_fulfillment{extra}"
        ))
        .await;
    assert_eq!(status, 200, "{v}");
    let ids = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["record_id"].as_str().unwrap().to_owned())
        .collect();
    let next = v["next_after"].as_str().map(str::to_owned);
    (ids, next, v.to_string().len())
}

/// Every page of `subject`'s records of `limit` (none: the default), in order.
async fn all_pages(client: &mut Client, subject: &str, limit: Option<usize>) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut extra = String::new();
        if let Some(limit) = limit {
            extra.push_str(&format!("&limit={limit}"));
        }
        if let Some(after) = &after {
            extra.push_str(&format!("&after={after}"));
        }
        let (ids, next, _) = page(client, subject, &extra).await;
        pages.push(ids);
        assert!(pages.len() < 1000, "pages never end");
        match next {
            Some(next) => after = Some(next),
            None => return pages,
        }
    }
}

async fn lists_are_read_a_page_at_a_time(vault: Vault) {
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let warehouse_key = admin.principal("warehouse", &["fulfillment_service"]).await;
    let mut warehouse = server.client(&warehouse_key).await;

    // Records the warehouse may see, and records held for payment alone (which it may not),
    // some between them and the last ones after them all.
    let mut visible = Vec::new();
    let mut hidden = Vec::new();
    for i in 0..7 {
        visible.push(
            create(
                &mut admin,
                "p-1",
                "order_fulfillment",
                json!({"email": format!("v{i}@example.org")}),
            )
            .await,
        );
        if i % 3 == 1 {
            hidden.push(create(&mut admin, "p-1", "payment", json!({"card_number": "4242424242424242"})).await);
        }
    }
    // a later millisecond than every visible record: these are the list's last
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    for _ in 0..3 {
        hidden.push(create(&mut admin, "p-1", "payment", json!({"card_number": "4242424242424242"})).await);
    }
    // a list is in record id order, which is the order records were created (to the millisecond)
    visible.sort();
    assert!(hidden.iter().rev().take(3).all(|h| visible.iter().all(|v| v < h)));

    // Every limit pages through exactly the records it may see, each once, in order; a page
    // is full but the last, and the last page says there is no next one, though records held
    // for payment alone follow it (`next_after` would otherwise tell they exist).
    for limit in 1..=8 {
        let pages = all_pages(&mut warehouse, "p-1", Some(limit)).await;
        let seen: Vec<String> = pages.concat();
        assert_eq!(seen, visible, "limit {limit}: {pages:?}");
        let (last, full) = pages.split_last().unwrap();
        assert!(full.iter().all(|p| p.len() == limit), "limit {limit}: {pages:?}");
        assert!(!last.is_empty() && last.len() <= limit, "limit {limit}: {pages:?}");
    }
    let (ids, next, _) = page(&mut warehouse, "p-1", "").await;
    assert_eq!(
        (ids, next),
        (visible.clone(), None),
        "the default page holds a short list whole"
    );
    let (ids, next, _) = page(&mut warehouse, "p-1", "&limit=7").await;
    assert_eq!(
        (ids, next),
        (visible.clone(), None),
        "a page holding the last visible record is the last"
    );

    // A record written or deleted behind the cursor shifts nothing; one written after it is
    // read in its turn.
    let (first, next, _) = page(&mut warehouse, "p-1", "&limit=3").await;
    let next = next.unwrap();
    assert_eq!(next, first[2]);
    let (status, v) = admin
        .call(
            "DELETE",
            &format!(
                "/v1/subjects/p-1/records/customers/{}?purpose=order_fulfillment",
                first[0]
            ),
            None,
        )
        .await;
    assert_eq!(status, 204, "{v}");
    let newest = create(
        &mut admin,
        "p-1",
        "order_fulfillment",
        json!({"email": "new@example.org"}),
    )
    .await;
    let (rest, next, _) = page(&mut warehouse, "p-1", &format!("&after={next}")).await;
    assert_eq!(next, None);
    let mut expected = visible[3..].to_vec();
    expected.push(newest);
    assert_eq!(rest, expected);
    // a cursor is only a place: one naming a record deleted since, or another subject's, pages on
    let (ids, _, _) = page(&mut warehouse, "p-1", &format!("&after={}&limit=2", first[0])).await;
    assert_eq!(ids, visible[1..3]);
    let other = create(
        &mut admin,
        "p-2",
        "order_fulfillment",
        json!({"email": "other@example.org"}),
    )
    .await;
    let (ids, next, _) = page(&mut warehouse, "p-1", &format!("&after={other}")).await;
    assert_eq!((ids.len(), next), (0, None), "p-1 has no record after p-2's newest");

    // Each page is audited as one read, with where it started, its limit and how many
    // records it showed: which records it disclosed.
    let (ids, _, _) = page(&mut warehouse, "p-1", &format!("&after={}&limit=2", visible[2])).await;
    assert_eq!(ids, visible[3..5]);
    let (status, events) = admin.get("/v1/audit/events?action=record.list&limit=1000").await;
    assert_eq!(status, 200, "{events}");
    let entry = &events["events"].as_array().unwrap().last().unwrap()["entry"];
    assert_eq!(entry["decision"], "allow", "{events}");
    assert_eq!(
        (
            &entry["detail"]["after"],
            &entry["detail"]["limit"],
            &entry["detail"]["records"]
        ),
        (&json!(visible[2]), &json!("2"), &json!("2")),
        "{events}"
    );

    // A record of a purpose this one is compatible with (support may look at an order),
    // holding only fields this one does not declare, is not shown: not listed with no fields
    // (its id and times told of another purpose's records), and not found alone.
    let shipping = create(
        &mut admin,
        "p-3",
        "order_fulfillment",
        json!({"shipping_address": "1 Road"}),
    )
    .await;
    let email = create(
        &mut admin,
        "p-3",
        "order_fulfillment",
        json!({"email": "p3@example.org"}),
    )
    .await;
    let support = |path: &str| format!("/v1/subjects/p-3/records/customers{path}?purpose=customer_support");
    let (status, v) = admin.get(&support("")).await;
    assert_eq!(status, 200, "{v}");
    let ids: Vec<&str> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["record_id"].as_str().unwrap())
        .collect();
    assert_eq!((ids, v.get("next_after")), (vec![email.as_str()], None), "{v}");
    let (status, v) = admin.get(&support(&format!("/{shipping}"))).await;
    assert_eq!(status, 404, "{v}");
    let (status, v) = admin.get(&support(&format!("/{email}"))).await;
    assert_eq!((status, &v["fields"]["email"]), (200, &json!("p3@example.org")), "{v}");

    // A page named wrongly is refused, naming what is wrong, and reads nothing.
    for extra in [
        "&limit=0",
        "&limit=1001",
        "&limit=-1",
        "&limit=ten",
        "&after=rec_1",
        "&after=../x",
        "&after=",
    ] {
        let (status, v) = warehouse
            .get(&format!(
                "/v1/subjects/p-1/records/customers?purpose=order_fulfillment{extra}"
            ))
            .await;
        assert_eq!(status, 400, "{extra}: {v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains("limit") || message.contains("after"), "{extra}: {v}");
    }

    // A page ends at about 4 MiB, whatever its limit: one read never holds a large list
    // whole (a dozen clients reading 22,000 records of 16 KB held 4-5 GB before).
    let big = "x".repeat(16_000);
    for _ in 0..6 {
        let items: Vec<Value> = (0..50)
            .map(|_| json!({"subject_id": "p-big", "collection": "customers", "fields": {"shipping_address": big}}))
            .collect();
        let (status, v) = admin
            .post(
                "/v1/batch/records",
                json!({"purpose": "order_fulfillment", "items": items}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
    }
    let (ids, next, bytes) = page(&mut warehouse, "p-big", "").await;
    assert!(next.is_some() && ids.len() < 300, "{} records in one page", ids.len());
    assert!(bytes < (4 << 20) + 20_000, "a page of {bytes} bytes");
    assert!(bytes > (4 << 20) - 20_000, "a page of {bytes} bytes");
    let pages = all_pages(&mut warehouse, "p-big", None).await;
    let seen = pages.concat();
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len(), pages.len()), (300, 300, 2));

    // A batch pages its lists as one read would, item by item.
    let (status, v) = warehouse
        .post(
            "/v1/batch/records/read",
            json!({"purpose": "order_fulfillment", "items": [
                {"subject_id": "p-1", "collection": "customers", "limit": 2},
                {"subject_id": "p-1", "collection": "customers", "limit": 2, "after": visible[4]},
                {"subject_id": "p-1", "collection": "customers", "record_id": visible[3]},
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let ids = |i: usize| -> Vec<&str> {
        v["results"][i]["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["record_id"].as_str().unwrap())
            .collect()
    };
    assert_eq!(ids(0), [visible[1].as_str(), visible[2].as_str()], "{v}");
    assert_eq!(v["results"][0]["next_after"], visible[2].as_str());
    assert_eq!(ids(1)[0], visible[5].as_str(), "{v}");
    assert_eq!(ids(2), [visible[3].as_str()]);
    assert!(v["results"][2].get("next_after").is_none(), "{v}");
    // (a record_id with a page is allowed by the schema: what it cannot say is a 422)
    for (item, word, refused) in [
        (
            json!({"subject_id": "p-1", "collection": "customers", "limit": 0}),
            "limit",
            400,
        ),
        (
            json!({"subject_id": "p-1", "collection": "customers", "after": "rec_x"}),
            "after",
            400,
        ),
        (
            json!({"subject_id": "p-1", "collection": "customers", "record_id": visible[3], "limit": 2}),
            "record_id",
            422,
        ),
    ] {
        let (status, v) = warehouse
            .raw_unchecked(
                "POST",
                "/v1/batch/records/read",
                Some(json!({"purpose": "order_fulfillment", "items": [{"subject_id": "p-1", "collection": "customers"}, item]})),
            )
            .await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (refused, Some("invalid_page")),
            "{v}"
        );
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains("items[1]") && message.contains(word), "{v}");
    }
}
