//! Where values sit, shared by both executors: zero padding around a channel-major image and
//! the order in which global average pooling adds a plane (so the f32 host network and the
//! integer engine give the same bits).

/// `img` `[c][side][side]` with a border of `fill`: `[c][side + 2][side + 2]`.
pub fn pad1<T: Copy>(img: &[T], c: usize, side: usize, fill: T) -> Vec<T> {
    pad(img, c, side, 1, fill)
}

/// [`pad1`] into `out` (`c * (side + 2)^2` values, every one written).
pub fn pad1_into<T: Copy>(img: &[T], c: usize, side: usize, fill: T, out: &mut [T]) {
    pad_into(img, c, side, 1, fill, out)
}

/// `img` `[c][side][side]` with a border of `n` values `fill`: `[c][side + 2n][side + 2n]`.
pub fn pad<T: Copy>(img: &[T], c: usize, side: usize, n: usize, fill: T) -> Vec<T> {
    let mut out = vec![fill; c * (side + 2 * n) * (side + 2 * n)];
    copy_inside(img, c, side, n, &mut out);
    out
}

/// [`pad`] into `out` (`c * (side + 2n)^2` values, every one written).
pub fn pad_into<T: Copy>(img: &[T], c: usize, side: usize, n: usize, fill: T, out: &mut [T]) {
    let p = side + 2 * n;
    out[..c * p * p].fill(fill);
    copy_inside(img, c, side, n, out);
}

/// The rows of `img` into the inside of `out` padded by `n`, its border left as it is.
fn copy_inside<T: Copy>(img: &[T], c: usize, side: usize, n: usize, out: &mut [T]) {
    let p = side + 2 * n;
    for ch in 0..c {
        for y in 0..side {
            out[ch * p * p + (y + n) * p + n..][..side].copy_from_slice(&img[(ch * side + y) * side..][..side]);
        }
    }
}

/// The mean of one channel's plane: its values added in row-major order from 0, then
/// divided by their count.
pub fn global_avg(plane: &[f32]) -> f32 {
    plane.iter().fold(0f32, |t, &v| t + v) / plane.len() as f32
}

/// The 2x2 average pool, stride 2 (floor), of one channel's `s` x `s` plane into `dst`
/// (`s/2` x `s/2`): each window's four values added row by row, then divided by 4.
pub fn avg2(plane: &[f32], s: usize, dst: &mut [f32]) {
    let p = s / 2;
    for y in 0..p {
        for x in 0..p {
            let at = |dy: usize, dx: usize| plane[(2 * y + dy) * s + 2 * x + dx];
            dst[y * p + x] = (at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1)) / 4.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_and_average() {
        let img = [1, 2, 3, 4, 5, 6, 7, 8];
        let p = pad1(&img, 2, 2, 0);
        assert_eq!(&p[..16], &[0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0]);
        assert_eq!(&p[16..], &[0, 0, 0, 0, 0, 5, 6, 0, 0, 7, 8, 0, 0, 0, 0, 0]);
        let mut out = vec![9; 16];
        pad1_into(&img[..4], 1, 2, -1, &mut out);
        assert_eq!(out, [-1, -1, -1, -1, -1, 1, 2, -1, -1, 3, 4, -1, -1, -1, -1, -1]);
        assert_eq!(global_avg(&[1.0, 2.0, 3.0, 6.0]), 3.0);
        assert_eq!(pad(&img[..4], 1, 2, 0, 0), [1, 2, 3, 4]);
        let two = pad(&[7], 1, 1, 2, 0);
        assert_eq!((two.len(), two[12], two.iter().sum::<i32>()), (25, 7, 7));
    }
}
