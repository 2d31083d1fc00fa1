//! The catalogue as prescribers search it, and its link to OpenEMR's drug inventory.

use chrono::Utc;

use super::{CatalogueError, Result};
use crate::{
    app::AppState,
    domain::{
        acl::{AclLevel, Aco},
        catalogue::product::{self as rules, Supplier},
        user::Caller,
        validation::Issues,
    },
    service::permission,
    storage::{
        mmt::products::{self as store, Filter, ProductRow},
        openemr::drugs,
    },
};

/// The search's parameters as sent; each is parsed here so a bad one is named.
#[derive(Debug, Default)]
pub struct Query {
    pub q: Option<String>,
    pub supplier: Option<String>,
    pub schedule: Option<String>,
    pub form: Option<String>,
    pub include_discontinued: bool,
}

/// Products are reference data, open to every signed-in staff member (not to guests).
pub async fn search(
    state: &AppState,
    caller: &Caller,
    query: Query,
    limit: u32,
    offset: u64,
) -> Result<(Vec<ProductRow>, i64)> {
    staff_only(caller)?;
    let filter = filter(query)?;
    Ok(store::search(&state.pool, &filter, limit, offset).await?)
}

pub async fn get(state: &AppState, caller: &Caller, id: i64) -> Result<ProductRow> {
    staff_only(caller)?;
    store::get(&state.pool, id).await?.ok_or_else(|| not_found(id))
}

/// Links a product to an active OpenEMR inventory drug (or unlinks it with `None`), so it can
/// be prescribed from the inventory: `admin|drugs`, OpenEMR's inventory permission.
pub async fn link_drug(
    state: &AppState,
    caller: &Caller,
    id: i64,
    drug_id: Option<i64>,
) -> Result<ProductRow> {
    permission::require(state, caller, Aco::ADMIN_DRUGS, AclLevel::Write).await?;
    let drug = match drug_id {
        None => None,
        Some(raw) => {
            let known = match i32::try_from(raw) {
                Ok(d) => drugs::active_name(&state.pool, d).await?.map(|_| d),
                Err(_) => None,
            };
            let mut issues = Issues::default();
            if known.is_none() {
                issues.add("drug_id", format!("{raw} is not an active drug in OpenEMR's inventory"));
            }
            issues.into_result(known)?
        }
    };
    if !store::set_drug(&state.pool, id, drug, Utc::now().naive_utc()).await? {
        return Err(not_found(id));
    }
    get(state, caller, id).await
}

fn filter(query: Query) -> Result<Filter> {
    let mut issues = Issues::default();
    let supplier = query.supplier.as_deref().and_then(|s| {
        let parsed = Supplier::parse(s);
        if parsed.is_none() {
            issues.add("supplier", format!("must be one of {}", Supplier::names()));
        }
        parsed
    });
    let schedule = query.schedule.as_deref().and_then(|s| match rules::schedule(s) {
        Ok(schedule) => schedule,
        Err(reason) => {
            issues.add("schedule", reason);
            None
        }
    });
    let q = query.q.map(|q| q.split_whitespace().collect::<Vec<_>>().join(" ")).filter(|q| !q.is_empty());
    if q.as_ref().is_some_and(|q| q.chars().count() > 100) {
        issues.add("q", "must be at most 100 characters");
    }
    let form = query.form.map(|f| rules::form(&f)).filter(|f| !f.is_empty());
    Ok(issues.into_result(Filter {
        q,
        supplier,
        schedule,
        form,
        include_discontinued: query.include_discontinued,
    })?)
}

fn staff_only(caller: &Caller) -> Result<()> {
    if caller.is_guest() {
        return Err(
            crate::service::acl::AclError::Denied { aco: Aco::PATIENTS_RX, level: AclLevel::View }.into()
        );
    }
    Ok(())
}

fn not_found(id: i64) -> CatalogueError {
    CatalogueError::NotFound(format!("no product {id}"))
}
