//! Masked softmax over rows of attention scores, and its gradient; both flush subnormal
//! results to 0.

use super::fastmath::{exp, flush};
use crate::simd::{self, multiversion};

multiversion! {
    /// Softmax of each row of `block` in place, rows of `mask.len()` scores:
    /// `softmax(s · scale + mask)`.
    pub(super) fn softmax_rows(block: &mut [f32], mask: &[f32], scale: f32) {
        for row in block.chunks_exact_mut(mask.len()) {
            for (v, &m) in row.iter_mut().zip(mask) {
                *v = *v * scale + m;
            }
            let max = simd::max(row);
            for v in row.iter_mut() {
                *v = exp(*v - max);
            }
            let inv = 1.0 / simd::sum(row);
            for v in row.iter_mut() {
                *v = flush(*v * inv);
            }
        }
    }
}

multiversion! {
    /// Softmax backward over rows of `t`: `dS = scale · P ⊙ (dP − rowsum(dP ⊙ P))`, in place
    /// of `dp`.
    pub(super) fn softmax_grad_rows(dp: &mut [f32], p: &[f32], t: usize, scale: f32) {
        for (dr, pr) in dp.chunks_exact_mut(t).zip(p.chunks_exact(t)) {
            let dot = simd::dot(dr, pr);
            for (x, &pv) in dr.iter_mut().zip(pr) {
                *x = flush(scale * pv * (*x - dot));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_never_gives_subnormal_probabilities() {
        // Masked keys, and scores 80 to 100 below the row's largest, would give probabilities
        // below the smallest normal float; they must be exactly 0.
        let t = 64;
        let mask: Vec<f32> = (0..t)
            .map(|i| if i < 40 { 0.0 } else { f32::MIN })
            .collect();
        let mut p: Vec<f32> = (0..t).map(|i| -(i as f32) * 2.5).collect();
        softmax_rows(&mut p, &mask, 1.0);
        assert!(
            p.iter().all(|&x| x == 0.0 || x >= f32::MIN_POSITIVE),
            "{p:?}"
        );
        assert!(p[40..].iter().all(|&x| x == 0.0));
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let mut g: Vec<f32> = (0..t).map(|i| 1e-30 * i as f32).collect();
        softmax_grad_rows(&mut g, &p, t, 1e-9);
        assert!(
            g.iter().all(|&x| x == 0.0 || x.abs() >= f32::MIN_POSITIVE),
            "{g:?}"
        );
    }
}
