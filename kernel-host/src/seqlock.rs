//! A record in the memory the whole sandbox shares that any of its processes may read or write
//! without a lock: a sequence number and `N` words (a seqlock). A writer makes the number odd
//! by compare-and-swap, writes, and makes it even again; a reader copies the words and keeps
//! the copy only if the number was even and unchanged around it. Nothing ever waits: a record
//! being written, or left odd by a writer that died, reads as a miss and is not written again.
//! What a record holds comes from processes the sandbox runs: its users check it before use.

use core::sync::atomic::{fence, AtomicU64, Ordering};

/// A seqlocked record of `N` words. All zero bytes are a valid, empty record.
#[repr(C)]
pub struct SeqWords<const N: usize> {
    seq: AtomicU64,
    words: [AtomicU64; N],
}

impl<const N: usize> SeqWords<N> {
    /// Whether a writer holds the record (or died holding it).
    pub fn busy(&self) -> bool {
        self.seq.load(Ordering::Relaxed) & 1 == 1
    }

    /// Word `i` as it is now, unchecked: a hint for choosing a record, never for its contents.
    pub fn word(&self, i: usize) -> u64 {
        self.words[i].load(Ordering::Relaxed)
    }

    /// Writes `words`, unless another writer holds the record; returns whether it did.
    pub fn write(&self, words: &[u64; N]) -> bool {
        let seq = self.seq.load(Ordering::Relaxed);
        if seq & 1 == 1
            || self.seq.compare_exchange(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed).is_err()
        {
            return false;
        }
        fence(Ordering::Release);
        for (word, &value) in self.words.iter().zip(words) {
            word.store(value, Ordering::Relaxed);
        }
        self.seq.store(seq + 2, Ordering::Release);
        true
    }

    /// A consistent copy of the words, or `None` while a writer holds the record.
    pub fn read(&self) -> Option<[u64; N]> {
        let seq = self.seq.load(Ordering::Acquire);
        if seq & 1 == 1 {
            return None;
        }
        let mut out = [0u64; N];
        for (value, word) in out.iter_mut().zip(&self.words) {
            *value = word.load(Ordering::Relaxed);
        }
        fence(Ordering::Acquire);
        (self.seq.load(Ordering::Relaxed) == seq).then_some(out)
    }

    /// Leaves the record as a writer that died halfway would.
    #[cfg(test)]
    pub fn abandon(&self) {
        self.seq.fetch_add(1, Ordering::Relaxed);
    }
}

/// `bytes` (a multiple of 8 long) as words, in memory order.
pub fn pack(bytes: &[u8], words: &mut [u64]) {
    for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(8)) {
        *word = u64::from_ne_bytes(chunk.try_into().unwrap_or([0; 8]));
    }
}

/// [`pack`] undone.
pub fn unpack(words: &[u64], bytes: &mut [u8]) {
    for (chunk, word) in bytes.chunks_exact_mut(8).zip(words) {
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_record_reads_back_and_a_held_one_is_a_miss() {
        // SAFETY: all-zero bytes are a valid record.
        let r: SeqWords<3> = unsafe { core::mem::zeroed() };
        assert_eq!(r.read(), Some([0; 3]));
        assert!(r.write(&[1, 2, 3]));
        assert_eq!(r.read(), Some([1, 2, 3]));
        r.abandon();
        assert!(r.busy());
        assert_eq!(r.read(), None);
        assert!(!r.write(&[4, 5, 6]), "a held record was written");
    }

    #[test]
    fn bytes_survive_packing() {
        let bytes: [u8; 16] = *b"/usr/bin/sleep\0\0";
        let mut words = [0u64; 2];
        pack(&bytes, &mut words);
        let mut back = [0u8; 16];
        unpack(&words, &mut back);
        assert_eq!(back, bytes);
    }
}
