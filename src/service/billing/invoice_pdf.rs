//! A printable invoice: the practice, the patient, the visit's charge lines, the payments and
//! adjustments posted against them, and the balance, to the cent as the invoice reads.

use super::{
    BillingError, entry,
    invoices::{self, Invoice},
};
use crate::{
    app::AppState,
    domain::{billing::cents, patient::Pid, user::Caller},
    service::{
        audit,
        pdf::{Style, Writer, joined},
    },
    storage::openemr::{patients, patients::PatientRow},
};

/// US Letter, OpenEMR's default paper.
const PAPER_MM: (f32, f32) = (215.9, 279.4);

fn render(invoice: &Invoice, patient: &PatientRow, facility: &str) -> Vec<u8> {
    let mut doc = Writer::new(PAPER_MM.0, PAPER_MM.1);
    let page = doc.room();
    page.text(Style::Heading, facility);
    page.text(Style::Heading, &format!("Invoice {}.{}", invoice.pid, invoice.encounter));
    page.field("Date of service", &invoice.date.map(|d| d.date().to_string()).unwrap_or_default());
    page.rule();
    page.text(Style::Label, "Patient");
    page.text(Style::Body, &joined(&[Some(&patient.fname), Some(&patient.mname), Some(&patient.lname)], " "));
    page.text(Style::Body, &patient.street);
    let city = joined(&[Some(&patient.city), Some(&patient.state)], ", ");
    page.text(Style::Body, &joined(&[Some(&city), Some(&patient.postal_code)], " "));
    page.field("Account", &patient.pubpid);
    page.rule();
    page.text(Style::Label, "Charges");
    for line in &invoice.charges {
        let code = joined(&[line.code.as_deref(), line.modifier.as_deref()], ":");
        let text = format!(
            "{code}  {}  x{}  {}",
            line.code_text.as_deref().unwrap_or_default(),
            line.units.unwrap_or(1),
            cents(line.fee.unwrap_or_default())
        );
        doc.room().text(Style::Body, &text);
    }
    doc.room().rule();
    doc.room().text(Style::Label, "Payments and adjustments");
    for a in &invoice.activity {
        let what = if a.adj_amount.is_zero() {
            format!("payment {}", cents(a.pay_amount))
        } else {
            format!("adjustment {} {}", cents(a.adj_amount), a.memo)
        };
        let text = format!(
            "{}  {}  {}  {what}",
            a.post_time.date(),
            a.payment_method.as_deref().unwrap_or_default(),
            a.reference.as_deref().unwrap_or_default()
        );
        doc.room().text(Style::Body, &text);
    }
    let t = invoice.totals;
    let page = doc.room();
    page.rule();
    page.field("Charges", &cents(t.charges).to_string());
    page.field("Payments", &cents(t.payments).to_string());
    page.field("Adjustments", &cents(t.adjustments).to_string());
    page.text(Style::Heading, &format!("Balance due: {}", cents(t.balance)));
    doc.finish("Invoice")
}

/// The invoice as a PDF, read under the invoice's permission and audited as a disclosure.
pub async fn pdf(state: &AppState, caller: &Caller, pid: i64, number: i64) -> Result<Vec<u8>, BillingError> {
    let invoice = invoices::get(state, caller, pid, number).await?;
    let patient = patients::get(&state.pool, Pid(pid))
        .await?
        .ok_or_else(|| BillingError::NotFound(format!("no patient with pid {pid}")))?;
    let bytes = render(&invoice, &patient, invoice.facility.as_deref().unwrap_or_default());
    let comments = format!("mmt-sidecar disclosed invoice {pid}-{number} as PDF");
    audit::record(state, &entry(caller, "patient-record-select", pid, comments)).await?;
    Ok(bytes)
}
