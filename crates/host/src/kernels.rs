//! The host's matrix and convolution kernels, written once in plain Rust and compiled for
//! each instruction-set path by [`super::simd`]. Register tiles keep partial sums in vector
//! registers; each output element is still computed alone, from its bias up in the fixed
//! order [`super`] documents, so no tiling or vector width changes a bit of any result.

/// Rows of a register tile in [`linear_body`] (its code names the four rows).
const TILE_ROWS: usize = 4;
/// Columns of a register tile in [`linear_body`] (two 8-lane vectors).
const TILE_COLS: usize = 16;

/// The body of [`crate::linear::linear`], by register tiles of [`TILE_ROWS`] examples x [`TILE_COLS`]
/// outputs: each tile's sums stay in registers over the whole depth, and one column strip of
/// the weight is reused from cache by every row tile. Every output still starts at its bias
/// and adds its products with `k` ascending, so the tiling changes speed, not results. A
/// depth whose inputs are zero in every row of the tile is skipped: adding `0 * w` changes
/// nothing but the sign of a zero sum.
#[inline(always)]
pub(super) fn linear_body(x: &[f32], w: &[f32], b: &[f32], d_in: usize, d_out: usize, out: &mut [f32]) {
    let rows = x.len() / d_in;
    let narrow = d_out % (TILE_COLS / 2);
    // The last `narrow` columns as a zero-padded strip of half-tile width: padding columns
    // are computed and dropped, the real ones keep their order of sums.
    let strip = (narrow > 0 && rows >= TILE_ROWS).then(|| {
        let (j0, half) = (d_out - narrow, TILE_COLS / 2);
        let mut ws = vec![0f32; d_in * half];
        for (dst, src) in ws.chunks_mut(half).zip(w[j0..].chunks(d_out)) {
            dst[..narrow].copy_from_slice(&src[..narrow]);
        }
        let mut bs = vec![0f32; half];
        bs[..narrow].copy_from_slice(&b[j0..]);
        (ws, bs)
    });
    let mut j0 = 0;
    while j0 < d_out {
        // Full-width tiles, then one of half width, then the last columns one by one.
        let nc = match d_out - j0 {
            n if n >= TILE_COLS => TILE_COLS,
            n if n >= TILE_COLS / 2 => TILE_COLS / 2,
            n => n,
        };
        for i0 in (0..rows).step_by(TILE_ROWS) {
            let (xs, os) = (&x[i0 * d_in..(i0 + TILE_ROWS.min(rows - i0)) * d_in], &mut out[i0 * d_out..]);
            match nc {
                _ if xs.len() < TILE_ROWS * d_in => linear_edge(xs, w, b, (d_in, d_out), (j0, nc), os),
                TILE_COLS => linear_tile::<TILE_COLS>(xs, w, b, d_out, j0, os),
                n if n == TILE_COLS / 2 => linear_tile::<{ TILE_COLS / 2 }>(xs, w, b, d_out, j0, os),
                _ => match &strip {
                    Some((ws, bs)) => {
                        let mut tile = [0f32; TILE_ROWS * TILE_COLS / 2];
                        linear_tile::<{ TILE_COLS / 2 }>(xs, ws, bs, TILE_COLS / 2, 0, &mut tile);
                        for (o, t) in os.chunks_mut(d_out).zip(tile.chunks(TILE_COLS / 2)) {
                            o[j0..j0 + nc].copy_from_slice(&t[..nc]);
                        }
                    }
                    None => linear_edge(xs, w, b, (d_in, d_out), (j0, nc), os),
                },
            }
        }
        j0 += nc;
    }
}

/// One full tile: rows `x` (`TILE_ROWS` x `d_in`), outputs `j0..j0 + C`.
#[inline(always)]
fn linear_tile<const C: usize>(x: &[f32], w: &[f32], b: &[f32], d_out: usize, j0: usize, out: &mut [f32]) {
    let d_in = x.len() / TILE_ROWS;
    let Some(bias) = b.get(j0..).and_then(<[f32]>::first_chunk::<C>) else { return };
    let mut acc = [*bias; TILE_ROWS];
    let (x01, x23) = x.split_at(2 * d_in);
    let ((x0, x1), (x2, x3)) = (x01.split_at(d_in), x23.split_at(d_in));
    let inputs = x0.iter().zip(x1).zip(x2.iter().zip(x3));
    for (((&a0, &a1), (&a2, &a3)), wk) in inputs.zip(w[j0..].chunks(d_out)) {
        if a0 == 0.0 && a1 == 0.0 && a2 == 0.0 && a3 == 0.0 {
            continue;
        }
        // Every strip row holds at least C weights (j0 + C <= d_out).
        let wr = &wk[..C];
        for (row, av) in acc.iter_mut().zip([a0, a1, a2, a3]) {
            for (o, &wv) in row.iter_mut().zip(wr) {
                *o += av * wv;
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        out[r * d_out + j0..][..C].copy_from_slice(row);
    }
}

/// A tile at the bottom or right edge: the rows of `x` (`d_in` each), `nc` outputs from `j0`.
fn linear_edge(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    (d_in, d_out): (usize, usize),
    (j0, nc): (usize, usize),
    out: &mut [f32],
) {
    let nr = x.len() / d_in;
    for r in 0..nr {
        out[r * d_out + j0..][..nc].copy_from_slice(&b[j0..j0 + nc]);
    }
    for k in 0..d_in {
        if (0..nr).all(|r| x[r * d_in + k] == 0.0) {
            continue;
        }
        let wr = &w[k * d_out + j0..][..nc];
        for r in 0..nr {
            let a = x[r * d_in + k];
            out[r * d_out + j0..][..nc].iter_mut().zip(wr).for_each(|(o, &wv)| *o += a * wv);
        }
    }
}

/// Output channels of a register tile in [`conv3x3_body`].
const CONV_CHANNELS: usize = 2;
/// Output columns of a register tile in [`conv3x3_body`] (two 8-lane vectors).
pub(super) const CONV_COLS: usize = 16;

/// The body of [`crate::conv::conv3x3`], by register tiles of [`CONV_CHANNELS`] output channels x
/// [`CONV_COLS`] columns of one output row: each input segment is loaded once per tap for
/// all the tile's channels, and the sums stay in registers over every tap. Each output still
/// starts at its bias and adds the taps in weight order (`c * 9 + ky * 3 + kx`), so the
/// tiling changes speed, not results. Columns past the row's end are computed from padding
/// and dropped.
#[inline(always)]
pub(super) fn conv3x3_body(img: &[f32], w: &[f32], b: &[f32], c_in: usize, c_out: usize, side: usize) -> Vec<f32> {
    conv3x3_with::<CONV_CHANNELS>(img, w, b, (c_in, c_out, side), conv_tiles::<CONV_CHANNELS>)
}

/// [`conv3x3_body`] with `group` computing each whole group of `G` output channels (from the
/// channel it is given), the channels left over one by one: for a path whose own kernel
/// keeps more sums in registers than the compiler vectorizes from [`conv_tiles`].
#[inline(always)]
pub(super) fn conv3x3_with<const G: usize>(
    img: &[f32],
    w: &[f32],
    b: &[f32],
    (c_in, c_out, side): (usize, usize, usize),
    group: impl Fn(&[f32], &[f32], &[f32], ConvGeo, usize, &mut [f32]),
) -> Vec<f32> {
    let o = side - 2;
    let mut z = vec![0f32; c_out * o * o];
    let mut src = Vec::with_capacity(img.len() + CONV_COLS);
    src.extend_from_slice(img);
    src.resize(img.len() + CONV_COLS, 0.0);
    let geo = ConvGeo { c_in, side, o };
    let mut co = 0;
    while co < c_out {
        if c_out - co >= G {
            group(&src, w, b, geo, co, &mut z);
            co += G;
        } else {
            conv_tiles::<1>(&src, w, b, geo, co, &mut z);
            co += 1;
        }
    }
    z
}

/// Shape of a valid 3x3 convolution: input channels, input side, output side.
#[derive(Clone, Copy)]
pub(super) struct ConvGeo {
    pub(super) c_in: usize,
    pub(super) side: usize,
    pub(super) o: usize,
}

/// Output channels `co0..co0 + R` of [`conv3x3_body`], tile by tile, into `z`.
#[inline(always)]
fn conv_tiles<const R: usize>(src: &[f32], w: &[f32], b: &[f32], g: ConvGeo, co0: usize, z: &mut [f32]) {
    let (taps, o) = (g.c_in * 9, g.o);
    // The tile's weights by tap: R values each.
    let per_tap: Vec<[f32; R]> = (0..taps).map(|t| std::array::from_fn(|r| w[(co0 + r) * taps + t])).collect();
    for y in 0..o {
        for x0 in (0..o).step_by(CONV_COLS) {
            let mut acc: [[f32; CONV_COLS]; R] = std::array::from_fn(|r| [b[co0 + r]; CONV_COLS]);
            for (t, wt) in per_tap.iter().enumerate() {
                let (ci, ky, kx) = (t / 9, t % 9 / 3, t % 3);
                let at = ci * g.side * g.side + (y + ky) * g.side + kx + x0;
                // `src` carries CONV_COLS values of padding past the image.
                let seg = &src[at..at + CONV_COLS];
                for (row, &wv) in acc.iter_mut().zip(wt) {
                    for (a, &v) in row.iter_mut().zip(seg) {
                        *a += wv * v;
                    }
                }
            }
            let n = CONV_COLS.min(o - x0);
            for (r, row) in acc.iter().enumerate() {
                z[(co0 + r) * o * o + y * o + x0..][..n].copy_from_slice(&row[..n]);
            }
        }
    }
}
