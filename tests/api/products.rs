//! Suppliers' product lists imported from their workbooks, and the catalogue prescribers search.

use std::time::{Duration, Instant};

use mmt_sidecar::service::jobs::Workers;
use poem::{
    http::StatusCode,
    test::{TestForm, TestFormField},
};
use serde_json::{Value, json};

use crate::{
    auth,
    helpers::TestDb,
    patients::Api,
    workbooks::{self, Line, SUPPLIERS},
};

const GARCIA: (&str, &str) = ("drgarcia", "Physician-Garcia-2");
const MILLER: (&str, &str) = ("fdmiller", "Front-Miller-5");

async fn upload(api: &Api, supplier: &str, name: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
    let form = TestForm::new().text("supplier", supplier).field(
        TestFormField::bytes(bytes)
            .name("file")
            .filename(name)
            .content_type("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    );
    let resp = api
        .db
        .client()
        .post("/api/products/imports/")
        .header("authorization", format!("Bearer {}", api.token))
        .multipart(form)
        .send()
        .await;
    let status = resp.0.status();
    (status, serde_json::from_str(&resp.0.into_body().into_string().await.unwrap()).unwrap_or(Value::Null))
}

/// Uploads a workbook, runs its job on a worker and returns the finished import.
async fn imported(api: &Api, supplier: &str, bytes: Vec<u8>) -> Value {
    let (status, queued) = upload(api, supplier, &format!("{supplier}.xlsx"), bytes).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    finished(api, queued["import_id"].as_i64().unwrap()).await
}

async fn finished(api: &Api, import_id: i64) -> Value {
    let workers = Workers::new(api.db.state()).spawn(1);
    let deadline = Instant::now() + Duration::from_secs(60);
    let import = loop {
        let (status, import) = api.get(&format!("/api/products/imports/{import_id}/")).await;
        assert_eq!(status, StatusCode::OK, "{import}");
        if import["state"] != "queued" {
            break import;
        }
        assert!(Instant::now() < deadline, "the import did not finish: {import}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    workers.shutdown(Duration::from_secs(5)).await;
    import
}

fn counts(import: &Value) -> [i64; 5] {
    let r = &import["report"];
    ["created", "updated", "unchanged", "discontinued"]
        .map(|k| r[k].as_i64().unwrap_or(-1))
        .into_iter()
        .chain([r["rejected"].as_array().map_or(-1, |a| a.len() as i64)])
        .collect::<Vec<_>>()
        .try_into()
        .unwrap()
}

async fn catalogue_checksum(db: &TestDb) -> String {
    db.scalar_text(
        "SELECT CONCAT(COUNT(*), ':', COALESCE(SUM(CRC32(CONCAT_WS('|', id, supplier, product_key, brand, \
         COALESCE(price, ''), COALESCE(discontinued_at, '')))), 0)) FROM mmt_products",
    )
    .await
}

#[tokio::test]
async fn each_supplier_fixture_imports_with_the_expected_counts() {
    let api = Api::admin().await;
    for (n, supplier) in SUPPLIERS.into_iter().enumerate() {
        let lines = workbooks::lines(12, 400_000 + 1000 * n as u32);
        let import = imported(&api, supplier, workbooks::workbook(supplier, &lines)).await;
        assert_eq!(import["state"], "done", "{supplier}: {import}");
        let footer = if supplier == "tasmanian-botanics" { 1 } else { 0 };
        assert_eq!(counts(&import), [12, 0, 0, 0, footer], "{supplier}: {import}");
        if footer == 1 {
            assert_eq!(import["report"]["rejected"][0]["row"], 15, "the footer's own row number: {import}");
        }
    }
    assert_eq!(api.db.scalar("SELECT COUNT(*) FROM mmt_products").await, 60);
    let (_, page) = api.get("/api/products/?supplier=medreleaf&q=Calm").await;
    let calm = &page["items"][0];
    assert_eq!(
        (calm["brand"].as_str(), calm["form"].as_str(), calm["schedule"].as_str(), calm["cbd"].as_str()),
        (Some("Calm 1"), Some("oil"), Some("S4"), Some("10 %")),
        "text cells read as numbers, the form in the catalogue's words: {calm}"
    );
    assert_eq!(calm["price"], json!("40.00"), "{calm}");
    let (_, phytoca) = api.get("/api/products/?supplier=phytoca&q=403000").await;
    assert_eq!(phytoca["items"][0]["artg_number"], "403000", "AUST L prefix dropped: {phytoca}");
    assert_eq!(phytoca["items"][0]["price_includes_gst"], false);
}

#[tokio::test]
async fn a_reimport_reports_exactly_its_changes_and_the_same_sheet_twice_changes_nothing() {
    let api = Api::admin().await;
    let first = workbooks::lines(12, 500_000);
    let import = imported(&api, "botanitech", workbooks::workbook("botanitech", &first)).await;
    assert_eq!(counts(&import), [12, 0, 0, 0, 0], "{import}");

    let mut second: Vec<Line> = first.clone();
    second[1].price += 5.0;
    let dropped = second.remove(4);
    let mut added = workbooks::lines(1, 599_000).remove(0);
    added.brand = "Newcomer 1".into();
    second.push(added);
    let import = imported(&api, "botanitech", workbooks::workbook("botanitech", &second)).await;
    assert_eq!(counts(&import), [1, 1, 10, 1, 0], "{import}");
    let changes: Vec<(String, String)> = import["report"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["action"].as_str().unwrap().to_string(), c["key"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        changes,
        [
            ("updated".to_string(), "artg:500001".to_string()),
            ("created".to_string(), "artg:599000".to_string()),
            ("discontinued".to_string(), format!("artg:{}", dropped.artg.unwrap())),
        ]
    );
    let before = catalogue_checksum(&api.db).await;
    let again = imported(&api, "botanitech", workbooks::workbook("botanitech", &second)).await;
    assert_eq!(counts(&again), [0, 0, 12, 0, 0], "{again}");
    assert_eq!(catalogue_checksum(&api.db).await, before, "an unchanged import writes no product");

    let (_, current) = api.get("/api/products/?supplier=botanitech&page_size=100").await;
    assert_eq!(current["total"], 12, "the discontinued product is not offered");
    let (_, all) = api.get("/api/products/?supplier=botanitech&include_discontinued=true").await;
    assert_eq!(all["total"], 13);
    let back = imported(&api, "botanitech", workbooks::workbook("botanitech", &first)).await;
    assert_eq!(counts(&back)[1], 2, "the returning product and the old price are updates: {back}");
}

#[tokio::test]
async fn a_broken_sheet_changes_nothing_and_says_why() {
    let api = Api::admin().await;
    imported(&api, "alma", workbooks::workbook("alma", &workbooks::lines(6, 700_000))).await;
    let before = catalogue_checksum(&api.db).await;

    let wrong_layout =
        imported(&api, "alma", workbooks::workbook("botanitech", &workbooks::lines(6, 700_000))).await;
    assert_eq!(wrong_layout["state"], "failed", "{wrong_layout}");
    let missing = wrong_layout["missing_columns"].as_array().unwrap();
    assert!(
        missing.contains(&json!("Sched.")) && missing.contains(&json!("Wholesale Price")),
        "{wrong_layout}"
    );
    assert!(wrong_layout["error"].as_str().unwrap().contains("Alma's layout"), "{wrong_layout}");

    let not_a_workbook = imported(&api, "alma", b"PKnot really a zip".to_vec()).await;
    assert_eq!(not_a_workbook["state"], "failed", "{not_a_workbook}");
    assert!(not_a_workbook["error"].as_str().unwrap().contains("not an .xlsx workbook"), "{not_a_workbook}");
    assert_eq!(catalogue_checksum(&api.db).await, before, "a failed import leaves the catalogue as it was");

    let (status, problem) = upload(&api, "acme", "acme.xlsx", workbooks::workbook("alma", &[])).await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("supplier"))
    );
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("tasmanian-botanics"), "{problem}");
    let (status, problem) = upload(&api, "alma", "list.csv", b"Brand,ARTG".to_vec()).await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("file"))
    );
}

#[tokio::test]
async fn racing_imports_of_one_supplier_take_turns() {
    let api = Api::admin().await;
    let bytes = workbooks::workbook("phytoca", &workbooks::lines(30, 800_000));
    let (a, b) = tokio::join!(
        upload(&api, "phytoca", "a.xlsx", bytes.clone()),
        upload(&api, "phytoca", "b.xlsx", bytes.clone())
    );
    let workers = Workers::new(api.db.state()).spawn(2);
    let first = finished(&api, a.1["import_id"].as_i64().unwrap()).await;
    let second = finished(&api, b.1["import_id"].as_i64().unwrap()).await;
    workers.shutdown(Duration::from_secs(5)).await;
    let mut created = [counts(&first)[0], counts(&second)[0]];
    created.sort_unstable();
    assert_eq!(created, [0, 30], "one creates, the other finds them: {first} / {second}");
    assert_eq!(api.db.scalar("SELECT COUNT(*) FROM mmt_products").await, 30);
}

#[tokio::test]
async fn prescribers_search_and_only_practice_administrators_import() {
    let api = Api::admin().await;
    imported(&api, "botanitech", workbooks::workbook("botanitech", &workbooks::lines(24, 900_000))).await;
    let garcia = Api { db: api.db.clone_handle(), token: auth::tokens(&api.db, GARCIA).await.0 };
    let (status, page) = garcia.get("/api/products/?q=cal&form=Oral%20liquid&schedule=Schedule%204").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let brands: Vec<&str> =
        page["items"].as_array().unwrap().iter().map(|p| p["brand"].as_str().unwrap()).collect();
    assert_eq!(brands, ["Calm 1"], "Calm 2 is an S8 oil: {page}");
    let (_, s8) = garcia.get("/api/products/?q=calm&schedule=8").await;
    assert_eq!(s8["items"][0]["brand"], "Calm 2", "{s8}");
    let (_, paged) = garcia.get("/api/products/?page_size=5&page=2").await;
    assert_eq!((paged["total"].as_i64(), paged["items"].as_array().unwrap().len()), (Some(24), 5));
    let (status, problem) = garcia.get("/api/products/?schedule=S12").await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("schedule"))
    );

    let (status, _) =
        upload(&garcia, "alma", "alma.xlsx", workbooks::workbook("alma", &workbooks::lines(2, 1))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a physician does not import catalogues");
    let miller = Api { db: api.db.clone_handle(), token: auth::tokens(&api.db, MILLER).await.0 };
    let (status, _) =
        upload(&miller, "alma", "alma.xlsx", workbooks::workbook("alma", &workbooks::lines(2, 1))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(api.db.scalar("SELECT COUNT(*) FROM mmt_product_imports").await, 1);
}

#[tokio::test]
async fn a_product_links_to_an_inventory_drug_and_is_prescribed_as_it() {
    let api = Api::admin().await;
    imported(&api, "alma", workbooks::workbook("alma", &workbooks::lines(3, 410_000))).await;
    sqlx::query("INSERT INTO drugs (drug_id, name, form, active) VALUES (77, 'Alma Balance oil', '3', 1), (78, 'Old', '3', 0)")
        .execute(&api.db.pool)
        .await
        .unwrap();
    let id = api.db.scalar("SELECT CAST(id AS SIGNED) FROM mmt_products WHERE artg_number = '410000'").await;
    let garcia = Api { db: api.db.clone_handle(), token: auth::tokens(&api.db, GARCIA).await.0 };
    let (status, linked) =
        garcia.call("PATCH", &format!("/api/products/{id}/"), Some(json!({"drug_id": 77}))).await;
    assert_eq!((status, linked["drug_id"].as_i64()), (StatusCode::OK, Some(77)), "{linked}");
    let (status, problem) =
        garcia.call("PATCH", &format!("/api/products/{id}/"), Some(json!({"drug_id": 78}))).await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("drug_id"))
    );
    let miller = Api { db: api.db.clone_handle(), token: auth::tokens(&api.db, MILLER).await.0 };
    let (status, _) =
        miller.call("PATCH", &format!("/api/products/{id}/"), Some(json!({"drug_id": null}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(api.db.scalar(&format!("SELECT drug_id FROM mmt_products WHERE id = {id}")).await, 77);

    let rx = json!({"product_id": id, "dosage": "0.5", "quantity": "1"});
    let (status, written) = garcia.call("POST", "/api/patients/1/prescriptions/", Some(rx)).await;
    assert_eq!(status, StatusCode::CREATED, "{written}");
    assert_eq!(
        (written["drug"].as_str(), written["drug_id"].as_i64(), written["product_id"].as_i64()),
        (Some("Calm 1 Blend 1 oil"), Some(77), Some(id)),
        "named after the product and prescribed as its inventory drug: {written}"
    );
    let stored =
        api.db.scalar(&format!("SELECT drug_id FROM prescriptions WHERE id = {}", written["id"])).await;
    assert_eq!(stored, 77, "OpenEMR's own drug_id column");
    sqlx::query("UPDATE mmt_products SET discontinued_at = NOW() WHERE id = ?")
        .bind(id)
        .execute(&api.db.pool)
        .await
        .unwrap();
    let rx = json!({"product_id": id, "dosage": "0.5", "quantity": "1"});
    let (status, problem) = garcia.call("POST", "/api/patients/1/prescriptions/", Some(rx)).await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("product_id"))
    );
}

#[test]
fn the_command_line_imports_at_once_and_refuses_a_sheet_that_does_not_fit() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let db = runtime.block_on(TestDb::migrated());
    let dir = std::env::temp_dir().join(format!("mmt-products-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("tasmanian.xlsx");
    std::fs::write(&good, workbooks::workbook("tasmanian-botanics", &workbooks::lines(8, 300_000))).unwrap();
    let out = db.run_binary(&["import-products", "--supplier", "Tasmanian Botanics", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["created"].as_i64(), report["rejected"].as_array().map(Vec::len)),
        (Some(8), Some(1)),
        "{report}"
    );

    let wrong = dir.join("wrong.xlsx");
    std::fs::write(&wrong, workbooks::workbook("medreleaf", &workbooks::lines(8, 300_000))).unwrap();
    let out =
        db.run_binary(&["import-products", "--supplier", "tasmanian-botanics", wrong.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("Tasmanian Botanics's layout") && said.contains("ARTG Number"), "{said}");
    assert_eq!(runtime.block_on(db.scalar("SELECT COUNT(*) FROM mmt_products")), 8);
    let failed =
        runtime.block_on(db.scalar("SELECT COUNT(*) FROM mmt_product_imports WHERE state = 'failed'"));
    assert_eq!(failed, 1, "the refused import is recorded as failed");
    std::fs::remove_dir_all(&dir).unwrap();
}
