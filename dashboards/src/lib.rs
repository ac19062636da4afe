//! Presentation of auditlake's results: the monthly executive report (HTML, PDF, mail).

pub mod report;
pub mod web;
