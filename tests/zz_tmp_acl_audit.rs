#[path = "api/acl.rs"]
mod acl;
#[path = "api/audit_log.rs"]
mod audit_log;
#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;
