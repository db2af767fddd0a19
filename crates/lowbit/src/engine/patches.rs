//! Convolutions as products: patches unfolded into rows (im2col), for f32 images
//! channel-major and for codes pixel-major, with the weights' depths in the matching order.

use mpq_net::ConvGeom;

/// Rows of `k` x `k` patches at stride `g.stride` of a padded image `[c][g.side][g.side]`:
/// row `oy * o + ox` holds `img[c][oy * s + ky][ox * s + kx]` at `c * k * k + ky * k + kx`
/// (the weight layout), in rows of `row_len` (the rest left as is).
pub(super) fn im2col<T: Copy>(img: &[T], g: &ConvGeom, row_len: usize, out: &mut [T]) {
    let (o, k, s, side) = (g.o, g.k, g.stride, g.side);
    for oy in 0..o {
        for ox in 0..o {
            let row = &mut out[(oy * o + ox) * row_len..][..g.depth()];
            for c in 0..g.c_in {
                for ky in 0..k {
                    let src = &img[c * side * side + (oy * s + ky) * side + ox * s..][..k];
                    row[(c * k + ky) * k..][..k].copy_from_slice(src);
                }
            }
        }
    }
}

/// A convolution's weight codes (rows of `c_in * taps`, depth `c * taps + tap`) with each
/// row's depths reordered to `tap * c_in + c`, the order of [`im2col_pixels`]. The products
/// and their integer sums are the same.
pub(super) fn pixel_major_depths(codes: &[i16], c_in: usize, taps: usize) -> Vec<i16> {
    let k = c_in * taps;
    let mut out = vec![0i16; codes.len()];
    for (dst, src) in out.chunks_exact_mut(k).zip(codes.chunks_exact(k)) {
        for (c, row) in src.chunks_exact(taps).enumerate() {
            row.iter().enumerate().for_each(|(tap, &v)| dst[tap * c_in + c] = v);
        }
    }
    out
}

/// `img` `[c][side][side]` stored pixel-major, `[side][side][c]`, into `out`.
pub(super) fn to_pixels(img: &[u8], c_in: usize, side: usize, out: &mut [u8]) {
    let plane = side * side;
    match c_in {
        1 => out[..plane].copy_from_slice(&img[..plane]),
        4 => interleave::<4>(img, plane, out),
        8 => interleave::<8>(img, plane, out),
        16 => interleave::<16>(img, plane, out),
        32 => interleave::<32>(img, plane, out),
        _ => {
            for (c, p) in img.chunks_exact(plane).enumerate().take(c_in) {
                p.iter().enumerate().for_each(|(i, &v)| out[i * c_in + c] = v);
            }
        }
    }
}

/// [`to_pixels`] of `C` planes of `plane` codes: each pixel's `C` codes gathered, then
/// stored together.
fn interleave<const C: usize>(img: &[u8], plane: usize, out: &mut [u8]) {
    let planes: [&[u8]; C] = std::array::from_fn(|c| &img[c * plane..(c + 1) * plane]);
    for (i, px) in out[..plane * C].chunks_exact_mut(C).enumerate() {
        let v: [u8; C] = std::array::from_fn(|c| planes[c][i]);
        px.copy_from_slice(&v);
    }
}

/// Rows of patches of a pixel-major padded image (`[side][side][c_in]`) for the top-left
/// `g.o` x `g.o` outputs (fewer than the layer's where a floor max-pool drops the last row
/// and column): row `oy * o + ox` holds `img[oy * s + ky][ox * s + kx][c]` at
/// `(ky * k + kx) * c_in + c`, so each `ky` is one run of `k * c_in` codes, contiguous in the
/// image; rows of `row_len` (the rest zero).
pub(super) fn im2col_pixels(px: &[u8], g: &ConvGeom, row_len: usize, out: &mut [u8]) {
    assert!(g.o == 0 || (g.o - 1) * g.stride + g.k <= g.side, "{} outputs do not fit a side of {}", g.o, g.side);
    // Runs of a length known when compiled move as a few registers; others call `memmove`.
    match (g.k, g.k * g.c_in) {
        (3, 3) => patches::<3>(px, g, row_len, out),
        (3, 12) => patches::<12>(px, g, row_len, out),
        (3, 24) => patches::<24>(px, g, row_len, out),
        (3, 48) => patches::<48>(px, g, row_len, out),
        (3, 96) => patches::<96>(px, g, row_len, out),
        _ => patches::<0>(px, g, row_len, out),
    }
}

/// [`im2col_pixels`] with runs of `L` codes (`L = k * c_in`), or of any length if `L` is 0.
fn patches<const L: usize>(px: &[u8], g: &ConvGeom, row_len: usize, out: &mut [u8]) {
    let (o, k, s, side, c_in) = (g.o, g.k, g.stride, g.side, g.c_in);
    let run = if L == 0 { k * c_in } else { L };
    for oy in 0..o {
        for (ox, row) in out[oy * o * row_len..].chunks_exact_mut(row_len).take(o).enumerate() {
            for (ky, dst) in row[..k * run].chunks_exact_mut(run).enumerate() {
                dst.copy_from_slice(&px[((oy * s + ky) * side + ox * s) * c_in..][..run]);
            }
            row[k * run..].fill(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpq_net::{LayerKind, Pool};

    /// A valid convolution's geometry.
    fn geom(c_in: usize, side: usize, kernel: usize, stride: usize) -> ConvGeom {
        let kind = LayerKind::conv(c_in, 1, side, false, kernel, stride, Pool::None);
        kind.conv_geom().unwrap()
    }

    /// Patches of the pixel-major image times the reordered weights give the same sums as
    /// patches of the channel-major image times the weights as stored; the pixel-major
    /// patches zero their padding over whatever the buffer held (3x3, pointwise and strided).
    #[test]
    fn pixel_major_patches_give_the_same_sums() {
        for (c_in, side, row_len, n, kernel, stride) in [
            (1, 28, 12, 8, 3, 1),
            (8, 13, 72, 16, 3, 1),
            (3, 5, 28, 5, 3, 1),
            (2, 4, 20, 3, 3, 1),
            (16, 6, 144, 4, 3, 1),
            (32, 5, 288, 4, 3, 1),
            (32, 9, 288, 3, 3, 2),
            (4, 6, 36, 5, 3, 1),
            (4, 7, 4, 5, 1, 1),
            (3, 9, 8, 3, 1, 2),
            (5, 9, 48, 4, 3, 2),
            (1, 14, 12, 8, 3, 2),
        ] {
            let g = geom(c_in, side, kernel, stride);
            let (k, o) = (g.depth(), g.o);
            let img: Vec<u8> = (0..c_in * side * side).map(|i| (i * 37 % 251) as u8 + 1).collect();
            let w: Vec<i16> = (0..n * k).map(|i| (i * 53 % 255) as i16 - 127).collect();
            let (mut plain, mut px, mut pm) =
                (vec![0u8; o * o * row_len], vec![0u8; img.len()], vec![0xAAu8; o * o * row_len]);
            im2col(&img, &g, row_len, &mut plain);
            to_pixels(&img, c_in, side, &mut px);
            im2col_pixels(&px, &g, row_len, &mut pm);
            let wp = pixel_major_depths(&w, c_in, g.taps());
            for (r, (a, b)) in plain.chunks_exact(row_len).zip(pm.chunks_exact(row_len)).enumerate() {
                assert!(a[k..].iter().chain(&b[k..]).all(|&v| v == 0), "padding of row {r}");
                for j in 0..n {
                    let dot = |x: &[u8], w: &[i16]| x.iter().zip(w).map(|(&x, &w)| x as i32 * w as i32).sum::<i32>();
                    assert_eq!(dot(&a[..k], &w[j * k..][..k]), dot(&b[..k], &wp[j * k..][..k]), "row {r} column {j}");
                }
            }
        }
    }

    #[test]
    fn im2col_matches_the_weight_layout() {
        let (c_in, side) = (2, 4);
        let img: Vec<u32> = (0..(c_in * side * side) as u32).collect();
        let mut out = vec![0u32; 4 * 20];
        im2col(&img, &geom(c_in, side, 3, 1), 20, &mut out);
        // Patch (oy 1, ox 0) is row 2; channel 1, ky 2, kx 1 is img[1][3][1].
        let (row, col) = (2, 9 + 2 * 3 + 1);
        assert_eq!(out[row * 20 + col], 16 + 3 * 4 + 1);
        assert_eq!(out[20 - 1], 0, "padding left as is");
        // Stride 2: patch (oy 1, ox 0) of side 5 reads rows 2..5; channel 0, ky 1, kx 2 is img[0][3][2].
        let img: Vec<u32> = (0..25).collect();
        let mut out = vec![0u32; 4 * 9];
        im2col(&img, &geom(1, 5, 3, 2), 9, &mut out);
        assert_eq!(out[2 * 9 + 5], 3 * 5 + 2);
    }
}
