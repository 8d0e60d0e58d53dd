//! Signing keys for status beacons (ed25519): a school signs its beacons, and the trust checks
//! them with the public half, written as 64 hex digits.

use ed25519_dalek::{SigningKey, VerifyingKey};

/// The public half of a signing key, as fleet.toml takes it: 64 hex digits.
pub fn public_hex(key: &SigningKey) -> String {
    hex::encode(key.verifying_key().to_bytes())
}

/// Reads a public key written by [`public_hex`].
pub fn parse_public(hex_key: &str) -> Result<VerifyingKey, String> {
    let bytes: [u8; 32] = hex::decode(hex_key.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| "a public key is 64 hex digits (from `firesafe beacon key`)".to_string())?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("not an ed25519 public key ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_key_reads_back_and_nonsense_is_refused() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let hex = public_hex(&key);
        assert_eq!(hex.len(), 64);
        assert_eq!(parse_public(&hex), Ok(key.verifying_key()));
        assert!(parse_public("abc").unwrap_err().contains("64 hex digits"));
    }
}
