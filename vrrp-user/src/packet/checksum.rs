//! The Internet checksum (RFC 1071) and the pseudo-headers VRRPv3 folds into it.

use std::net::IpAddr;

use super::IPPROTO_VRRP;

/// One's-complement sum that can be fed in pieces (pseudo-header, then PDU).
///
/// Pieces of odd length are handled: the dangling byte is paired with the
/// first byte of the next piece, so the result equals the checksum of the
/// concatenation.
#[derive(Clone, Copy, Debug, Default)]
pub struct Checksum {
    sum: u64,
    pending: Option<u8>,
}

impl Checksum {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add_bytes(&mut self, mut data: &[u8]) -> &mut Self {
        if let Some(high) = self.pending.take() {
            match data.split_first() {
                Some((&low, rest)) => {
                    self.sum += u64::from(u16::from_be_bytes([high, low]));
                    data = rest;
                }
                None => {
                    self.pending = Some(high);
                    return self;
                }
            }
        }
        let mut words = data.chunks_exact(2);
        for word in &mut words {
            self.sum += u64::from(u16::from_be_bytes([word[0], word[1]]));
        }
        if let [last] = words.remainder() {
            self.pending = Some(*last);
        }
        self
    }

    pub fn add_u16(&mut self, value: u16) -> &mut Self {
        self.add_bytes(&value.to_be_bytes())
    }

    pub fn add_u32(&mut self, value: u32) -> &mut Self {
        self.add_bytes(&value.to_be_bytes())
    }

    /// Adds the pseudo-header of RFC 5798 §5.2.8: for IPv4 (src, dst, 0,
    /// protocol 112, length) as in RFC 768, for IPv6 the RFC 8200 §8.1 form.
    /// `src` and `dst` must be of one family (the caller checks).
    pub fn add_pseudo_header(&mut self, src: IpAddr, dst: IpAddr, upper_len: u32) -> &mut Self {
        match (src, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                self.add_bytes(&src.octets())
                    .add_bytes(&dst.octets())
                    .add_bytes(&[0, IPPROTO_VRRP])
                    // An IPv4 VRRP PDU is far below 64 KiB.
                    .add_u16(upper_len as u16)
            }
            (src, dst) => self
                .add_bytes(&ip_octets(src))
                .add_bytes(&ip_octets(dst))
                .add_u32(upper_len)
                .add_bytes(&[0, 0, 0, IPPROTO_VRRP]),
        }
    }

    /// The folded, complemented 16-bit checksum.
    pub fn finish(&self) -> u16 {
        let mut sum = self.sum;
        if let Some(high) = self.pending {
            // A trailing odd byte is padded with a zero byte.
            sum += u64::from(high) << 8;
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }
}

/// The Internet checksum of `data`. Computing it over data that already holds
/// a correct checksum gives 0.
pub fn internet_checksum(data: &[u8]) -> u16 {
    Checksum::new().add_bytes(data).finish()
}

/// An address as it appears on the wire; IPv4 in a 16-byte slot would be
/// wrong here, so IPv4 is returned as its 4 bytes.
fn ip_octets(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the sum of these words folds to 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&data), !0xddf2);
    }

    #[test]
    fn ipv4_header_known_answer() {
        // The classic worked example: 192.168.0.1 -> 192.168.0.199, UDP.
        let header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(internet_checksum(&header), 0xb861);
        let mut with_sum = header;
        with_sum[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(internet_checksum(&with_sum), 0);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(internet_checksum(&[0x12]), !0x1200);
        assert_eq!(internet_checksum(&[]), 0xffff);
    }

    #[test]
    fn pieces_equal_concatenation() {
        let data: Vec<u8> = (0u8..=200).map(|b| b.wrapping_mul(37)).collect();
        for split in [0, 1, 2, 3, 7, 100, 201] {
            let mut sum = Checksum::new();
            sum.add_bytes(&data[..split]).add_bytes(&data[split..]);
            assert_eq!(sum.finish(), internet_checksum(&data), "split at {split}");
        }
        // Three odd pieces in a row.
        let mut sum = Checksum::new();
        sum.add_bytes(&data[..3])
            .add_bytes(&data[3..4])
            .add_bytes(&data[4..]);
        assert_eq!(sum.finish(), internet_checksum(&data));
    }
}
