//! Email through SMTP (lettre): STARTTLS, implicit TLS or none; optional auth; HTML + plain-text
//! multipart; `Message-ID` derived from the notification id, so a resend is recognisably the same mail.

pub mod config;
pub mod encoder;
pub mod service;

#[cfg(test)]
mod tests;
