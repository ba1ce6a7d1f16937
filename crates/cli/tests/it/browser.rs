//! The preference center in a real browser: headless Chromium, driven through WebDriver
//! (`chromedriver`), used as a customer would: open the link, switch a consent off, save,
//! read the receipt; a tampered and an expired link are refused.
//!
//! Needs `chromium` and `chromedriver` on `PATH` (Debian: `chromium chromium-driver`); without
//! them the test is skipped, except under CI (`CI` set), where it fails. A screenshot of the page
//! is left in `$CUSTODIA_TEST_ARTIFACTS` (default `<target dir>/test-artifacts/`).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client as Browser, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::support::{Client, Vault};

const SUBJECT: &str = "cust_browser";
/// How long any one wait for the browser may take (a page load, an element to appear).
const WAIT: Duration = Duration::from_secs(15);

/// An executable `name` on `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Whether this is a CI run, where a missing browser is a failure and not a skip (the rule
/// of the PostgreSQL tests: `CI` set, unless to `false` or `0`).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "false" | "0"))
}

/// Where the test leaves its screenshot: `$CUSTODIA_TEST_ARTIFACTS`, else
/// `<target dir>/test-artifacts` (`$CARGO_TARGET_DIR`, else the workspace's `target`).
fn artifacts_dir() -> PathBuf {
    let dir = if let Some(dir) = std::env::var_os("CUSTODIA_TEST_ARTIFACTS").filter(|d| !d.is_empty()) {
        PathBuf::from(dir)
    } else {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .filter(|d| !d.is_empty())
            .map_or_else(|| workspace.join("target"), |d| workspace.join(d));
        target.join("test-artifacts")
    };
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// A `chromedriver` child process on a free port, killed (with the browsers it started, in
/// its own process group) when dropped, also when the test panics.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    /// Starts chromedriver; it and its browsers keep their temporary files in `tmp` (their
    /// `TMPDIR`), apart from the other tests' temporary directories.
    fn start(chromedriver: &Path, log: &Path, tmp: &Path) -> Self {
        use std::os::unix::process::CommandExt;

        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .env("TMPDIR", tmp)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", chromedriver.display()));
        let mut driver = Self { child, port };
        // Poll until it listens (it prints nothing useful on stdout we could wait on).
        let deadline = Instant::now() + WAIT;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!(
                    "chromedriver exited ({status}) before listening; log: {}",
                    log.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on port {port} within {WAIT:?}; log: {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        driver
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and any Chromium left behind by a failed test.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        // SIGKILL is delivered, not awaited: wait until the group is gone, so that nothing of
        // it outlives the test's temporary files or overlaps the next tests.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline
            && Command::new("kill")
                .args(["-0", "--", &format!("-{}", self.child.id())])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A headless Chromium session, its profile in `profile`.
async fn open_browser(driver: &Driver, chromium: &Path, profile: &Path) -> Browser {
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--window-size=1024,1280",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let ms = u64::try_from(WAIT.as_millis()).unwrap();
    caps.insert("timeouts".into(), json!({"pageLoad": ms, "script": ms, "implicit": 0}));
    ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url())
        .await
        .unwrap_or_else(|e| panic!("no WebDriver session (chromedriver log in the artifacts directory): {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preference_center_in_a_real_browser() {
    let (Some(chromium), Some(chromedriver)) = (
        on_path("chromium").or_else(|| on_path("chromium-browser")),
        on_path("chromedriver"),
    ) else {
        assert!(
            !in_ci(),
            "CI must run the browser test: install chromium and chromedriver \
             (Debian: apt-get install chromium chromium-driver) and put them on PATH"
        );
        eprintln!("skipping the browser test: chromium or chromedriver is not on PATH");
        return;
    };
    let started = Instant::now();
    let artifacts = artifacts_dir();
    for stale in ["preference-center.png", "failure.png"] {
        let _ = std::fs::remove_file(artifacts.join(stale));
    }

    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (status, v) = admin
        .post(
            &format!("/v1/subjects/{SUBJECT}/records/customers"),
            json!({"purpose": "order_fulfillment", "fields": {"email": "ann@example.com", "name": "Ann"}}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = admin
        .post(
            &format!("/v1/subjects/{SUBJECT}/consents"),
            json!({"purpose": "marketing_email", "granted": true, "notice_version": "v1", "method": "api"}),
        )
        .await;
    assert_eq!(status, 201, "{v}");

    // The profile outlives the driver (dropped in reverse order): Chromium is gone before it is.
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver::start(&chromedriver, &artifacts.join("chromedriver.log"), profile.path());
    let browser = open_browser(&driver, &chromium, profile.path()).await;

    // The scenario runs in its own task so that the session is closed even when it panics;
    // the panic is then resumed here.
    let scenario = tokio::spawn(scenario(browser.clone(), admin, server.addr, artifacts.clone()));
    let outcome = scenario.await;
    if outcome.is_err()
        && let Ok(png) = browser.screenshot().await
    {
        let shot = artifacts.join("failure.png");
        if std::fs::write(&shot, png).is_ok() {
            eprintln!("what the browser showed when the test failed: {}", shot.display());
        }
    }
    let _ = browser.close().await;
    drop(driver);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
    eprintln!("browser test took {:.1?}", started.elapsed());
}

async fn scenario(browser: Browser, mut admin: Client, addr: SocketAddr, artifacts: PathBuf) {
    let (status, link) = admin
        .post(&format!("/v1/subjects/{SUBJECT}/portal-links"), json!({}))
        .await;
    assert_eq!(status, 201, "{link}");
    let url = link["url"].as_str().unwrap().to_owned();
    let path = url
        .strip_prefix(&format!("http://{addr}"))
        .unwrap_or_else(|| panic!("the link {url} is not on the server's address {addr}"))
        .to_owned();
    let token = path.strip_prefix("/portal/").unwrap().to_owned();

    // The page, as the link opens it.
    browser.goto(&url).await.unwrap();
    assert_eq!(browser.title().await.unwrap(), "Your privacy choices");
    let marketing = browser.find(Locator::Id("consent-marketing_email")).await.unwrap();
    assert!(
        marketing.is_selected().await.unwrap(),
        "consent given through the API shows as on"
    );
    assert_eq!(text(&browser, "state-marketing_email").await, "(On)");
    let analytics = browser.find(Locator::Id("consent-analytics")).await.unwrap();
    assert!(
        !analytics.is_selected().await.unwrap(),
        "consent never given shows as off"
    );
    for request in ["request-access", "request-rectification", "request-erasure"] {
        browser.find(Locator::Id(request)).await.unwrap();
    }
    let notice_version = browser
        .find(Locator::Css("#choices input[name=notice_version]"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(notice_version.starts_with("sha256-"), "{notice_version}");

    // Switch marketing off and save: the browser is sent back to the page, which says so.
    marketing.click().await.unwrap();
    assert!(!marketing.is_selected().await.unwrap());
    browser
        .find(Locator::Id("save-choices"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The page that follows: the status line, or an error page (`p.error`) that says why not.
    let shown = wait_for(&browser, "#status, p.error").await;
    let message = shown.text().await.unwrap();
    assert_eq!(
        shown.attr("id").await.unwrap().as_deref(),
        Some("status"),
        "saving the form was refused: {message:?} (at {})",
        browser.current_url().await.unwrap()
    );
    assert_eq!(message, "Your choices are saved.");
    let after = browser.current_url().await.unwrap();
    assert_eq!(after.path(), path, "saved on the link's own page");
    assert!(
        after.query().is_some_and(|q| q.starts_with("saved=") && q != "saved=0"),
        "{after}"
    );

    let png = browser.screenshot().await.unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000,
        "not a PNG ({} bytes)",
        png.len()
    );
    let shot = artifacts.join("preference-center.png");
    std::fs::write(&shot, &png).unwrap();
    eprintln!("screenshot of the preference center: {}", shot.display());

    // Opened again, the page shows the choice the ledger now holds.
    browser.goto(&url).await.unwrap();
    let marketing = browser.find(Locator::Id("consent-marketing_email")).await.unwrap();
    assert!(!marketing.is_selected().await.unwrap(), "the withdrawal was saved");
    assert_eq!(text(&browser, "state-marketing_email").await, "(Off)");
    assert!(
        browser.find_all(Locator::Id("status")).await.unwrap().is_empty(),
        "no status without a change"
    );

    // The ledger: withdrawn through the form, against the notice the page showed.
    let (status, v) = admin.get(&format!("/v1/subjects/{SUBJECT}/consents")).await;
    assert_eq!(status, 200, "{v}");
    let current = v["consents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["purpose"] == "marketing_email")
        .unwrap_or_else(|| panic!("no marketing_email consent: {v}"));
    assert_eq!(current["granted"], false, "{v}");
    assert_eq!(current["method"], "web_form", "{v}");
    assert_eq!(current["notice_version"], notice_version.as_str(), "{v}");
    let latest = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|h| h["purpose"] == "marketing_email")
        .unwrap();
    assert_eq!(
        (&latest["value"], &latest["method"], &latest["notice_version"]),
        (&json!(false), &json!("web_form"), &json!(notice_version)),
        "{v}"
    );

    // The receipt, as JSON (fetched directly: the browser would download it) ...
    let receipt_json = browser
        .find(Locator::Id("receipt-json"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(receipt_json, format!("{path}/receipt.json"));
    let mut anonymous = Client::connect(addr).await;
    let (status, receipt) = anonymous.get(&receipt_json).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["subject_id"], SUBJECT, "{receipt}");
    let entry = receipt["consents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["purpose"] == "marketing_email")
        .unwrap_or_else(|| panic!("no marketing_email in the receipt: {receipt}"))
        .clone();
    assert_eq!(
        (&entry["granted"], &entry["method"], &entry["notice_version"]),
        (&json!(false), &json!("web_form"), &json!(notice_version)),
        "{receipt}"
    );

    // ... and as a page, reached by its link.
    browser
        .find(Locator::Id("receipt-html"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let table = wait_for(&browser, "#receipt-consents").await;
    assert_eq!(browser.current_url().await.unwrap().path(), format!("{path}/receipt"));
    assert_eq!(browser.title().await.unwrap(), "Consent receipt");
    let mut row = None;
    for tr in table.find_all(Locator::Css("tbody tr")).await.unwrap() {
        let mut cells = Vec::new();
        for td in tr.find_all(Locator::Css("td")).await.unwrap() {
            cells.push(td.text().await.unwrap());
        }
        if cells.first().map(String::as_str) == entry["description"].as_str() {
            row = Some(cells);
        }
    }
    let row = row.unwrap_or_else(|| panic!("no row for {} in the receipt page", entry["description"]));
    assert_eq!(row[1], "Withdrawn", "{row:?}");
    assert_eq!(row[3], "web_form", "{row:?}");
    assert_eq!(row[4], notice_version, "{row:?}");

    // A link changed by one character is refused, with a page that says so.
    let mut chars: Vec<char> = token.chars().collect();
    let mid = (chars.len() / 2..chars.len())
        .find(|&i| chars[i].is_ascii_alphanumeric())
        .unwrap();
    chars[mid] = if chars[mid] == 'a' { 'b' } else { 'a' };
    let tampered: String = chars.into_iter().collect();
    let tampered_path = format!("/portal/{tampered}");
    let (status, _) = anonymous.text("GET", &tampered_path, "").await;
    assert_eq!(status, 403, "a tampered link is refused");
    browser.goto(&format!("http://{addr}{tampered_path}")).await.unwrap();
    let error = wait_for(&browser, "#link-error").await;
    let message = error.text().await.unwrap();
    assert!(message.starts_with("This link is not valid"), "{message}");
    assert!(browser.find_all(Locator::Id("choices")).await.unwrap().is_empty());

    // A link past its time is refused as expired.
    let (status, short) = admin
        .post(
            &format!("/v1/subjects/{SUBJECT}/portal-links"),
            json!({"ttl_seconds": 1}),
        )
        .await;
    assert_eq!(status, 201, "{short}");
    let short_url = short["url"].as_str().unwrap().to_owned();
    let short_path = short_url.strip_prefix(&format!("http://{addr}")).unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = anonymous.text("GET", &short_path, "").await;
        if status != 200 {
            assert_eq!(status, 403, "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a link of one second still opens after 5 s (expires_at {})",
            short["expires_at"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.goto(&short_url).await.unwrap();
    let error = wait_for(&browser, "#link-error").await;
    let message = error.text().await.unwrap();
    assert!(message.starts_with("This link has expired"), "{message}");
}

/// The first element `css` selects, once the page has one; the page shown instead, if it
/// never does.
async fn wait_for(browser: &Browser, css: &str) -> fantoccini::elements::Element {
    match browser.wait().at_most(WAIT).for_element(Locator::Css(css)).await {
        Ok(element) => element,
        Err(e) => {
            let url = browser.current_url().await.map(String::from).unwrap_or_default();
            let source = browser.source().await.unwrap_or_default();
            panic!("nothing matches `{css}` within {WAIT:?} ({e}); the browser shows {url}:\n{source}")
        }
    }
}

/// The text of the element with id `id`.
async fn text(browser: &Browser, id: &str) -> String {
    browser.find(Locator::Id(id)).await.unwrap().text().await.unwrap()
}
