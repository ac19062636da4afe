//! Digest → JSON body; the body signature.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::notify::Digest;

/// `{"id", "channel", "headline", "recipients", "items": [...]}` as bytes (what is signed is what is sent).
pub fn encode(id: &str, digest: &Digest) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": id,
        "channel": digest.channel,
        "headline": digest.headline(),
        "recipients": digest.recipients,
        "items": digest.items,
    }))
    .expect("a digest serializes")
}

/// `sha256=<lowercase hex HMAC-SHA256(key, body)>`
pub fn signature(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}
