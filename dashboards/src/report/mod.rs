//! The monthly executive report: one self-contained HTML page (12 KPI cards with month-over-month
//! change and plain-language readings, inline SVG charts, department table, findings summary), its
//! PDF through headless Chromium, and mailing both through SMTP.
//!
//! The caller (the `auditlake report` command) fills a [`ReportData`] from the query layer, then:
//! [`render_html`] → write the file → [`write_pdf`] → [`send_report`].

mod fmt;
pub mod kpi;
mod mail;
mod model;
mod pdf;
mod render;
mod svg;

pub use mail::{build_message, html_to_text, send_report};
pub use model::{DailyActive, DeptRow, FindingCount, ReportData};
pub use pdf::{
    CHROMIUM_ENV, CHROMIUM_NAMES, HeadlessRun, dump_dom, file_url, find_chromium, headless_args,
    run_headless, write_pdf,
};
pub use render::render_html;
