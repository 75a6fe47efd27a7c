//! Randomness: a seeded stream per process.
//!
//! With a seed, `getrandom` and `AT_RANDOM` come from ChaCha20 keyed by the seed and the
//! process's lineage (its place in the sandbox's tree of forks and execs), so two runs with
//! the same seed see the same bytes and a forked child never replays its parent's stream.
//! Blocks are handed out with one atomic add, so concurrent callers never share bytes and
//! no lock is held.

use crate::config::Config;
use core::sync::atomic::{AtomicU64, Ordering};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// Bytes per ChaCha20 block.
const BLOCK: u64 = 64;
/// Nonce domain of the `getrandom` stream.
const DOMAIN_GETRANDOM: u8 = 1;
/// Nonce domain of `AT_RANDOM`.
const DOMAIN_AT_RANDOM: u8 = 2;

/// The sandbox's randomness for this process.
pub struct Random {
    seed: Option<u64>,
    lineage: AtomicU64,
    next_block: AtomicU64,
    /// Execs started from this process so far. A `vfork` child shares this memory, so
    /// children spawned one after another each see a new count.
    execs: AtomicU64,
}

impl Random {
    /// Randomness as the configuration sets it.
    pub fn new(config: &Config) -> Self {
        Random {
            seed: config.seed,
            lineage: AtomicU64::new(config.lineage),
            next_block: AtomicU64::new(0),
            execs: AtomicU64::new(0),
        }
    }

    /// Whether randomness is seeded (and so served by the kernel).
    pub fn is_seeded(&self) -> bool {
        self.seed.is_some()
    }

    /// The lineage of this process.
    pub fn lineage(&self) -> u64 {
        self.lineage.load(Ordering::Relaxed)
    }

    /// Fills `buf` from the stream. Does nothing when unseeded.
    pub fn fill(&self, buf: &mut [u8]) {
        let Some(seed) = self.seed else { return };
        let blocks = (buf.len() as u64).div_ceil(BLOCK);
        let first = self.next_block.fetch_add(blocks, Ordering::Relaxed);
        keystream(seed, self.lineage(), DOMAIN_GETRANDOM, first * BLOCK, buf);
    }

    /// The 16 bytes of `AT_RANDOM` for this image, when seeded.
    pub fn at_random(&self) -> Option<[u8; 16]> {
        let seed = self.seed?;
        let mut out = [0u8; 16];
        keystream(seed, self.lineage(), DOMAIN_AT_RANDOM, 0, &mut out);
        Some(out)
    }

    /// Called in a forked child: `index` is the parent's count of forks before this one.
    pub fn enter_child(&self, index: u64) {
        let child = mix(self.lineage(), 0x6b1d_0000_0000_0000 ^ index);
        self.lineage.store(child, Ordering::Relaxed);
        self.next_block.store(0, Ordering::Relaxed);
        self.execs.store(0, Ordering::Relaxed);
    }

    /// The lineage the next image of this process gets when it execs.
    pub fn lineage_after_exec(&self) -> u64 {
        let exec = self.execs.fetch_add(1, Ordering::Relaxed);
        mix(mix(self.lineage(), 0xe8ec_0000_0000_0000 ^ exec), self.next_block.load(Ordering::Relaxed))
    }
}

/// SplitMix64's finaliser: a cheap, well-mixed 64-bit hash.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn keystream(seed: u64, lineage: u64, domain: u8, offset: u64, out: &mut [u8]) {
    let mut key = [0u8; 32];
    for (i, chunk) in key.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&mix(mix(seed, lineage), i as u64).to_le_bytes());
    }
    // rand_chacha picks its implementation at compile time; the chacha20 crate detects CPU
    // features at run time with `cpuid`, which costs a VM exit in every new process.
    let mut rng = ChaCha20Rng::from_seed(key);
    rng.set_stream(u64::from(domain));
    rng.set_word_pos(u128::from(offset / 4));
    rng.fill_bytes(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded(seed: u64) -> Random {
        Random::new(&Config { seed: Some(seed), ..Config::default() })
    }

    #[test]
    fn same_seed_same_stream_and_consecutive_calls_differ() {
        let (a, b) = (seeded(7), seeded(7));
        let (mut x, mut y) = ([0u8; 16], [0u8; 16]);
        a.fill(&mut x);
        b.fill(&mut y);
        assert_eq!(x, y);
        a.fill(&mut y);
        assert_ne!(x, y);
    }

    #[test]
    fn seeds_and_children_get_their_own_streams() {
        let (a, b) = (seeded(7), seeded(8));
        let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
        a.fill(&mut x);
        b.fill(&mut y);
        assert_ne!(x, y);
        let child = seeded(7);
        child.enter_child(0);
        let mut z = [0u8; 32];
        child.fill(&mut z);
        assert_ne!(x, z);
    }

    #[test]
    fn unseeded_leaves_the_buffer_alone() {
        let r = Random::new(&Config::default());
        let mut x = [5u8; 4];
        r.fill(&mut x);
        assert_eq!(x, [5u8; 4]);
        assert!(r.at_random().is_none());
    }
}
