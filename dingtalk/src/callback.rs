//! The HTTP callback's cryptography (DINGTALK.md, "HTTP callback"), for `POST /dingtalk/callback`.
//!
//! The platform posts `?msg_signature=&timestamp=&nonce=` with `{"encrypt": "..."}`:
//!
//! - signature = lowercase hex SHA-1 of the sorted concatenation of token, timestamp, nonce and
//!   encrypt (compared in constant time);
//! - AES key = base64(EncodingAESKey + "="), 32 bytes; AES-256-CBC, IV = the key's first 16 bytes;
//!   PKCS#7 padding to a **32-byte** block (not AES's 16);
//! - plaintext = 16 random bytes + 4-byte big-endian length + message + owner key (the appKey,
//!   corpId or suiteKey the message is for).
//!
//! [`CallbackCrypto::open`] checks all of it and returns the message; [`CallbackCrypto::reply`]
//! seals the answer (`success`) the same way. Nothing secret is in an error.

use aes::Aes256;
use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use auditlake_core::secret::Secret;
use base64::Engine;
use sha1::{Digest, Sha1};

const BLOCK: usize = 32;

/// Why a callback was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    #[error("the signature does not match (wrong token, or the message was changed)")]
    Signature,
    #[error("not a message encrypted with the configured key: {0}")]
    Malformed(&'static str),
    #[error("the message is addressed to another app (owner key {0:?}, not the configured one)")]
    OwnerKey(String),
}

/// The callback's token, AES key and owner key.
pub struct CallbackCrypto {
    token: Secret,
    key: [u8; 32],
    owner_key: String,
}

impl CallbackCrypto {
    /// From the token, the 43-character EncodingAESKey and the expected owner key.
    pub fn new(token: Secret, encoding_aes_key: &str, owner_key: &str) -> Result<Self, String> {
        // Decoded as the platform's own SDKs do: the 43rd character's unused low bits need not
        // be zero (a strict decoder refuses most real keys).
        let lenient = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
        );
        let bytes = lenient
            .decode(format!("{}=", encoding_aes_key.trim()))
            .ok()
            .filter(|_| encoding_aes_key.trim().len() == 43)
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                "the EncodingAESKey must be the 43 characters shown in the developer console \
                 (base64 of 32 bytes without its `=`)"
                    .to_string()
            })?;
        Ok(CallbackCrypto {
            token,
            key: bytes,
            owner_key: owner_key.to_string(),
        })
    }

    /// The signature of a message: hex SHA-1 of the sorted token, timestamp, nonce and encrypt.
    pub fn signature(&self, timestamp: &str, nonce: &str, encrypt: &str) -> String {
        let mut parts = [self.token.expose(), timestamp, nonce, encrypt];
        parts.sort_unstable();
        hex_lower(&Sha1::digest(parts.concat().as_bytes()))
    }

    /// Checks the signature, decrypts, checks the owner key; the message (JSON text).
    pub fn open(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypt: &str,
    ) -> Result<String, CallbackError> {
        let expected = self.signature(timestamp, nonce, encrypt);
        if !constant_time_eq(expected.as_bytes(), msg_signature.trim().as_bytes()) {
            return Err(CallbackError::Signature);
        }
        let mut data = base64::engine::general_purpose::STANDARD
            .decode(encrypt.trim())
            .map_err(|_| CallbackError::Malformed("not base64"))?;
        if data.is_empty() || data.len() % 16 != 0 {
            return Err(CallbackError::Malformed("not whole AES blocks"));
        }
        self.cbc_decrypt(&mut data);
        let pad = *data.last().expect("not empty") as usize;
        if pad == 0
            || pad > BLOCK
            || pad > data.len()
            || !data[data.len() - pad..].iter().all(|&b| b as usize == pad)
        {
            return Err(CallbackError::Malformed("bad padding (wrong key?)"));
        }
        data.truncate(data.len() - pad);
        if data.len() < 20 {
            return Err(CallbackError::Malformed("too short"));
        }
        let len = u32::from_be_bytes(data[16..20].try_into().expect("4 bytes")) as usize;
        let rest = &data[20..];
        if len > rest.len() {
            return Err(CallbackError::Malformed("its length is past its end"));
        }
        let (message, owner) = rest.split_at(len);
        let owner = String::from_utf8_lossy(owner).into_owned();
        if owner != self.owner_key {
            return Err(CallbackError::OwnerKey(owner));
        }
        String::from_utf8(message.to_vec()).map_err(|_| CallbackError::Malformed("not UTF-8"))
    }

    /// `message` sealed as the platform expects: base64 of the AES-256-CBC ciphertext.
    pub fn seal(&self, message: &str, random16: [u8; 16]) -> String {
        let mut plain = Vec::with_capacity(message.len() + self.owner_key.len() + 52);
        plain.extend_from_slice(&random16);
        plain.extend_from_slice(&(message.len() as u32).to_be_bytes());
        plain.extend_from_slice(message.as_bytes());
        plain.extend_from_slice(self.owner_key.as_bytes());
        let pad = BLOCK - plain.len() % BLOCK;
        plain.extend(std::iter::repeat_n(pad as u8, pad));
        self.cbc_encrypt(&mut plain);
        base64::engine::general_purpose::STANDARD.encode(plain)
    }

    /// The reply body `{"msg_signature", "timeStamp", "nonce", "encrypt"}` carrying `message`
    /// (for the platform: `success`).
    pub fn reply(
        &self,
        message: &str,
        timestamp: &str,
        nonce: &str,
        random16: [u8; 16],
    ) -> serde_json::Value {
        let encrypt = self.seal(message, random16);
        serde_json::json!({
            "msg_signature": self.signature(timestamp, nonce, &encrypt),
            "timeStamp": timestamp,
            "nonce": nonce,
            "encrypt": encrypt,
        })
    }

    fn cbc_encrypt(&self, data: &mut [u8]) {
        let cipher = Aes256::new(GenericArray::from_slice(&self.key));
        let mut prev: [u8; 16] = self.key[..16].try_into().expect("16 bytes");
        for chunk in data.chunks_exact_mut(16) {
            for (b, p) in chunk.iter_mut().zip(prev.iter()) {
                *b ^= p;
            }
            cipher.encrypt_block(GenericArray::from_mut_slice(chunk));
            prev.copy_from_slice(chunk);
        }
    }

    fn cbc_decrypt(&self, data: &mut [u8]) {
        let cipher = Aes256::new(GenericArray::from_slice(&self.key));
        let mut prev: [u8; 16] = self.key[..16].try_into().expect("16 bytes");
        for chunk in data.chunks_exact_mut(16) {
            let this: [u8; 16] = chunk.try_into().expect("16 bytes");
            cipher.decrypt_block(GenericArray::from_mut_slice(chunk));
            for (b, p) in chunk.iter_mut().zip(prev.iter()) {
                *b ^= p;
            }
            prev = this;
        }
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `testdata/callback_vector.json` was made with Python's `cryptography` package, as the
    /// platform builds a callback (not with this code): AES-256-CBC of random16 + length +
    /// message + owner key padded to 32 bytes, and the SHA-1 signature.
    fn vector() -> serde_json::Value {
        serde_json::from_str(include_str!("testdata/callback_vector.json")).unwrap()
    }

    fn crypto(v: &serde_json::Value, owner: &str) -> CallbackCrypto {
        CallbackCrypto::new(
            Secret::new(v["token"].as_str().unwrap()),
            v["aes_key"].as_str().unwrap(),
            owner,
        )
        .unwrap()
    }

    #[test]
    fn opens_what_the_platform_sealed_and_refuses_tampering() {
        let v = vector();
        let s = |k: &str| v[k].as_str().unwrap().to_string();
        let c = crypto(&v, &s("owner_key"));
        assert_eq!(
            c.signature(&s("timestamp"), &s("nonce"), &s("encrypt")),
            s("msg_signature")
        );
        let message = c
            .open(
                &s("msg_signature"),
                &s("timestamp"),
                &s("nonce"),
                &s("encrypt"),
            )
            .unwrap();
        assert_eq!(message, s("message"));
        // a changed signature, timestamp or ciphertext is refused
        let mut bad = s("msg_signature");
        bad.replace_range(0..1, if bad.starts_with('0') { "1" } else { "0" });
        assert_eq!(
            c.open(&bad, &s("timestamp"), &s("nonce"), &s("encrypt")),
            Err(CallbackError::Signature)
        );
        assert_eq!(
            c.open(
                &s("msg_signature"),
                "1764650000124",
                &s("nonce"),
                &s("encrypt")
            ),
            Err(CallbackError::Signature)
        );
        // the wrong owner key: decrypted, and refused
        let other = crypto(&v, "ding-other-app");
        assert_eq!(
            other.open(
                &s("msg_signature"),
                &s("timestamp"),
                &s("nonce"),
                &s("encrypt")
            ),
            Err(CallbackError::OwnerKey("dingabc123".into()))
        );
        // a bad key is named as such
        assert!(CallbackCrypto::new(Secret::new("t"), "short", "x").is_err());
    }

    #[test]
    fn what_it_seals_the_platform_can_open() {
        let v = vector();
        let c = crypto(&v, "dingabc123");
        let random16: [u8; 16] = v["reply_success_random16"]
            .as_str()
            .unwrap()
            .as_bytes()
            .try_into()
            .unwrap();
        let r = c.reply("success", "1764650000999", "n1", random16);
        let opened = c
            .open(
                r["msg_signature"].as_str().unwrap(),
                "1764650000999",
                "n1",
                r["encrypt"].as_str().unwrap(),
            )
            .unwrap();
        assert_eq!(opened, "success");
        // byte for byte what Python's `cryptography` makes of the same input
        assert_eq!(r["encrypt"], v["reply_success_encrypt"]);
        // and the padding is to 32 bytes: 16 + 4 + 7 + 10 = 37 → 64 bytes of ciphertext
        let ct = base64::engine::general_purpose::STANDARD
            .decode(r["encrypt"].as_str().unwrap())
            .unwrap();
        assert_eq!(ct.len(), 64);
    }
}
