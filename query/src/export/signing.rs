//! Ed25519 keys for signing bundle manifests, stored as PEM: the private key as PKCS#8
//! (`BEGIN PRIVATE KEY`), the public key as SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`), the
//! formats openssl and most crypto libraries read, so an auditor can check a bundle's
//! signature without mcpsiem.

use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::ExportError;

/// The key that signs manifests.
#[derive(Clone)]
pub struct ExportKey {
    key: SigningKey,
}

/// A public key that checks them.
#[derive(Clone, Debug)]
pub struct PublicKey {
    key: VerifyingKey,
}

/// A short, stable name for a public key: the first 16 hex digits of the SHA-256 of its
/// 32 bytes. Manifests carry it, so an auditor knows which key to check with.
fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

impl ExportKey {
    pub fn generate() -> Self {
        Self { key: SigningKey::from_bytes(&rand::random::<[u8; 32]>()) }
    }

    pub fn load(path: &Path) -> Result<Self, ExportError> {
        let text = std::fs::read_to_string(path).map_err(|e| ExportError::Key {
            path: path.display().to_string(),
            reason: format!("{e}; create a key pair with `mcpsiem keys generate`"),
        })?;
        let key = SigningKey::from_pkcs8_pem(&text).map_err(|e| ExportError::Key {
            path: path.display().to_string(),
            reason: format!("not an Ed25519 private key in PKCS#8 PEM ({e})"),
        })?;
        Ok(Self { key })
    }

    pub fn public(&self) -> PublicKey {
        PublicKey { key: self.key.verifying_key() }
    }

    pub fn key_id(&self) -> String {
        key_id(&self.key.verifying_key())
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// Writes `NAME.key` (readable by its owner only) and `NAME.pub` into `dir`, refusing to
    /// replace an existing key. Returns both paths.
    pub fn write_pair(&self, dir: &Path, name: &str) -> Result<(PathBuf, PathBuf), ExportError> {
        let private = dir.join(format!("{name}.key"));
        let public = dir.join(format!("{name}.pub"));
        let io = |path: &Path, e: std::io::Error| ExportError::Io { path: path.display().to_string(), source: e };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        for path in [&private, &public] {
            if path.exists() {
                return Err(ExportError::Key {
                    path: path.display().to_string(),
                    reason: "exists already; rotating keys means a new name (see docs/evidence.md)".into(),
                });
            }
        }
        // PKCS#8 v1 (RFC 5208, no public key inside): the form openssl 3.0 and Python's
        // `cryptography` read; the v2 form ed25519-dalek writes by default they refuse.
        let v1 = ed25519_dalek::pkcs8::KeypairBytes { secret_key: self.key.to_bytes(), public_key: None };
        let pem = v1.to_pkcs8_pem(LineEnding::LF).expect("an Ed25519 key encodes");
        let public_pem = self.key.verifying_key().to_public_key_pem(LineEnding::LF).expect("an Ed25519 key encodes");
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&private)
                .map_err(|e| io(&private, e))?;
            file.write_all(pem.as_bytes()).map_err(|e| io(&private, e))?;
            file.sync_all().map_err(|e| io(&private, e))?;
        }
        std::fs::write(&public, public_pem).map_err(|e| io(&public, e))?;
        Ok((private, public))
    }
}

impl PublicKey {
    pub fn load(path: &Path) -> Result<Self, ExportError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ExportError::Key { path: path.display().to_string(), reason: e.to_string() })?;
        Self::from_pem(&text).map_err(|reason| ExportError::Key { path: path.display().to_string(), reason })
    }

    pub fn from_pem(text: &str) -> Result<Self, String> {
        VerifyingKey::from_public_key_pem(text)
            .map(|key| Self { key })
            .map_err(|e| format!("not an Ed25519 public key in PEM (BEGIN PUBLIC KEY) ({e})"))
    }

    pub fn key_id(&self) -> String {
        key_id(&self.key)
    }

    /// True if `signature` is this key's signature of `message` (strict: no malleable
    /// encodings).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(bytes) = <[u8; 64]>::try_from(signature) else { return false };
        self.key.verify_strict(message, &Signature::from_bytes(&bytes)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_written_to_disk_signs_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let key = ExportKey::generate();
        let (private, public) = key.write_pair(dir.path(), "export").unwrap();
        assert!(key.write_pair(dir.path(), "export").unwrap_err().to_string().contains("exists already"));
        let loaded = ExportKey::load(&private).unwrap();
        let public = PublicKey::load(&public).unwrap();
        assert_eq!(loaded.key_id(), public.key_id());
        let signature = loaded.sign(b"manifest");
        assert!(public.verify(b"manifest", &signature));
        assert!(!public.verify(b"manifesT", &signature));
        assert!(!ExportKey::generate().public().verify(b"manifest", &signature));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&private).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(PublicKey::load(&private).is_err(), "a private key is not taken for a public one");
    }

    /// The key files are what the docs say: openssl reads the private key and derives the
    /// same public key as the `.pub` file holds.
    #[test]
    fn openssl_reads_the_private_key_and_derives_the_same_public_key() {
        let dir = tempfile::tempdir().unwrap();
        let (private, public) = ExportKey::generate().write_pair(dir.path(), "export").unwrap();
        let output = std::process::Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&private)
            .output()
            .expect("openssl is installed (Debian's openssl package)");
        assert!(output.status.success(), "openssl refused the key: {}", String::from_utf8_lossy(&output.stderr));
        assert_eq!(String::from_utf8(output.stdout).unwrap(), std::fs::read_to_string(&public).unwrap());
    }
}
