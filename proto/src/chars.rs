//! Byte classes of RFC 9110 section 5.6.2 (tokens) and 5.5 (field values),
//! as lookup tables shared by the decoder and the encoder.

/// `tchar`: `!#$%&'*+-.^_`|~`, DIGIT, ALPHA.
const fn tchar_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        b += 1;
    }
    t
}

static TCHAR: [bool; 256] = tchar_table();

/// True for a token character (RFC 9110 section 5.6.2).
#[inline(always)]
pub(crate) fn is_tchar(b: u8) -> bool {
    TCHAR[b as usize]
}

/// True for a byte allowed inside a field value: HTAB, SP, VCHAR, obs-text
/// (RFC 9110 section 5.5). Excludes NUL, CR, LF, other controls and DEL.
#[inline(always)]
pub(crate) fn is_field_value_byte(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

/// True when `s` is a non-empty token.
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// True for a byte outside ALPHA, DIGIT and `-`, the bytes of nearly
/// every real field name (all of them token characters). Branch-free, so
/// that [`is_plain_name`]'s block test vectorizes.
#[inline(always)]
fn outside_plain_name(b: u8) -> bool {
    let alpha = (b | 0x20).wrapping_sub(b'a') < 26;
    let digit = b.wrapping_sub(b'0') < 10;
    !(alpha | digit | (b == b'-'))
}

/// `FIRST[n]` is true for the first `n` bytes of a block, false for the
/// others: ANDed with a block's flags, it keeps those of the first `n`
/// bytes. (A table rather than a comparison with the byte index, which LLVM
/// does not vectorize.)
const FIRST: [[bool; 16]; 17] = {
    let mut t = [[false; 16]; 17];
    let mut n = 0;
    while n <= 16 {
        let mut k = 0;
        while k < n {
            t[n][k] = true;
            k += 1;
        }
        n += 1;
    }
    t
};

/// True when the `len` bytes of `s` from `at` on are all ALPHA, DIGIT or
/// `-`, sixteen at a time (see [`block_ends_value_run`] for how this
/// vectorizes). `false` says "look closer", not "invalid": the caller
/// checks the other token characters one by one. Also `false` when fewer
/// than 16 bytes of `s` follow the last block start.
#[inline(always)]
pub(crate) fn is_plain_name(s: &[u8], mut at: usize, mut len: usize) -> bool {
    loop {
        let Some(block) = s.get(at..).and_then(|rest| rest.first_chunk::<16>()) else {
            return false;
        };
        let keep = &FIRST[len.min(16)];
        let mut hits = [0u8; 16];
        for k in 0..16 {
            hits[k] = 0u8.wrapping_sub(u8::from(outside_plain_name(block[k]) & keep[k]));
        }
        if hits.iter().fold(0, |any, &hit| any | hit) != 0 {
            return false;
        }
        if len <= 16 {
            return true;
        }
        at += 16;
        len -= 16;
    }
}

/// True for a byte that ends the plain run of a field value: a control byte
/// (CR, LF, HTAB, NUL, ...) or DEL. Branch-free, so that [`value_run`]'s
/// block test vectorizes.
#[inline(always)]
pub(crate) fn ends_value_run(b: u8) -> bool {
    (b < 0x20) | (b == 0x7f)
}

/// True when any byte of `block` ends a value run.
///
/// Written as a loop over a fixed-size array with a branch-free test and an
/// OR of the results, which LLVM turns into a few vector instructions with
/// no `unsafe` and no `core::arch`: on x86_64 (SSE2 is baseline) one
/// unaligned 16-byte load, `pminub`/`pcmpeqb` twice, `por`, `pmovmskb` and a
/// branch; NEON on aarch64; a plain loop where there are no vectors. Only
/// the yes/no answer is taken from the vector: LLVM makes poor code when
/// asked for the position too, which [`first_ends_value_run`] finds instead.
#[inline(always)]
fn block_ends_value_run(block: &[u8; 16]) -> bool {
    let mut hits = [0u8; 16];
    for k in 0..16 {
        hits[k] = u8::from(ends_value_run(block[k]));
    }
    hits.iter().fold(0, |any, &hit| any | hit) != 0
}

/// Offset of the first byte of `block` that ends a value run, if any,
/// eight bytes at a time in a general register.
#[inline(always)]
fn first_ends_value_run(block: &[u8; 16]) -> usize {
    let (lo, hi) = block.split_at(8);
    // Both halves have 8 bytes: `split_at(8)` of a 16-byte array.
    let lo = value_run_ends(u64::from_le_bytes(lo.try_into().unwrap_or([0; 8])));
    let hi = value_run_ends(u64::from_le_bytes(hi.try_into().unwrap_or([0; 8])));
    let at = if lo != 0 {
        lo.trailing_zeros()
    } else {
        64 + hi.trailing_zeros()
    };
    (at / 8) as usize
}

/// The high bit of each byte of `x` that is a control byte or DEL. Only the
/// lowest set bit is exact (a borrow can flag bytes above a true hit, never
/// below), which is all the callers use.
#[inline(always)]
fn value_run_ends(x: u64) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let ctl = x.wrapping_sub(LO * 0x20) & !x;
    let del = x ^ (LO * 0x7f);
    let del = del.wrapping_sub(LO) & !del;
    (ctl | del) & HI
}

/// Offset of the first byte of `s` at or after `from` that ends a value run
/// (see [`ends_value_run`]), or `s.len()` if none does: sixteen bytes a
/// step, then the position within the block that holds it.
#[inline(always)]
pub(crate) fn value_run(s: &[u8], mut from: usize) -> usize {
    while let Some(block) = s.get(from..).and_then(|rest| rest.first_chunk()) {
        if block_ends_value_run(block) {
            return from + first_ends_value_run(block);
        }
        from += 16;
    }
    // Fewer than 16 bytes left: a word, then byte by byte.
    let rest = s.get(from..).unwrap_or_default();
    let (words, tail) = rest.as_chunks::<8>();
    for word in words {
        let ends = value_run_ends(u64::from_le_bytes(*word));
        if ends != 0 {
            return from + (ends.trailing_zeros() / 8) as usize;
        }
        from += 8;
    }
    from + tail.iter().take_while(|&&b| !ends_value_run(b)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_run_class_matches_the_rule() {
        for b in 0..=255u8 {
            assert_eq!(
                ends_value_run(b),
                !is_field_value_byte(b) || b == b'\t',
                "{b:#x}"
            );
        }
    }

    #[test]
    fn plain_names() {
        for b in 0..=255u8 {
            let plain = b.is_ascii_alphanumeric() || b == b'-';
            assert_eq!(outside_plain_name(b), !plain, "{b:#x}");
            assert!(!plain || is_tchar(b), "{b:#x}");
        }
        for len in 1..40 {
            for at in 0..3 {
                let mut v = alloc::vec![b'x'; at + len + 16];
                // What follows the name must not matter.
                v[at + len] = b':';
                v[at + len + 1] = b' ';
                assert!(is_plain_name(&v, at, len), "{len} {at}");
                for pos in at..at + len {
                    for bad in [b'_', b' ', b':', 0, 0x80, b'.'] {
                        let mut w = v.clone();
                        w[pos] = bad;
                        assert!(!is_plain_name(&w, at, len), "{len} {at} {pos} {bad:#x}");
                    }
                }
                // Fewer than 16 bytes from a block start: "look closer".
                assert!(!is_plain_name(&v[..at + len], at, len) || len >= 16);
            }
        }
    }

    #[test]
    fn value_run_every_length_start_and_position() {
        for len in 0..50 {
            for from in 0..=len {
                assert_eq!(value_run(&alloc::vec![b'a'; len], from), len);
                for pos in 0..len {
                    for bad in [0u8, b'\t', b'\r', b'\n', 0x1f, 0x7f] {
                        let mut v = alloc::vec![0x80u8; len];
                        v[pos] = bad;
                        // A second hit after the first must not matter.
                        if pos + 3 < len {
                            v[pos + 3] = b'\r';
                        }
                        let want = from
                            + v[from..]
                                .iter()
                                .take_while(|&&b| !ends_value_run(b))
                                .count();
                        assert_eq!(value_run(&v, from), want, "{len} {from} {pos} {bad:#x}");
                    }
                }
            }
        }
    }
}
