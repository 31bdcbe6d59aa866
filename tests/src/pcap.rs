//! Just enough of the classic pcap format to read captured fixtures.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// The frames of a classic little-endian Ethernet pcap file.
pub fn frames(path: &Path) -> Result<Vec<Vec<u8>>> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&data).with_context(|| format!("parsing {}", path.display()))
}

pub fn parse(data: &[u8]) -> Result<Vec<Vec<u8>>> {
    if data.len() < 24 {
        bail!("shorter than a pcap header");
    }
    let magic = u32::from_le_bytes(data[0..4].try_into()?);
    if magic != 0xa1b2c3d4 && magic != 0xa1b23c4d {
        bail!("not a little-endian pcap file (magic {magic:#x})");
    }
    let linktype = u32::from_le_bytes(data[20..24].try_into()?);
    if linktype != 1 {
        bail!("link type {linktype}, expected Ethernet (1)");
    }
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= data.len() {
        let caplen = u32::from_le_bytes(data[at + 8..at + 12].try_into()?) as usize;
        let start = at + 16;
        if start + caplen > data.len() {
            bail!("truncated record at byte {at}");
        }
        frames.push(data[start..start + caplen].to_vec());
        at = start + caplen;
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_records_and_rejects_garbage() {
        let mut file = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        file.extend([0u8; 8]);
        file.extend(65535u32.to_le_bytes());
        file.extend(1u32.to_le_bytes());
        for payload in [&[1u8, 2, 3][..], &[9u8; 60][..]] {
            file.extend([0u8; 8]);
            file.extend((payload.len() as u32).to_le_bytes());
            file.extend((payload.len() as u32).to_le_bytes());
            file.extend(payload);
        }
        let frames = parse(&file).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0], vec![1, 2, 3]);
        assert_eq!(frames[1].len(), 60);
        assert!(parse(&file[..10]).is_err());
        let mut truncated = file.clone();
        truncated.truncate(file.len() - 1);
        assert!(parse(&truncated).is_err());
    }
}
