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
