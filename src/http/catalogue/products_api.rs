//! Suppliers' product catalogues: search for prescribers, imports for the practice's
//! administrators (`service::catalogue`).

use poem::web::Data;
use poem_openapi::{
    ApiResponse, Multipart, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
    types::multipart::Upload,
};

use crate::{
    app::AppState,
    domain::validation::Issues,
    http::{ApiTags, auth::Auth, billing::Money, paging, problem::ApiError},
    service::catalogue::{
        imports::{self, ChangeLine, RejectedRow, Report},
        products,
    },
    storage::mmt::products::{ImportRow, ProductRow},
};

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Product {
    pub id: i64,
    /// `botanitech`, `medreleaf`, `alma`, `phytoca` or `tasmanian-botanics`.
    pub supplier: String,
    /// ARTG number (AUST L/R), when the product is listed.
    pub artg_number: Option<String>,
    pub brand: String,
    pub product_name: Option<String>,
    /// TGA medicinal cannabis category, 1 (CBD) to 5 (THC-dominant).
    pub tga_category: Option<u8>,
    /// Poisons Standard schedule, e.g. `S8`.
    pub schedule: Option<String>,
    pub thc: Option<String>,
    pub cbd: Option<String>,
    /// `oil`, `flower`, `capsule`, `spray`, `wafer`, `pastille`, `cartridge`, `topical`,
    /// `extract`, or the supplier's own word.
    pub form: String,
    pub pack_size: Option<String>,
    /// Dollars (AUD), as the supplier lists it.
    pub price: Option<Money>,
    pub price_includes_gst: bool,
    /// Set when the supplier's latest list no longer has it.
    pub discontinued_at: Option<chrono::NaiveDateTime>,
    /// The OpenEMR inventory drug (`drugs.drug_id`) it is prescribed as.
    pub drug_id: Option<i32>,
    pub updated_at: chrono::NaiveDateTime,
}

impl From<ProductRow> for Product {
    fn from(r: ProductRow) -> Self {
        Self {
            id: r.id,
            supplier: r.supplier,
            artg_number: r.artg_number,
            brand: r.brand,
            product_name: r.product_name,
            tga_category: r.tga_category,
            schedule: r.schedule,
            thc: r.thc,
            cbd: r.cbd,
            form: r.form,
            pack_size: r.pack_size,
            price: r.price.map(Money::from),
            price_includes_gst: r.price_includes_gst,
            discontinued_at: r.discontinued_at,
            drug_id: r.drug_id,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Object)]
pub struct ProductPage {
    pub items: Vec<Product>,
    /// Products matching, across all pages.
    pub total: i64,
    pub page: u32,
    pub page_size: u32,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ProductLink {
    /// An active OpenEMR inventory drug (`drugs.drug_id`), or `null` to unlink.
    pub drug_id: Option<i64>,
}

#[derive(Multipart)]
pub struct ImportForm {
    /// `botanitech`, `medreleaf`, `alma`, `phytoca` or `tasmanian-botanics` (any case or spacing).
    pub supplier: String,
    /// The supplier's product list, an `.xlsx` workbook.
    pub file: Upload,
}

#[derive(Object)]
pub struct ImportQueued {
    pub import_id: i64,
    /// The job that runs it (`GET /api/jobs/{id}/` shows its progress).
    pub job_id: String,
}

#[derive(Object)]
pub struct ImportChange {
    /// `created`, `updated` or `discontinued`.
    pub action: String,
    /// The sheet row it came from (none for a discontinued product).
    pub row: Option<u32>,
    /// `artg:<number>`, or `brand:<brand>|<form>` without one.
    pub key: String,
    pub brand: String,
}

#[derive(Object)]
pub struct ImportRejection {
    pub row: u32,
    pub reason: String,
}

#[derive(Object)]
pub struct ImportReport {
    pub supplier: String,
    /// The worksheet the products were read from.
    pub sheet: String,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub discontinued: i64,
    pub changes: Vec<ImportChange>,
    /// Rows left out, with why; the rest of the sheet was imported.
    pub rejected: Vec<ImportRejection>,
}

impl From<Report> for ImportReport {
    fn from(r: Report) -> Self {
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        Self {
            supplier: r.supplier,
            sheet: r.sheet,
            created: count(r.created),
            updated: count(r.updated),
            unchanged: count(r.unchanged),
            discontinued: count(r.discontinued),
            changes: r
                .changes
                .into_iter()
                .map(|ChangeLine { action, row, key, brand }| ImportChange { action, row, key, brand })
                .collect(),
            rejected: r
                .rejected
                .into_iter()
                .map(|RejectedRow { row, reason }| ImportRejection { row, reason })
                .collect(),
        }
    }
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ProductImport {
    pub id: i64,
    pub supplier: String,
    pub file_name: String,
    /// `queued`, `done` or `failed`.
    pub state: String,
    pub created_at: chrono::NaiveDateTime,
    pub finished_at: Option<chrono::NaiveDateTime>,
    /// What a finished import did.
    pub report: Option<ImportReport>,
    /// Why a failed import changed nothing.
    pub error: Option<String>,
    /// The supplier's columns the workbook lacked, when that was why.
    pub missing_columns: Option<Vec<String>>,
}

impl From<ImportRow> for ProductImport {
    fn from(r: ImportRow) -> Self {
        let stored: serde_json::Value =
            r.report.as_deref().and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default();
        let report = if r.state == "done" {
            serde_json::from_value::<Report>(stored.clone()).ok().map(Into::into)
        } else {
            None
        };
        let missing: Option<Vec<String>> = stored["missing_columns"]
            .as_array()
            .map(|cols| cols.iter().filter_map(|c| c.as_str().map(String::from)).collect())
            .filter(|cols: &Vec<String>| !cols.is_empty());
        Self {
            id: r.id,
            supplier: r.supplier,
            file_name: r.file_name,
            state: r.state,
            created_at: r.created_at,
            finished_at: r.finished_at,
            report,
            error: stored["error"].as_str().map(String::from),
            missing_columns: missing,
        }
    }
}

#[derive(ApiResponse)]
pub enum ProductsResponse {
    #[oai(status = 200)]
    Ok(Json<ProductPage>),
}

#[derive(ApiResponse)]
pub enum ProductResponse {
    #[oai(status = 200)]
    Ok(Json<Product>),
}

#[derive(ApiResponse)]
pub enum ImportAccepted {
    /// Queued; its job reads the workbook and applies it.
    #[oai(status = 202)]
    Accepted(Json<ImportQueued>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
pub enum ImportResponse {
    #[oai(status = 200)]
    Ok(Json<ProductImport>),
}

#[derive(Default)]
pub struct ProductsApi;

#[OpenApi(prefix_path = "/products", tag = "ApiTags::Catalogue")]
impl ProductsApi {
    /// Search the suppliers' products.
    ///
    /// `q` matches the start of any word of the brand or product name, or a whole ARTG number.
    /// Current products only unless `include_discontinued`.
    #[oai(path = "/", method = "get", operation_id = "products_search")]
    #[allow(clippy::too_many_arguments)]
    async fn search(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        q: Query<Option<String>>,
        supplier: Query<Option<String>>,
        /// A Poisons Standard schedule: `S8`, `Schedule 8` or `8`.
        schedule: Query<Option<String>>,
        /// A form, in the catalogue's words or the supplier's (`Oral liquid` finds `oil`).
        form: Query<Option<String>>,
        include_discontinued: Query<Option<bool>>,
        page: Query<Option<u32>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] page_size: Query<Option<u32>>,
    ) -> Result<ProductsResponse, ApiError> {
        let window = paging::window(page.0, page_size.0);
        let query = products::Query {
            q: q.0,
            supplier: supplier.0,
            schedule: schedule.0,
            form: form.0,
            include_discontinued: include_discontinued.0.unwrap_or(false),
        };
        let (rows, total) = products::search(&state, &auth.0, query, window.page_size, window.offset).await?;
        let items = rows.into_iter().map(Product::from).collect();
        Ok(ProductsResponse::Ok(Json(ProductPage {
            items,
            total,
            page: window.page,
            page_size: window.page_size,
        })))
    }

    /// One product.
    #[oai(path = "/:id/", method = "get", operation_id = "products_get")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
    ) -> Result<ProductResponse, ApiError> {
        Ok(ProductResponse::Ok(Json(products::get(&state, &auth.0, id.0).await?.into())))
    }

    /// Link a product to an OpenEMR inventory drug.
    ///
    /// Needs `admin|drugs`. A linked product is prescribed as that drug.
    #[oai(path = "/:id/", method = "patch", operation_id = "products_link")]
    async fn link(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
        body: Json<ProductLink>,
    ) -> Result<ProductResponse, ApiError> {
        Ok(ProductResponse::Ok(Json(
            products::link_drug(&state, &auth.0, id.0, body.0.drug_id).await?.into(),
        )))
    }

    /// Import a supplier's product list (`.xlsx`).
    ///
    /// Needs `admin|super` or `admin|practice`. Runs as a job: products are created, updated by
    /// supplier and ARTG number (or brand and form without one), and those the list no longer
    /// has are discontinued, all in one transaction; rows that cannot be read are reported with
    /// their number and reason. A workbook that does not fit the supplier's layout changes nothing
    /// and its import names the missing columns. The same list twice changes nothing.
    #[oai(path = "/imports/", method = "post", operation_id = "products_import")]
    async fn import(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        form: ImportForm,
    ) -> Result<ImportAccepted, ApiError> {
        let file_name = form.file.file_name().unwrap_or("workbook.xlsx").to_string();
        let bytes = form.file.into_vec().await.map_err(|_| {
            let mut issues = Issues::default();
            issues.add("file", "could not be read");
            ApiError::from(issues)
        })?;
        let supplier = imports::check_upload(&form.supplier, &file_name, &bytes)?;
        let queued = imports::queue(&state, &auth.0, supplier, &file_name, &bytes).await?;
        let location = format!("/api/products/imports/{}/", queued.import_id);
        Ok(ImportAccepted::Accepted(
            Json(ImportQueued { import_id: queued.import_id, job_id: queued.job_id }),
            location,
        ))
    }

    /// One import: its state and, once done, its report.
    #[oai(path = "/imports/:id/", method = "get", operation_id = "products_import_get")]
    async fn import_get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
    ) -> Result<ImportResponse, ApiError> {
        Ok(ImportResponse::Ok(Json(imports::get(&state, &auth.0, id.0).await?.into())))
    }
}
