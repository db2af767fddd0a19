//! After a convolution's products: ReLU, skip and pooling of its pre-activations (padding
//! and the average's order of sums are shared with the host, in [`mpq_net::layout`]).

use crate::gemm::{self, Kernel};
use mpq_net::Pool;
use mpq_net::layout::{avg2, global_avg};

/// ReLU of the 2x2 max-pool of `t` images of pre-activations stored pixel-major
/// (`[t][o][o][c_out]`), returned channel-major (`[t][c_out][o/2][o/2]`).
pub(super) fn relu_pool(y: &[f32], t: usize, c_out: usize, o: usize) -> Vec<f32> {
    let p = o / 2;
    let mut out = vec![0f32; t * c_out * p * p];
    // One row of pooled pixels, pixel-major: the maxima run over contiguous channels (they
    // vectorize), then move to their channel-major places.
    let mut row = vec![0f32; p * c_out];
    for (e, oe) in out.chunks_exact_mut(c_out * p * p).enumerate() {
        let img = &y[e * o * o * c_out..(e + 1) * o * o * c_out];
        for py in 0..p {
            for (px, v) in row.chunks_exact_mut(c_out).enumerate() {
                let at = |dy: usize, dx: usize| &img[((2 * py + dy) * o + 2 * px + dx) * c_out..][..c_out];
                let (a, b, c, d) = (at(0, 0), at(0, 1), at(1, 0), at(1, 1));
                for (r, v) in v.iter_mut().enumerate() {
                    *v = a[r].max(b[r]).max(c[r]).max(d[r]).max(0.0);
                }
            }
            for (r, plane) in oe.chunks_exact_mut(p * p).enumerate() {
                for (px, o) in plane[py * p..(py + 1) * p].iter_mut().enumerate() {
                    *o = row[px * c_out + r];
                }
            }
        }
    }
    out
}

/// The 2x2 max-pool of `t` images of integer sums stored pixel-major in rows of `np`
/// (`[t][o][o][np]`), of their first `c_out` columns, into `out` channel-major
/// (`[t][c_out][o/2][o/2]`). A row of windows is pooled over contiguous columns (the maxima
/// vectorize, on `kernel`'s instructions), then moved to the channels' planes.
pub(super) fn max_pool_sums(
    kernel: Kernel,
    c: &[i32],
    np: usize,
    (t, c_out): (usize, usize),
    o: usize,
    out: &mut [i32],
) {
    let p = o / 2;
    let mut row = vec![0i32; p * np];
    for (e, oe) in out[..t * c_out * p * p].chunks_exact_mut(c_out * p * p).enumerate() {
        let img = &c[e * o * o * np..(e + 1) * o * o * np];
        for py in 0..p {
            // The two rows of sums under this row of windows, two pixels per window.
            let (r0, r1) = (&img[2 * py * o * np..][..o * np], &img[(2 * py + 1) * o * np..][..o * np]);
            gemm::max_pool_row(kernel, (r0, r1), np, &mut row);
            for (r, plane) in oe.chunks_exact_mut(p * p).enumerate() {
                for (px, o) in plane[py * p..(py + 1) * p].iter_mut().enumerate() {
                    *o = row[px * np + r];
                }
            }
        }
    }
}

/// ReLU, then `+ seen` (channel-major, empty without a skip), then the global or 2x2
/// average pool `pool` names (no pooling for the others), of `t` images of pre-activations stored pixel-major (`[t][o][o][c_out]`);
/// returned channel-major. Sums run in the simulation's order (the average adds a channel's
/// pixels row by row).
pub(super) fn relu_skip_pool(y: &[f32], seen: &[f32], t: usize, c_out: usize, o: usize, pool: Pool) -> Vec<f32> {
    let plane = o * o;
    let mut a = vec![0f32; t * c_out * plane];
    for (e, ae) in a.chunks_exact_mut(c_out * plane).enumerate() {
        for r in 0..c_out {
            for px in 0..plane {
                let v = y[(e * plane + px) * c_out + r].max(0.0);
                ae[r * plane + px] = if seen.is_empty() { v } else { v + seen[(e * c_out + r) * plane + px] };
            }
        }
    }
    match pool {
        Pool::GlobalAvg => a.chunks_exact(plane).map(global_avg).collect(),
        Pool::Avg2 => {
            let p = o / 2;
            let mut out = vec![0f32; t * c_out * p * p];
            for (d, src) in out.chunks_exact_mut(p * p).zip(a.chunks_exact(plane)) {
                avg2(src, o, d);
            }
            out
        }
        Pool::None | Pool::Max2 => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pooling's rows of maxima, moved to channel-major places, equal the max of each
    /// 2x2 window (then ReLU) read one value at a time, on odd and even sides.
    #[test]
    fn relu_pool_matches_the_naive_pool() {
        for (t, c_out, o) in [(2, 8, 28), (3, 16, 14), (1, 3, 7)] {
            let y: Vec<f32> = (0..t * o * o * c_out).map(|i| ((i * 7919 % 1013) as f32 - 500.0) / 97.0).collect();
            let got = relu_pool(&y, t, c_out, o);
            let p = o / 2;
            for e in 0..t {
                for r in 0..c_out {
                    for py in 0..p {
                        for px in 0..p {
                            let at =
                                |dy: usize, dx: usize| y[(e * o * o + (2 * py + dy) * o + 2 * px + dx) * c_out + r];
                            let want = at(0, 0).max(at(0, 1)).max(at(1, 0)).max(at(1, 1)).max(0.0);
                            assert_eq!(
                                got[((e * c_out + r) * p + py) * p + px],
                                want,
                                "image {e} channel {r} ({py}, {px})"
                            );
                        }
                    }
                }
            }
        }
    }
}
