//! Fast math: `exp` and exact (erf) GELU that vectorise, well within the parity tolerances.

use crate::simd::multiversion;

/// `e^x` to about 2 ulp: Cody-Waite range reduction and a degree-6 polynomial, branch-free
/// so that loops over it vectorise. Inputs below -87 give exactly 0 (the true value is near
/// or below the smallest normal float): a subnormal result would reach the matrix products,
/// where each subnormal operand costs an Intel core a microcode assist (what that cost a
/// training step: `BENCHMARKS-MODEL.md`, "Kernel timings formerly in code comments").
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // 1.5 * 2^23: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // n as an integer, read from the low bits of `shifted` (whose exponent is ROUND's)
    // rather than by a float-to-int cast, which does not vectorise.
    let n_int = shifted.to_bits() as i32 - ROUND.to_bits() as i32;
    let e = f32::from_bits(((n_int + 127) << 23) as u32) * p;
    // (NaN goes through as NaN.)
    if x <= -87.0 {
        0.0
    } else {
        e
    }
}

/// `x`, or 0 where it is subnormal (see [`exp`] for why).
#[inline(always)]
pub(super) fn flush(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE {
        0.0
    } else {
        x
    }
}

/// Exact GELU `z·Φ(z)` and its derivative `Φ(z) + z·φ(z)`, with erf from Abramowitz and
/// Stegun 7.1.26 (absolute error under 1.5e-7) sharing one exponential with φ.
#[inline(always)]
fn gelu_and_grad(z: f32) -> (f32, f32) {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_7,
        -1.453_152_1,
        1.061_405_4,
    ];
    const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;
    let u = z * std::f32::consts::FRAC_1_SQRT_2;
    let e = exp(-u * u);
    let t = 1.0 / (1.0 + P * u.abs());
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let erf_abs = 1.0 - poly * e;
    let erf = if u < 0.0 { -erf_abs } else { erf_abs };
    let cdf = 0.5 * (1.0 + erf);
    (z * cdf, cdf + z * FRAC_1_SQRT_2PI * e)
}

multiversion! {
    /// GELU of every element in place.
    pub(super) fn gelu_in_place(xs: &mut [f32]) {
        for v in xs.iter_mut() {
            *v = gelu_and_grad(*v).0;
        }
    }
}

multiversion! {
    /// `d *= GELU'(z)` element-wise, `z` the pre-activations.
    pub(super) fn gelu_grad_in_place(ds: &mut [f32], zs: &[f32]) {
        for (d, &z) in ds.iter_mut().zip(zs) {
            *d *= gelu_and_grad(z).1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_and_gelu_are_accurate() {
        for i in -2000..=2000 {
            let x = i as f32 * 0.043;
            let (e, r) = (exp(x), x.exp());
            assert!((e - r).abs() <= 4e-7 * r, "exp({x}) = {e}, not {r}");
            let z = i as f32 * 0.005;
            let exact =
                0.5 * z * (1.0 + candle_core::cpu::erf::erf_f64(z as f64 / 2f64.sqrt()) as f32);
            assert!((gelu_and_grad(z).0 - exact).abs() < 1e-6, "gelu({z})");
        }
        // Below -87 the result is 0, never subnormal.
        assert_eq!(exp(-87.5), 0.0);
        assert_eq!(exp(f32::MIN), 0.0);
        assert!(exp(-86.9) >= f32::MIN_POSITIVE);
        assert!(exp(-86.9) < 1e-37);
        assert!(exp(f32::NAN).is_nan());
    }
}
