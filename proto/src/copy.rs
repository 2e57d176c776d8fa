//! Copies that slice for free.

use bytes::Bytes;

/// A copy of `bytes` whose slices share one allocation.
///
/// `Bytes::copy_from_slice` allocates the copy, and then once more at the
/// first `slice` or `split` (its plain vector is promoted to shared
/// storage). Here the bytes are kept inline in the allocation of a
/// [`Bytes::from_owner`] owner, whose slices only count references: one
/// allocation in all, for copies up to 4 KiB (a URL, a response head);
/// longer ones are copied as usual.
///
/// ```
/// let url = roundtrip_proto::copy::shared_copy(b"http://example.com/a");
/// let host = url.slice(7..18);
/// assert_eq!(host, "example.com");
/// ```
#[inline]
pub fn shared_copy(bytes: &[u8]) -> Bytes {
    match bytes.len() {
        0 => Bytes::new(),
        1..=64 => inline::<64>(bytes),
        65..=256 => inline::<256>(bytes),
        257..=1024 => inline::<1024>(bytes),
        1025..=4096 => inline::<4096>(bytes),
        _ => Bytes::copy_from_slice(bytes),
    }
}

/// Bytes kept in the allocation of their owner.
struct Inline<const N: usize> {
    len: usize,
    buf: [u8; N],
}

impl<const N: usize> AsRef<[u8]> for Inline<N> {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

#[inline]
fn inline<const N: usize>(bytes: &[u8]) -> Bytes {
    let mut buf = [0; N];
    buf[..bytes.len()].copy_from_slice(bytes);
    Bytes::from_owner(Inline {
        len: bytes.len(),
        buf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_of_every_size_class_keep_their_bytes() {
        for len in [0, 1, 63, 64, 65, 256, 257, 1024, 1025, 4096, 4097, 10_000] {
            let src: alloc::vec::Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let copy = shared_copy(&src);
            assert_eq!(&copy[..], &src[..], "{len}");
            if len > 2 {
                assert_eq!(&copy.slice(1..len - 1)[..], &src[1..len - 1]);
            }
        }
    }
}
