//! A 128-bit hash that is the same in every process and version (unlike `DefaultHasher`):
//! alert ids and rule digests must not change across restarts.

/// FNV-1a over 128 bits.
pub fn stable_hash(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    bytes.iter().fold(OFFSET, |hash, byte| (hash ^ u128::from(*byte)).wrapping_mul(PRIME))
}
