//! Printable prescriptions laid out as C_Prescription::multiprint_header/body: practice header,
//! prescriber (DEA/NPI/state licence under OpenEMR's rx_* globals), patient, the prescription,
//! signature line. Built-in Helvetica, so the text is extractable and no font files ship.

use printpdf::{Mm, PdfDocument, PdfPage, PdfSaveOptions};

use crate::{
    app::AppState,
    domain::{
        acl::AclLevel,
        chart::prescription::{self as rules, DrugList, Substitution},
        patient::Pid,
        user::Caller,
    },
    service::{
        audit,
        pdf::{Page, Style, joined},
        wall_clock_now,
    },
    storage::openemr::{
        chart::prescriptions::{self as store, Prescriber},
        globals, patients,
        patients::PatientRow,
    },
};

use super::{
    ChartError,
    prescriptions::{self, AUDIT_CATEGORY, DrugLists, Prescription},
};

type Result<T, E = ChartError> = std::result::Result<T, E>;

/// OpenEMR's Rx globals that change what is printed (stored only when changed from the default).
pub struct RxGlobals {
    pub paper_mm: (f32, f32),
    dea: IdPrint,
    npi: IdPrint,
    sln: IdPrint,
}

/// rx_enable_X hides the line; rx_show_X prints the number, otherwise a blank to write it in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum IdPrint {
    Hidden,
    Blank,
    Shown,
}

const RX_GLOBALS: [&str; 7] = [
    "rx_paper_size",
    "rx_enable_DEA",
    "rx_show_DEA",
    "rx_enable_NPI",
    "rx_show_NPI",
    "rx_enable_SLN",
    "rx_show_SLN",
];

impl RxGlobals {
    pub async fn load(state: &AppState) -> Result<Self> {
        let found = globals::values(&state.pool, &RX_GLOBALS).await?;
        let flag =
            |name: &str, default: bool| found.get(name).map_or(default, |v| !matches!(v.trim(), "" | "0"));
        let print = |enable: &str, show: &str, enabled_by_default: bool| match (
            flag(enable, enabled_by_default),
            flag(show, false),
        ) {
            (false, _) => IdPrint::Hidden,
            (true, false) => IdPrint::Blank,
            (true, true) => IdPrint::Shown,
        };
        Ok(Self {
            paper_mm: rules::paper_mm(found.get("rx_paper_size").map(String::as_str)),
            dea: print("rx_enable_DEA", "rx_show_DEA", true),
            npi: print("rx_enable_NPI", "rx_show_NPI", false),
            sln: print("rx_enable_SLN", "rx_show_SLN", false),
        })
    }
}

/// Everything one page prints.
pub struct Sheet<'a> {
    pub rx: &'a Prescription,
    pub patient: &'a PatientRow,
    pub prescriber: &'a Prescriber,
    pub lists: &'a DrugLists,
}

fn id_line(page: &mut Page, label: &str, print: IdPrint, value: Option<&str>) {
    match print {
        IdPrint::Hidden => {}
        IdPrint::Blank => page.text(Style::Body, &format!("{label}: ________________________")),
        IdPrint::Shown => page.text(Style::Body, &format!("{label}: {}", value.unwrap_or_default())),
    }
}

fn header(page: &mut Page, g: &RxGlobals, s: &Sheet<'_>) {
    let p = s.prescriber;
    if let Some(name) = p.facility.as_deref().filter(|n| !n.is_empty()) {
        page.text(Style::Heading, name);
        page.text(Style::Body, &joined(&[p.street.as_deref()], ""));
        let city = joined(&[p.city.as_deref(), p.state.as_deref()], ", ");
        page.text(Style::Body, &joined(&[Some(&city), p.postal_code.as_deref()], " "));
        page.field("Tel", p.phone.as_deref().unwrap_or_default());
        page.field("Fax", p.fax.as_deref().unwrap_or_default());
    }
    page.gap();
    let name =
        joined(&[p.fname.as_deref(), p.mname.as_deref(), p.lname.as_deref(), p.suffix.as_deref()], " ");
    page.text(Style::Heading, &name);
    id_line(page, "DEA", g.dea, p.federaldrugid.as_deref());
    id_line(page, "NPI", g.npi, p.npi.as_deref());
    id_line(page, "State Lic. #", g.sln, p.state_license_number.as_deref());
    if let Some(x) = &s.rx.extras {
        page.field("Prescriber No.", x.prescriber_number.as_deref().unwrap_or_default());
        page.field("HPI-I", x.prescriber_hpii.as_deref().unwrap_or_default());
    }
}

fn patient_block(page: &mut Page, s: &Sheet<'_>) {
    let pt = s.patient;
    page.rule();
    page.text(Style::Label, "Patient Name & Address");
    page.text(Style::Body, &joined(&[Some(&pt.fname), Some(&pt.mname), Some(&pt.lname)], " "));
    page.text(Style::Body, &pt.street);
    let city = joined(&[Some(&pt.city), Some(&pt.state)], ", ");
    page.text(Style::Body, &joined(&[Some(&city), Some(&pt.postal_code)], " "));
    page.text(Style::Label, "Date of Birth");
    page.text(Style::Body, &pt.dob.map(|d| d.to_string()).unwrap_or_default());
    page.text(Style::Label, "Medical Record #");
    page.text(Style::Body, &rules::mrn(&pt.pubpid));
    if let Some(x) = &s.rx.extras {
        page.field("Medicare No.", x.medicare_number.as_deref().unwrap_or_default());
        page.field("IHI", x.ihi.as_deref().unwrap_or_default());
    }
}

fn body(page: &mut Page, s: &Sheet<'_>) {
    let r = &s.rx.row;
    let code = |v: Option<i32>| v.map(|n| n.to_string());
    let title = |list, v: Option<String>| s.lists.title(list, v.as_deref());
    page.rule();
    page.text(Style::Label, "Prescriptions");
    page.field("Date", &r.start_date.map(|d| d.to_string()).unwrap_or_default());
    page.text(Style::Heading, r.drug.as_deref().unwrap_or_default());
    let unit = title(DrugList::Unit, code(r.unit));
    page.field("Strength", &joined(&[r.size.as_deref(), Some(&unit)], " "));
    page.field("Form", &title(DrugList::Form, code(r.form)));
    page.field("Dose", r.dosage.as_deref().unwrap_or_default());
    page.field("Route", &title(DrugList::Route, r.route.clone()));
    page.field("Frequency", &title(DrugList::Interval, code(r.interval)));
    page.field("Quantity", r.quantity.as_deref().unwrap_or_default());
    let refills = r.refills.unwrap_or_default();
    let refill_line = match r.per_refill.filter(|_| refills > 0) {
        Some(per) => format!("{refills}, of quantity: {per}"),
        None => refills.to_string(),
    };
    page.field("Refills", &refill_line);
    if let Some(sub) = Substitution::from_db(r.substitute) {
        page.field("Substitution", sub.label());
    }
    page.field("Directions", r.drug_dosage_instructions.as_deref().unwrap_or_default());
    if let Some(x) = &s.rx.extras {
        if x.pbs {
            page.text(Style::Body, "PBS prescription");
        }
        page.field("Schedule", x.controlled_schedule.as_deref().unwrap_or_default());
    }
    page.field("Notes", r.note.as_deref().unwrap_or_default());
    if !rules::is_active(r.active) {
        page.text(Style::Heading, "DISCONTINUED");
    }
    page.gap();
    page.gap();
    page.gap();
    page.text(Style::Body, "Signature: ________________________________    Date: ______________");
}

/// One page per prescription, on the `rx_paper_size` paper.
pub fn render(globals: &RxGlobals, sheets: &[Sheet<'_>]) -> Vec<u8> {
    let (w, h) = globals.paper_mm;
    let (wpt, hpt) = (Mm(w).into_pt().0, Mm(h).into_pt().0);
    let pages = sheets
        .iter()
        .map(|s| {
            let mut page = Page::new(wpt, hpt);
            header(&mut page, globals, s);
            patient_block(&mut page, s);
            body(&mut page, s);
            PdfPage::new(Mm(w), Mm(h), page.ops)
        })
        .collect();
    let mut doc = PdfDocument::new("Prescription");
    doc.with_pages(pages);
    doc.save(&PdfSaveOptions::default(), &mut Vec::new())
}

/// The PDF of prescriptions already permitted, neither checked nor audited here.
pub async fn document(state: &AppState, rxs: &[Prescription]) -> Result<Vec<u8>> {
    let lists = DrugLists::load(state).await?;
    let globals = RxGlobals::load(state).await?;
    let mut people = Vec::with_capacity(rxs.len());
    for rx in rxs {
        let pid = Pid(rx.row.patient_id.unwrap_or_default());
        let patient = patients::get(&state.pool, pid)
            .await?
            .ok_or_else(|| ChartError::NotFound(format!("no patient with pid {pid}")))?;
        let prescriber =
            store::prescriber(&state.pool, rx.row.provider_id.unwrap_or_default()).await?.unwrap_or_default();
        people.push((patient, prescriber));
    }
    let sheets: Vec<Sheet<'_>> = rxs
        .iter()
        .zip(&people)
        .map(|(rx, (patient, prescriber))| Sheet { rx, patient, prescriber, lists: &lists })
        .collect();
    Ok(render(&globals, &sheets))
}

/// The PDF of these prescriptions (all of `only_pid` when given), each render audited as a
/// disclosure under OpenEMR's prescription category.
pub async fn pdf(state: &AppState, caller: &Caller, ids: &[i64], only_pid: Option<Pid>) -> Result<Vec<u8>> {
    let mut rxs = Vec::with_capacity(ids.len());
    for &id in ids {
        let rx = prescriptions::permitted(state, caller, id, AclLevel::View).await?;
        if only_pid.is_some_and(|pid| rx.row.patient_id != Some(pid.0)) {
            return Err(ChartError::NotFound(format!("no prescription {id} for this patient")));
        }
        rxs.push(rx);
    }
    let bytes = document(state, &rxs).await?;
    let at = wall_clock_now();
    for rx in &rxs {
        let comments = format!("mmt-sidecar disclosed prescription {} as PDF at {at}", rx.row.id);
        let entry = crate::domain::audit::AuditEntry::phi(
            caller,
            "order-select",
            AUDIT_CATEGORY,
            rx.row.patient_id,
            comments,
        );
        audit::record(state, &entry).await?;
    }
    Ok(bytes)
}
