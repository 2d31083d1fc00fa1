use chrono::NaiveDateTime;
use poem::{http::StatusCode, web::Data};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::{Binary, Json},
};

use crate::{
    app::AppState,
    domain::billing::invoice::{CodeBalance, Totals},
    http::{
        ApiTags,
        auth::Auth,
        billing::Money,
        paging::{Window, window},
        problem::ApiError,
    },
    service::billing::{
        invoice_pdf,
        invoices::{self, Invoice, InvoiceQuery},
    },
};

/// What an invoice or one of its codes adds up to, as OpenEMR's `InvoiceSummary` adds it.
#[derive(Object)]
pub struct Amounts {
    /// Charges: fee-sheet lines and product sales.
    pub charges: Money,
    pub payments: Money,
    pub adjustments: Money,
    /// charges − payments − adjustments; negative is a credit.
    pub balance: Money,
}

impl From<Totals> for Amounts {
    fn from(t: Totals) -> Self {
        Self {
            charges: t.charges.into(),
            payments: t.payments.into(),
            adjustments: t.adjustments.into(),
            balance: t.balance.into(),
        }
    }
}

/// One code's account on the invoice, keyed as OpenEMR keys it: `99213`, `99213:25` with a
/// modifier, `PROD:<drug>` for a product, `Copay` or `Claim level` for payments with no code.
#[derive(Object)]
pub struct CodeAccount {
    pub code: String,
    pub code_type: Option<String>,
    pub description: Option<String>,
    #[oai(flatten)]
    pub amounts: Amounts,
}

impl From<CodeBalance> for CodeAccount {
    fn from(c: CodeBalance) -> Self {
        Self {
            code: c.key,
            code_type: c.code_type,
            description: c.code_text,
            amounts: Totals::new(c.charges, c.payments, c.adjustments).into(),
        }
    }
}

/// A charge line of the invoice.
#[derive(Object)]
pub struct InvoiceLine {
    /// billing.id
    pub charge_id: i64,
    pub code_type: String,
    pub code: String,
    pub modifier: String,
    pub description: String,
    pub units: i32,
    pub fee: Money,
}

/// A payment or adjustment posted against the invoice (`ar_activity`).
#[derive(Object)]
pub struct InvoicePosting {
    /// ar_session.session_id: the payment it belongs to.
    pub payment_id: u32,
    pub sequence_no: u32,
    pub code: String,
    pub modifier: String,
    /// 0 patient, 1–3 insurance.
    pub payer_type: i32,
    /// `PP` patient payment, `PCP` copay, `IPP` insurance payment, `PA` adjustment, ...
    pub account_code: String,
    pub payment: Money,
    pub adjustment: Money,
    pub memo: String,
    pub method: Option<String>,
    pub reference: Option<String>,
    pub posted_at: NaiveDateTime,
}

/// An encounter as an invoice; its number is OpenEMR's `pid-encounter`.
#[derive(Object)]
pub struct InvoiceView {
    pub id: String,
    pub pid: i64,
    pub encounter: i64,
    pub date: Option<NaiveDateTime>,
    /// `open` while a balance is due, else `paid`.
    pub status: String,
    pub totals: Amounts,
    pub codes: Vec<CodeAccount>,
    pub lines: Vec<InvoiceLine>,
    pub postings: Vec<InvoicePosting>,
}

fn view(i: Invoice) -> InvoiceView {
    InvoiceView {
        id: format!("{}-{}", i.pid, i.encounter),
        pid: i.pid,
        encounter: i.encounter,
        date: i.date,
        status: i.totals.status().as_str().into(),
        totals: i.totals.into(),
        codes: i.codes.into_iter().map(CodeAccount::from).collect(),
        lines: i
            .charges
            .into_iter()
            .map(|c| InvoiceLine {
                charge_id: i64::from(c.id),
                code_type: c.code_type.unwrap_or_default(),
                code: c.code.unwrap_or_default(),
                modifier: c.modifier.unwrap_or_default(),
                description: c.code_text.unwrap_or_default(),
                units: c.units.unwrap_or(1),
                fee: c.fee.unwrap_or_default().into(),
            })
            .collect(),
        postings: i
            .activity
            .into_iter()
            .map(|a| InvoicePosting {
                payment_id: a.session_id,
                sequence_no: a.sequence_no,
                code: a.code,
                modifier: a.modifier,
                payer_type: a.payer_type,
                account_code: a.account_code,
                payment: a.pay_amount.into(),
                adjustment: a.adj_amount.into(),
                memo: a.memo,
                method: a.payment_method,
                reference: a.reference,
                posted_at: a.post_time,
            })
            .collect(),
    }
}

/// An invoice in a list, with its totals.
#[derive(Object)]
pub struct InvoiceSummary {
    pub id: String,
    pub pid: i64,
    pub encounter: i64,
    pub date: Option<NaiveDateTime>,
    pub status: String,
    #[oai(flatten)]
    pub amounts: Amounts,
}

#[derive(Object)]
pub struct InvoicePage {
    pub items: Vec<InvoiceSummary>,
    pub total: i64,
    pub page: u32,
    pub page_size: u32,
}

#[derive(ApiResponse)]
pub enum PageResponse {
    #[oai(status = 200)]
    Ok(Json<InvoicePage>),
}

#[derive(ApiResponse)]
pub enum InvoiceResponse {
    #[oai(status = 200)]
    Ok(Json<InvoiceView>),
}

#[derive(ApiResponse)]
pub enum PdfResponse {
    #[oai(status = 200, content_type = "application/pdf")]
    Pdf(Binary<Vec<u8>>, #[oai(header = "Content-Disposition")] String),
}

/// `178-2` → (178, 2).
fn parse_number(raw: &str) -> Result<(i64, i64), ApiError> {
    raw.split_once('-')
        .and_then(|(pid, encounter)| Some((pid.parse().ok()?, encounter.parse().ok()?)))
        .ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, format!("{raw} is not an invoice number (pid-encounter)"))
        })
}

#[derive(Default)]
pub struct InvoicesApi;

#[OpenApi(tag = "ApiTags::Billing")]
impl InvoicesApi {
    /// Invoices (encounters with charges or payments), newest first, with their balances.
    ///
    /// `patient` narrows to one pid; `status` is `open` (a balance is due) or `paid`; `from` and
    /// `to` (YYYY-MM-DD, inclusive) bound the visit date. Needs OpenEMR `acct|bill` or `acct|rep_a`.
    #[oai(path = "/invoices/", method = "get", operation_id = "invoices_list")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        patient: Query<Option<i64>>,
        status: Query<Option<String>>,
        from: Query<Option<String>>,
        to: Query<Option<String>>,
        page: Query<Option<u32>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] page_size: Query<Option<u32>>,
    ) -> Result<PageResponse, ApiError> {
        let Window { page, page_size, offset } = window(page.0, page_size.0);
        let q = InvoiceQuery { patient: patient.0, status: status.0, from: from.0, to: to.0 };
        let found = invoices::list(&state, &auth.0, q, page_size, offset).await?;
        let items = found
            .rows
            .into_iter()
            .map(|(r, totals)| InvoiceSummary {
                id: format!("{}-{}", r.pid, r.encounter),
                pid: r.pid,
                encounter: r.encounter,
                date: r.date,
                status: totals.status().as_str().into(),
                amounts: totals.into(),
            })
            .collect();
        Ok(PageResponse::Ok(Json(InvoicePage { items, total: found.total, page, page_size })))
    }

    /// One invoice: its charge lines, payments and adjustments, each code's balance and the totals,
    /// to the cent as OpenEMR's screens show them.
    #[oai(path = "/invoices/:id/", method = "get", operation_id = "invoice_get")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> Result<InvoiceResponse, ApiError> {
        let (pid, encounter) = parse_number(&id.0)?;
        Ok(InvoiceResponse::Ok(Json(view(invoices::get(&state, &auth.0, pid, encounter).await?))))
    }

    /// The invoice as a printable PDF: practice, patient, charges, payments, balance due.
    #[oai(path = "/invoices/:id/pdf", method = "get", operation_id = "invoice_pdf")]
    async fn pdf(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> Result<PdfResponse, ApiError> {
        let (pid, encounter) = parse_number(&id.0)?;
        let bytes = invoice_pdf::pdf(&state, &auth.0, pid, encounter).await?;
        Ok(PdfResponse::Pdf(Binary(bytes), format!("inline; filename=\"invoice-{pid}-{encounter}.pdf\"")))
    }
}
