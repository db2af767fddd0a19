//! Packing signed integer codes by bit width: 2..=4 bits two per byte (offset nibbles),
//! 5..=8 bits one per byte, 16 bits two bytes little-endian.

/// Bytes needed for `n` codes of `bits`.
pub fn packed_len(n: usize, bits: u32) -> usize {
    match bits {
        2..=4 => n.div_ceil(2),
        5..=8 => n,
        _ => 2 * n,
    }
}

/// Packs codes (each within the signed range of `bits`).
pub fn pack(codes: &[i32], bits: u32) -> Vec<u8> {
    match bits {
        2..=4 => codes
            .chunks(2)
            .map(|c| ((c[0] + 8) as u8 & 0xF) | (((c.get(1).copied().unwrap_or(0) + 8) as u8 & 0xF) << 4))
            .collect(),
        5..=8 => codes.iter().map(|&c| c as i8 as u8).collect(),
        _ => codes.iter().flat_map(|&c| (c as i16).to_le_bytes()).collect(),
    }
}

/// Unpacks `n` codes of `bits` into i16 (the engine's operand type).
pub fn unpack(bytes: &[u8], n: usize, bits: u32) -> Vec<i16> {
    match bits {
        2..=4 => (0..n).map(|i| (((bytes[i / 2] >> (4 * (i % 2))) & 0xF) as i16) - 8).collect(),
        5..=8 => bytes[..n].iter().map(|&b| b as i8 as i16).collect(),
        _ => bytes[..2 * n].chunks(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_width() {
        for bits in [2u32, 3, 4, 5, 6, 8, 16] {
            let qmax = (1i32 << (bits - 1)) - 1;
            let codes: Vec<i32> = (0..101).map(|i| (i * 7919) % (2 * qmax + 1) - qmax).collect();
            let packed = pack(&codes, bits);
            assert_eq!(packed.len(), packed_len(codes.len(), bits), "{bits}");
            let back: Vec<i32> = unpack(&packed, codes.len(), bits).into_iter().map(i32::from).collect();
            assert_eq!(back, codes, "{bits} bits");
        }
        assert_eq!(packed_len(1000, 4), 500);
        assert_eq!(packed_len(1000, 8), 1000);
    }
}
