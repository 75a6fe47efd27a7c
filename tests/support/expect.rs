//! Assertions shared by several test targets.

/// How far apart two readings of the same clock may be, in seconds: the programs start a few
/// hundred milliseconds apart on a loaded two-core machine.
pub const CLOCK_TOLERANCE: i64 = 5;

/// Checks that `value` (seconds since the epoch, as a program printed it) lies between the
/// host's clock `before` and `after` the run, shifted by `offset`, give or take
/// [`CLOCK_TOLERANCE`].
#[track_caller]
pub fn assert_clock(what: &str, value: i64, before: i64, after: i64, offset: i64) {
    let (low, high) = (before + offset - CLOCK_TOLERANCE, after + offset + CLOCK_TOLERANCE);
    assert!(
        (low..=high).contains(&value),
        "{what} = {value}, expected {}..={} (host clock {before}..={after} shifted by {offset}): \
         off by {} s",
        before + offset,
        after + offset,
        value - (before + offset)
    );
}

/// Whether `text` is exactly `bytes` bytes in lowercase hexadecimal.
pub fn is_hex(text: &str, bytes: usize) -> bool {
    text.len() == 2 * bytes && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
