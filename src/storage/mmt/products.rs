//! The product catalogue (`mmt_products`) and its imports (`mmt_product_imports`).

use chrono::NaiveDateTime;
use rust_decimal::Decimal;
use sqlx::{MySqlConnection, MySqlPool, QueryBuilder};

use crate::{
    domain::catalogue::{
        import::Stored,
        product::{Product, Supplier},
    },
    storage::StorageError,
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProductRow {
    pub id: i64,
    pub supplier: String,
    pub artg_number: Option<String>,
    pub brand: String,
    pub product_name: Option<String>,
    pub tga_category: Option<u8>,
    pub schedule: Option<String>,
    pub thc: Option<String>,
    pub cbd: Option<String>,
    pub form: String,
    pub pack_size: Option<String>,
    pub price: Option<Decimal>,
    pub price_includes_gst: bool,
    pub discontinued_at: Option<NaiveDateTime>,
    pub drug_id: Option<i32>,
    pub updated_at: NaiveDateTime,
}

impl ProductRow {
    fn product(&self) -> Product {
        Product {
            artg_number: self.artg_number.clone(),
            brand: self.brand.clone(),
            product_name: self.product_name.clone(),
            tga_category: self.tga_category,
            schedule: self.schedule.clone(),
            thc: self.thc.clone(),
            cbd: self.cbd.clone(),
            form: self.form.clone(),
            pack_size: self.pack_size.clone(),
            price: self.price,
            price_includes_gst: self.price_includes_gst,
        }
    }
}

const COLUMNS: &str = "CAST(id AS SIGNED) AS id, supplier, artg_number, brand, product_name, tga_category, schedule, \
     thc, cbd, form, pack_size, price, price_includes_gst <> 0 AS price_includes_gst, discontinued_at, drug_id, \
     updated_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImportRow {
    pub id: i64,
    pub supplier: String,
    pub file_name: String,
    pub state: String,
    pub report: Option<String>,
    pub imported_by: Option<i64>,
    pub created_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
}

pub struct NewImport<'a> {
    pub supplier: Supplier,
    pub file_name: &'a str,
    pub sha256: [u8; 32],
    pub workbook: Option<&'a [u8]>,
    pub imported_by: Option<i64>,
    pub now: NaiveDateTime,
}

pub async fn insert_import(conn: &mut MySqlConnection, new: &NewImport<'_>) -> Result<i64, StorageError> {
    let done = sqlx::query(
        "INSERT INTO mmt_product_imports (supplier, file_name, sha256, workbook, state, imported_by, created_at) \
         VALUES (?, ?, ?, ?, 'queued', ?, ?)",
    )
    .bind(new.supplier.as_str())
    .bind(new.file_name)
    .bind(&new.sha256[..])
    .bind(new.workbook)
    .bind(new.imported_by)
    .bind(new.now)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(i64::try_from(done.last_insert_id()).unwrap_or_default())
}

pub async fn get_import(pool: &MySqlPool, id: i64) -> Result<Option<ImportRow>, StorageError> {
    sqlx::query_as(
        "SELECT CAST(id AS SIGNED) AS id, supplier, file_name, state, report, imported_by, created_at, finished_at \
         FROM mmt_product_imports WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

/// The workbook a queued import waits with.
pub async fn queued_workbook(pool: &MySqlPool, id: i64) -> Result<Option<(String, Vec<u8>)>, StorageError> {
    sqlx::query_as(
        "SELECT supplier, workbook FROM mmt_product_imports WHERE id = ? AND state = 'queued' AND workbook IS NOT NULL",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

/// Ends an import with its report; the workbook is dropped, having been read.
pub async fn finish_import(
    conn: &mut MySqlConnection,
    id: i64,
    state: &str,
    report: &str,
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE mmt_product_imports SET state = ?, report = ?, workbook = NULL, finished_at = ? WHERE id = ?",
    )
    .bind(state)
    .bind(report)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// The supplier's products, locked: imports of one supplier take turns.
pub async fn lock_supplier(
    conn: &mut MySqlConnection,
    supplier: Supplier,
) -> Result<Vec<Stored>, StorageError> {
    let rows: Vec<ProductRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM mmt_products WHERE supplier = ? ORDER BY id FOR UPDATE"
    )))
    .bind(supplier.as_str())
    .fetch_all(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(rows
        .into_iter()
        .map(|row| Stored { id: row.id, discontinued: row.discontinued_at.is_some(), product: row.product() })
        .collect())
}

/// Rows per INSERT: a 10,000-row sheet is twenty statements, not ten thousand.
const INSERT_CHUNK: usize = 500;

pub async fn insert_products(
    conn: &mut MySqlConnection,
    supplier: Supplier,
    products: &[&Product],
    import_id: i64,
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    for chunk in products.chunks(INSERT_CHUNK) {
        let mut q = QueryBuilder::new(
            "INSERT INTO mmt_products (supplier, product_key, artg_number, brand, product_name, tga_category, \
             schedule, thc, cbd, form, pack_size, price, price_includes_gst, last_import_id, created_at, updated_at) ",
        );
        q.push_values(chunk, |mut row, p| {
            row.push_bind(supplier.as_str())
                .push_bind(p.key())
                .push_bind(p.artg_number.clone())
                .push_bind(p.brand.clone())
                .push_bind(p.product_name.clone())
                .push_bind(p.tga_category)
                .push_bind(p.schedule.clone())
                .push_bind(p.thc.clone())
                .push_bind(p.cbd.clone())
                .push_bind(p.form.clone())
                .push_bind(p.pack_size.clone())
                .push_bind(p.price)
                .push_bind(p.price_includes_gst)
                .push_bind(import_id)
                .push_bind(now)
                .push_bind(now);
        });
        q.build().execute(&mut *conn).await.map_err(StorageError::from_sqlx)?;
    }
    Ok(())
}

/// A changed product (or one back on the list) takes the sheet's values and is current again.
pub async fn update_product(
    conn: &mut MySqlConnection,
    id: i64,
    p: &Product,
    import_id: i64,
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE mmt_products SET artg_number = ?, brand = ?, product_name = ?, tga_category = ?, schedule = ?, \
         thc = ?, cbd = ?, form = ?, pack_size = ?, price = ?, price_includes_gst = ?, discontinued_at = NULL, \
         last_import_id = ?, updated_at = ? WHERE id = ?",
    )
    .bind(&p.artg_number)
    .bind(&p.brand)
    .bind(&p.product_name)
    .bind(p.tga_category)
    .bind(&p.schedule)
    .bind(&p.thc)
    .bind(&p.cbd)
    .bind(&p.form)
    .bind(&p.pack_size)
    .bind(p.price)
    .bind(p.price_includes_gst)
    .bind(import_id)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

pub async fn discontinue(
    conn: &mut MySqlConnection,
    ids: &[i64],
    import_id: i64,
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    for chunk in ids.chunks(INSERT_CHUNK) {
        let mut q = QueryBuilder::new("UPDATE mmt_products SET discontinued_at = ");
        q.push_bind(now).push(", updated_at = ").push_bind(now);
        q.push(", last_import_id = ").push_bind(import_id).push(" WHERE id IN (");
        let mut list = q.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        q.push(")");
        q.build().execute(&mut *conn).await.map_err(StorageError::from_sqlx)?;
    }
    Ok(())
}

#[derive(Debug, Default)]
pub struct Filter {
    /// Matched against brand and product name (any word's start) and the ARTG number.
    pub q: Option<String>,
    pub supplier: Option<Supplier>,
    pub schedule: Option<String>,
    pub form: Option<String>,
    pub include_discontinued: bool,
}

fn filtered(q: &mut QueryBuilder<sqlx::MySql>, f: &Filter) {
    q.push(" WHERE 1 = 1");
    if !f.include_discontinued {
        q.push(" AND discontinued_at IS NULL");
    }
    if let Some(supplier) = f.supplier {
        q.push(" AND supplier = ").push_bind(supplier.as_str());
    }
    if let Some(schedule) = &f.schedule {
        q.push(" AND schedule = ").push_bind(schedule);
    }
    if let Some(form) = &f.form {
        q.push(" AND form = ").push_bind(form);
    }
    if let Some(text) = &f.q {
        let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        q.push(" AND (brand LIKE ").push_bind(format!("{escaped}%"));
        q.push(" OR brand LIKE ").push_bind(format!("% {escaped}%"));
        q.push(" OR product_name LIKE ").push_bind(format!("{escaped}%"));
        q.push(" OR product_name LIKE ").push_bind(format!("% {escaped}%"));
        q.push(" OR artg_number = ").push_bind(text.as_str()).push(")");
    }
}

/// One page of matching products by brand, and how many match in all.
pub async fn search(
    pool: &MySqlPool,
    filter: &Filter,
    limit: u32,
    offset: u64,
) -> Result<(Vec<ProductRow>, i64), StorageError> {
    let mut q = QueryBuilder::new(format!("SELECT {COLUMNS} FROM mmt_products"));
    filtered(&mut q, filter);
    q.push(" ORDER BY brand, product_name, id LIMIT ").push_bind(limit).push(" OFFSET ").push_bind(offset);
    let rows = q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)?;
    let mut count = QueryBuilder::new("SELECT COUNT(*) FROM mmt_products");
    filtered(&mut count, filter);
    let total = count.build_query_scalar().fetch_one(pool).await.map_err(StorageError::from_sqlx)?;
    Ok((rows, total))
}

pub async fn get(pool: &MySqlPool, id: i64) -> Result<Option<ProductRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM mmt_products WHERE id = ?")))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

pub async fn set_drug(
    pool: &MySqlPool,
    id: i64,
    drug_id: Option<i32>,
    now: NaiveDateTime,
) -> Result<bool, StorageError> {
    let done = sqlx::query("UPDATE mmt_products SET drug_id = ?, updated_at = ? WHERE id = ?")
        .bind(drug_id)
        .bind(now)
        .bind(id)
        .execute(pool)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected() == 1)
}

/// Records that a prescription was written for a product.
pub async fn link_prescription(
    conn: &mut MySqlConnection,
    prescription_id: i64,
    product_id: i64,
) -> Result<(), StorageError> {
    sqlx::query("INSERT INTO mmt_prescription_products (prescription_id, product_id) VALUES (?, ?)")
        .bind(prescription_id)
        .bind(product_id)
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// The product a prescription was written for.
pub async fn of_prescription(pool: &MySqlPool, prescription_id: i64) -> Result<Option<i64>, StorageError> {
    sqlx::query_scalar(
        "SELECT CAST(product_id AS SIGNED) FROM mmt_prescription_products WHERE prescription_id = ?",
    )
    .bind(prescription_id)
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)
}
